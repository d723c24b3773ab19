//! Reading a schema object's keywords into the rules of its node.

use super::*;

pub(super) fn node(kind: Kind) -> Node {
    Node {
        nullable: false,
        kind,
        also: Box::new([]),
        not: None,
    }
}

pub(super) fn union(branches: Vec<NodeId>) -> Kind {
    Kind::Union(Box::new(UnionRules {
        branches: branches.into_boxed_slice(),
        tagged: None,
    }))
}

pub(super) fn inferred_types(obj: &Map<String, Value>) -> u8 {
    let has = |keys: &[&str]| keys.iter().any(|k| obj.contains_key(*k));
    if has(&[
        "properties",
        "required",
        "additionalProperties",
        "patternProperties",
        "minProperties",
        "maxProperties",
    ]) {
        T_OBJECT
    } else if has(&[
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "uniqueItems",
    ]) {
        T_ARRAY
    } else if has(&["minLength", "maxLength", "pattern"]) {
        T_STRING
    } else if has(&[
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
    ]) {
        T_NUMBER
    } else {
        0
    }
}

pub(super) fn enum_values(obj: &Map<String, Value>) -> Option<Vec<&Value>> {
    if let Some(value) = obj.get("const") {
        return Some(vec![value]);
    }
    match obj.get("enum") {
        Some(Value::Array(values)) => Some(values.iter().collect()),
        _ => None,
    }
}

/// An enum's kind, and whether `null` was one of its values (it then makes the node nullable).
pub(super) fn enum_kind(values: Vec<&Value>, is_const: bool) -> (Kind, bool) {
    let has_null = values.iter().any(|v| v.is_null());
    let values: Vec<Value> = values
        .into_iter()
        .filter(|v| !v.is_null())
        .cloned()
        .collect();
    if values.is_empty() {
        return (Kind::Null, false);
    }
    let expected = py_alternatives(values.iter());
    let kind = Kind::Enum(Box::new(EnumRules {
        values: values.into_boxed_slice(),
        error_type: if is_const { "literal_error" } else { "enum" },
        expected,
    }));
    (kind, has_null)
}

pub(super) fn usize_keyword(obj: &Map<String, Value>, key: &str) -> Option<usize> {
    let value = obj.get(key)?;
    value
        .as_u64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| *f >= 0.0)
                .map(|f| f.ceil() as u64)
        })
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

pub(super) fn compile_regex(pattern: &str) -> Result<Regex, SchemaError> {
    Regex::new(pattern).map_err(|e| SchemaError::InvalidPattern {
        pattern: pattern.to_owned(),
        reason: e.to_string(),
    })
}

pub(super) fn string_rules(obj: &Map<String, Value>) -> Result<StrRules, SchemaError> {
    let pattern = match obj.get("pattern").and_then(Value::as_str) {
        Some(source) => Some(Pattern {
            regex: compile_regex(source)?,
            source: source.to_owned(),
        }),
        None => None,
    };
    let format = match obj.get("format").and_then(Value::as_str) {
        Some("uri" | "url") => {
            let schemes = match obj.get("x-rt-url-schemes") {
                Some(Value::Array(list)) => {
                    let schemes: Box<[String]> = list
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_ascii_lowercase)
                        .collect();
                    let rendered: Vec<Value> =
                        schemes.iter().map(|s| Value::String(s.clone())).collect();
                    let expected = py_alternatives(rendered.iter());
                    Some((schemes, expected))
                }
                _ => None,
            };
            StrFormat::Url { schemes }
        }
        Some("date-time") => StrFormat::DateTime,
        Some("partial-date-time") => StrFormat::NaiveDateTime,
        Some("date") => StrFormat::Date,
        Some("time") => StrFormat::Time,
        Some("partial-time") => StrFormat::NaiveTime,
        Some("uuid") => StrFormat::Uuid,
        Some("email") => StrFormat::Email,
        Some("ipv4") => StrFormat::Ipv4,
        Some("ipv6") => StrFormat::Ipv6,
        Some("ip") => StrFormat::Ip,
        _ => StrFormat::None,
    };
    Ok(StrRules {
        min_length: usize_keyword(obj, "minLength"),
        max_length: usize_keyword(obj, "maxLength"),
        pattern,
        format,
    })
}

pub(super) fn number_rules(obj: &Map<String, Value>, integer: bool) -> NumRules {
    let bound = |key: &str| {
        obj.get(key)
            .and_then(Value::as_number)
            .map(|n| make_bound(Num::of(n), integer))
    };
    let mut rules = NumRules {
        multiple_of: bound("multipleOf"),
        le: bound("maximum"),
        lt: bound("exclusiveMaximum"),
        ge: bound("minimum"),
        gt: bound("exclusiveMinimum"),
    };
    // Draft 4 spelled exclusive bounds as booleans beside `minimum`/`maximum`.
    if obj.get("exclusiveMaximum") == Some(&Value::Bool(true)) {
        rules.lt = rules.le.take();
    }
    if obj.get("exclusiveMinimum") == Some(&Value::Bool(true)) {
        rules.gt = rules.ge.take();
    }
    // The range of the Rust integer type is enforced too: serde would refuse anything
    // outside it, and the error must come from here, in pydantic's words.
    if integer
        && let Some((min, max)) = obj
            .get("format")
            .and_then(Value::as_str)
            .and_then(implied_range)
    {
        if !tighter_or_equal(rules.le.as_ref(), rules.lt.as_ref(), Num::Int(max), true) {
            rules.le = Some(make_bound(Num::Int(max), true));
        }
        if !tighter_or_equal(rules.ge.as_ref(), rules.gt.as_ref(), Num::Int(min), false) {
            rules.ge = Some(make_bound(Num::Int(min), true));
        }
    }
    rules
}

/// Whether an inclusive or exclusive bound already excludes everything `implied` does.
pub(super) fn tighter_or_equal(
    inclusive: Option<&Bound>,
    exclusive: Option<&Bound>,
    implied: Num,
    upper: bool,
) -> bool {
    let within = |b: &Bound| match b.value.cmp_to(implied) {
        Some(std::cmp::Ordering::Less) => upper,
        Some(std::cmp::Ordering::Greater) => !upper,
        Some(std::cmp::Ordering::Equal) => true,
        None => false,
    };
    inclusive.is_some_and(within) || exclusive.is_some_and(within)
}

pub(super) fn make_bound(value: Num, integer: bool) -> Bound {
    let value = match value {
        Num::Float(f) if integer && f.fract() == 0.0 && f.abs() < 1e30 => Num::Int(f as i128),
        Num::Int(i) if !integer => Num::Float(i as f64),
        other => other,
    };
    let (shown, ctx) = match value {
        Num::Int(i) => (
            i.to_string(),
            i64::try_from(i)
                .map(Value::from)
                .or_else(|_| u64::try_from(i).map(Value::from))
                .unwrap_or_else(|_| Value::from(i as f64)),
        ),
        // Pydantic-core prints floats with Rust's `Display` (`0`, `0.5`) and hands the
        // float itself to `ctx`, which JSON writes as `0.0`.
        Num::Float(f) => (f.to_string(), Value::from(f)),
    };
    Bound { value, shown, ctx }
}

/// Whether a successful serde deserialization already guarantees what this one schema
/// object says (its subschemas are judged on their own).
pub(super) fn is_covered(obj: &Map<String, Value>) -> bool {
    if obj.get("x-rt-serde-enforced") == Some(&Value::Bool(true)) {
        return true;
    }
    let format = obj.get("format").and_then(Value::as_str);
    let implied = format.and_then(implied_range);
    let matches_implied = |key: &str, pick: fn((i128, i128)) -> i128| match (
        obj.get(key).and_then(Value::as_number),
        implied,
    ) {
        (Some(n), Some(range)) => {
            Num::of(n).cmp_to(Num::Int(pick(range))) == Some(std::cmp::Ordering::Equal)
        }
        _ => false,
    };
    let prefix_len = match obj.get("prefixItems") {
        Some(Value::Array(list)) => Some(list.len() as u64),
        _ => None,
    };
    obj.iter().all(|(key, value)| match key.as_str() {
        "type" | "properties" | "required" | "items" | "prefixItems" | "anyOf" | "oneOf"
        | "allOf" | "enum" | "const" | "$ref" => true,
        "additionalProperties" => true,
        "format" => match value.as_str() {
            Some(f) if NUMERIC_FORMATS.contains(&f) => true,
            // Formats this validator does not check add nothing to enforce.
            Some(f) => !matches!(
                f,
                "uri"
                    | "url"
                    | "date-time"
                    | "partial-date-time"
                    | "date"
                    | "time"
                    | "partial-time"
                    | "uuid"
                    | "email"
                    | "ipv4"
                    | "ipv6"
                    | "ip"
            ),
            None => true,
        },
        "minimum" => matches_implied(key, |(min, _)| min),
        "maximum" => matches_implied(key, |(_, max)| max),
        "minItems" | "maxItems" => prefix_len.is_some() && value.as_u64() == prefix_len,
        // `NonZeroI*`: schemars writes `not: {const: 0}` and serde checks it.
        "not" => implied.is_some() && value.get("const") == Some(&Value::from(0)),
        // Integer-keyed maps: serde parses every key, so the key pattern holds.
        "patternProperties" => value
            .as_object()
            .is_some_and(|patterns| patterns.keys().all(|p| p == r"^\d+$" || p == r"^-?\d+$")),
        k if ANNOTATIONS.contains(&k) || k.starts_with("x-") => true,
        "minLength" | "maxLength" | "pattern" | "exclusiveMinimum" | "exclusiveMaximum"
        | "multipleOf" | "uniqueItems" | "minProperties" | "maxProperties" => false,
        // Keywords the validator does not know are not enforced either.
        _ => true,
    })
}
