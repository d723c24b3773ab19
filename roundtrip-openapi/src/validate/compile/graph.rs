//! The compiled graph: one node per schema object, with its kind and pre-parsed rules.

use super::*;

/// A schema the validator cannot compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// A `$ref` that does not name an entry of the definitions.
    #[error("unresolved $ref {reference:?}: no such schema in the definitions")]
    UnresolvedRef {
        /// The reference as written.
        reference: String,
    },
    /// A definition that only refers to itself, directly or through other bare `$ref`s.
    #[error("$ref cycle through {reference:?} never reaches a schema")]
    RefCycle {
        /// One reference on the cycle.
        reference: String,
    },
    /// A `pattern` (or `patternProperties` key) the `regex` crate cannot compile.
    ///
    /// Pydantic falls back to Python's `re` for look-around and back-references; the
    /// `regex` crate has neither, so such a pattern cannot be enforced here.
    #[error("pattern {pattern:?} is not supported: {reason}")]
    InvalidPattern {
        /// The pattern as written.
        pattern: String,
        /// Why the `regex` crate refused it.
        reason: String,
    },
    /// A value where a schema (an object or a boolean) was expected.
    #[error("expected a schema (object or boolean) at {keyword}, found {found}")]
    NotASchema {
        /// The keyword that held the value.
        keyword: String,
        /// The JSON type found instead.
        found: &'static str,
    },
}

pub(crate) type NodeId = usize;

#[derive(Debug)]
pub(crate) struct Node {
    /// `null` is accepted before anything else is checked (`Option<T>`).
    pub(crate) nullable: bool,
    pub(crate) kind: Kind,
    /// Further subschemas that must also hold (`allOf`, or `$ref`/`anyOf` next to a `type`).
    pub(crate) also: Box<[NodeId]>,
    /// `not`: a subschema the value must fail.
    pub(crate) not: Option<Box<Not>>,
}

#[derive(Debug)]
pub(crate) struct Not {
    pub(crate) node: NodeId,
    pub(crate) message: String,
}

#[derive(Debug)]
pub(crate) enum Kind {
    /// No constraint (`{}`, `true`, or annotations only).
    Any,
    /// The `false` schema: nothing is allowed here.
    Never,
    Null,
    Bool,
    Int(Box<NumRules>),
    Float(Box<NumRules>),
    Str(Box<StrRules>),
    Array(Box<ArrayRules>),
    Object(Box<ObjectRules>),
    Enum(Box<EnumRules>),
    Ref(NodeId),
    Union(Box<UnionRules>),
}

/// A numeric bound with its message text and context value rendered once.
#[derive(Debug)]
pub(crate) struct Bound {
    pub(crate) value: Num,
    /// As the message prints it: `0` for `0.0`, like pydantic-core's Rust formatting.
    pub(crate) shown: String,
    /// As `ctx` carries it: a float on a float field, an integer on an integer field.
    pub(crate) ctx: Value,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    pub(crate) fn of(n: &serde_json::Number) -> Num {
        if let Some(i) = n.as_i64() {
            Num::Int(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Num::Int(i128::from(u))
        } else {
            Num::Float(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    /// `self` compared with `other`, exactly for two integers.
    pub(crate) fn cmp_to(self, other: Num) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct NumRules {
    pub(crate) multiple_of: Option<Bound>,
    pub(crate) le: Option<Bound>,
    pub(crate) lt: Option<Bound>,
    pub(crate) ge: Option<Bound>,
    pub(crate) gt: Option<Bound>,
}

#[derive(Debug)]
pub(crate) struct Pattern {
    pub(crate) regex: Regex,
    pub(crate) source: String,
}

#[derive(Debug, Default)]
pub(crate) struct StrRules {
    pub(crate) min_length: Option<usize>,
    pub(crate) max_length: Option<usize>,
    pub(crate) pattern: Option<Pattern>,
    pub(crate) format: StrFormat,
}

#[derive(Debug, Default)]
pub(crate) enum StrFormat {
    #[default]
    None,
    /// `format: uri`; with `x-rt-url-schemes`, the allowed schemes and their rendering.
    Url {
        schemes: Option<(Box<[String]>, String)>,
    },
    /// `date-time`: chrono's `DateTime<Tz>`, so an offset is required.
    DateTime,
    /// `partial-date-time`: chrono's `NaiveDateTime`, so an offset is refused.
    NaiveDateTime,
    Date,
    /// `time` (pydantic's): an offset is optional.
    Time,
    /// `partial-time`: chrono's `NaiveTime`.
    NaiveTime,
    Uuid,
    Email,
    Ipv4,
    Ipv6,
    Ip,
}

#[derive(Debug)]
pub(crate) struct ArrayRules {
    pub(crate) prefix: Box<[NodeId]>,
    /// Schema of the items after `prefix`; `None` accepts anything.
    pub(crate) items: Option<NodeId>,
    /// `items: false`: nothing may follow `prefix`.
    pub(crate) closed: bool,
    pub(crate) min_items: Option<usize>,
    pub(crate) max_items: Option<usize>,
    pub(crate) unique: bool,
    /// Pydantic's name for the container in length errors: `List`, `Tuple` or `Set`.
    pub(crate) field_type: &'static str,
}

#[derive(Debug)]
pub(crate) struct Prop {
    pub(crate) node: NodeId,
    pub(crate) required: bool,
}

#[derive(Debug)]
pub(crate) enum Additional {
    Allow,
    Forbid,
    Schema(NodeId),
}

#[derive(Debug)]
pub(crate) struct ObjectRules {
    /// Declared properties, in declaration order.
    pub(crate) props: IndexMap<String, Prop>,
    pub(crate) pattern_props: Box<[(Regex, NodeId)]>,
    pub(crate) additional: Additional,
    /// A model (declared fields) rather than a dictionary: decides the wrong-type error.
    pub(crate) model: bool,
    pub(crate) min_props: Option<usize>,
    pub(crate) max_props: Option<usize>,
}

impl ObjectRules {
    /// Whether keys outside `props` need a look.
    pub(crate) fn checks_extra_keys(&self) -> bool {
        !matches!(self.additional, Additional::Allow) || !self.pattern_props.is_empty()
    }
}

#[derive(Debug)]
pub(crate) struct EnumRules {
    pub(crate) values: Box<[Value]>,
    /// `enum` for Rust enums (pydantic's `Enum`), `literal_error` for a lone `const`.
    pub(crate) error_type: &'static str,
    /// `'a', 'b' or 'c'`.
    pub(crate) expected: String,
}

#[derive(Debug)]
pub(crate) struct UnionRules {
    pub(crate) branches: Box<[NodeId]>,
    pub(crate) tagged: Option<Tagged>,
}

/// A union whose branches are models told apart by a constant property (serde's
/// internally or adjacently tagged enums, pydantic's discriminated unions).
#[derive(Debug)]
pub(crate) struct Tagged {
    pub(crate) property: String,
    /// `'type'`, as pydantic's ctx renders the discriminator.
    pub(crate) property_repr: String,
    pub(crate) tags: Box<[(String, NodeId)]>,
    /// `'cat', 'dog'`.
    pub(crate) expected_tags: String,
}

/// One top-level property of a parameter object: a query, path, header or cookie
/// parameter, or a form field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    pub(crate) name: String,
    pub(crate) list: bool,
    pub(crate) required: bool,
}

impl ParamInfo {
    /// The parameter's name as the schema spells it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the parameter is list-typed (an array, possibly optional): its repeated
    /// occurrences (`?tag=a&tag=b`) are collected into a JSON array of strings.
    pub fn is_list(&self) -> bool {
        self.list
    }

    /// Whether the schema lists the parameter as required.
    pub fn is_required(&self) -> bool {
        self.required
    }
}

/// The compiled graph.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) nodes: Vec<Node>,
    pub(crate) root: NodeId,
    pub(crate) params: Vec<ParamInfo>,
    pub(crate) serde_covers: bool,
    /// Names of the properties that hold secrets (`format: password` or `writeOnly`),
    /// whose values no error may echo.
    pub(crate) secret_keys: Vec<String>,
}
