//! Walking a value against the compiled graph: pydantic's lax coercions, in place, and
//! every error in pydantic's order.

use std::hash::{Hash, Hasher};

use serde_json::{Map, Number, Value};

use super::compile::{
    Additional, ArrayRules, Bound, Compiled, EnumRules, Kind, NodeId, Num, NumRules, ObjectRules,
    StrFormat, StrRules, Tagged, UnionRules,
};
use super::datetime::{self, DtError};
use super::error::{LocItem, ValidationError, plural};
use super::formats;

/// Deeper than any request serde_json parses (its limit is 128); a recursive schema walked
/// this deep is a `$ref` loop.
const MAX_DEPTH: u32 = 512;

/// How many node visits union trials may spend per validation. Trying every branch of
/// nested unions is exponential in the nesting; past this budget a union tries only its
/// likeliest branch, so the walk stays linear in the input.
const TRIAL_BUDGET: u64 = 200_000;

/// A location as a linked list on the call stack: free to extend, turned into a
/// `Vec<LocItem>` only when an error is reported.
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    Root(&'a [LocItem]),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn len(&self) -> usize {
        match self {
            Path::Root(prefix) => prefix.len(),
            Path::Key(parent, _) | Path::Index(parent, _) => parent.len() + 1,
        }
    }

    fn fill(&self, out: &mut Vec<LocItem>) {
        match self {
            Path::Root(prefix) => out.extend_from_slice(prefix),
            Path::Key(parent, key) => {
                parent.fill(out);
                out.push(LocItem::Key((*key).to_owned()));
            }
            Path::Index(parent, index) => {
                parent.fill(out);
                out.push(LocItem::Index(*index));
            }
        }
    }

    pub(crate) fn loc(&self) -> Vec<LocItem> {
        let mut out = Vec::with_capacity(self.len());
        self.fill(&mut out);
        out
    }
}

/// Per-call state.
pub(crate) struct Walk<'c> {
    graph: &'c Compiled,
    depth: u32,
    /// Node visits left for union trials.
    budget: u64,
    /// How many union trials enclose the current node.
    trials: u32,
}

/// How well a failing union branch matches the input: exact type, declared keys present,
/// fewer errors. Higher is better.
type BranchScore = (bool, usize, std::cmp::Reverse<usize>);

/// The message of `model_attributes_type`, as in [`ValidationError::model_attributes_type`].
const MODEL_ATTRIBUTES_TYPE: &str =
    "Input should be a valid dictionary or object to extract fields from";

fn error(
    path: &Path<'_>,
    error_type: &'static str,
    msg: impl Into<String>,
    input: &Value,
) -> ValidationError {
    ValidationError::new(error_type, path.loc(), msg, input.clone())
}

// The `report*` helpers build errors in their own frames: the recursive functions stay
// small on the stack, which decides how deep a value can be walked on a 2 MiB worker
// stack in a debug build.

/// Pushes an error quoting `input`.
#[inline(never)]
fn report(
    errors: &mut Vec<ValidationError>,
    path: &Path<'_>,
    error_type: &'static str,
    msg: &str,
    input: &Value,
) {
    errors.push(error(path, error_type, msg, input));
}

/// Pushes `missing` for the field at `path`, quoting the object it was looked up in.
#[inline(never)]
fn report_missing(errors: &mut Vec<ValidationError>, path: &Path<'_>, input: Value) {
    errors.push(ValidationError::missing_from(path.loc(), input));
}

#[inline(never)]
fn report_too_short(
    errors: &mut Vec<ValidationError>,
    path: &Path<'_>,
    container: &str,
    min: usize,
    actual: usize,
    input: &Value,
) {
    let msg = format!(
        "{container} should have at least {min} item{} after validation, not {actual}",
        plural(min)
    );
    errors.push(
        error(path, "too_short", msg, input)
            .with_ctx("field_type", container)
            .with_ctx("min_length", min)
            .with_ctx("actual_length", actual),
    );
}

#[inline(never)]
fn report_too_long(
    errors: &mut Vec<ValidationError>,
    path: &Path<'_>,
    container: &str,
    max: usize,
    actual: usize,
    input: &Value,
) {
    let msg = format!(
        "{container} should have at most {max} item{} after validation, not {actual}",
        plural(max)
    );
    errors.push(
        error(path, "too_long", msg, input)
            .with_ctx("field_type", container)
            .with_ctx("max_length", max)
            .with_ctx("actual_length", actual),
    );
}

impl<'c> Walk<'c> {
    pub(crate) fn new(graph: &'c Compiled) -> Self {
        Walk {
            graph,
            depth: 0,
            budget: TRIAL_BUDGET,
            trials: 0,
        }
    }

    /// Validates a parameter object: a missing parameter's `input` is `null`.
    pub(crate) fn params(
        &mut self,
        value: &mut Value,
        path: &Path<'_>,
        errors: &mut Vec<ValidationError>,
    ) {
        let graph = self.graph;
        let root = graph.root;
        let id = self.bare_target(root);
        let node = &graph.nodes[id];
        match (&node.kind, value.is_object()) {
            (Kind::Object(rules), true) => {
                let start = errors.len();
                self.object(rules, value, path, errors, true);
                if errors.len() == start {
                    self.also(node, value, path, errors);
                }
            }
            _ => self.check(root, value, path, errors),
        }
    }

    /// Follows bare `$ref`s.
    fn bare_target(&self, mut id: NodeId) -> NodeId {
        for _ in 0..self.graph.nodes.len() {
            let node = &self.graph.nodes[id];
            match node.kind {
                Kind::Ref(next) if node.also.is_empty() && node.not.is_none() && !node.nullable => {
                    id = next
                }
                _ => break,
            }
        }
        id
    }

    pub(crate) fn check(
        &mut self,
        id: NodeId,
        value: &mut Value,
        path: &Path<'_>,
        errors: &mut Vec<ValidationError>,
    ) {
        let graph = self.graph;
        let Some(node) = graph.nodes.get(id) else {
            return;
        };
        if value.is_null() && node.nullable {
            return;
        }
        if self.depth >= MAX_DEPTH {
            // No copy of the input: it is deeper than anything worth quoting, and copying
            // (and later dropping) it would recurse once more per level.
            let msg = "Recursion error - cyclic reference detected";
            report(errors, path, "recursion_loop", msg, &Value::Null);
            return;
        }
        self.depth += 1;
        if self.trials > 0 {
            self.budget = self.budget.saturating_sub(1);
        }
        let start = errors.len();
        // `not` quotes the value as received; everything else has coerced it by then.
        let original = node.not.as_ref().map(|_| value.clone());
        match &node.kind {
            Kind::Any => {}
            Kind::Never => report(
                errors,
                path,
                "extra_forbidden",
                "Extra inputs are not permitted",
                value,
            ),
            Kind::Null => {
                if !value.is_null() {
                    report(errors, path, "none_required", "Input should be None", value);
                }
            }
            Kind::Bool => self.boolean(value, path, errors),
            Kind::Int(rules) => self.integer(rules, value, path, errors),
            Kind::Float(rules) => self.float(rules, value, path, errors),
            Kind::Str(rules) => self.string(rules, value, path, errors),
            Kind::Array(rules) => self.array(rules, value, path, errors),
            Kind::Object(rules) => self.object(rules, value, path, errors, false),
            Kind::Enum(rules) => self.enumeration(rules, value, path, errors),
            Kind::Ref(target) => self.check(*target, value, path, errors),
            Kind::Union(rules) => self.union(rules, value, path, errors),
        }
        if errors.len() == start {
            self.also(node, value, path, errors);
        }
        if let (Some(not), Some(original), true) = (&node.not, original, errors.len() == start)
            && !self.fails(not.node, value, path)
        {
            report(errors, path, "not", &not.message, &original);
        }
        self.depth -= 1;
    }

    fn also(
        &mut self,
        node: &super::compile::Node,
        value: &mut Value,
        path: &Path<'_>,
        errors: &mut Vec<ValidationError>,
    ) {
        for &extra in node.also.iter() {
            self.check(extra, value, path, errors);
        }
    }

    /// Whether `id` rejects `value`, checked on a copy so the excluded schema cannot coerce
    /// the real value.
    fn fails(&mut self, id: NodeId, value: &Value, path: &Path<'_>) -> bool {
        let mut probe = value.clone();
        let mut scratch = Vec::new();
        self.check(id, &mut probe, path, &mut scratch);
        !scratch.is_empty()
    }

    fn boolean(&mut self, value: &mut Value, path: &Path<'_>, errors: &mut Vec<ValidationError>) {
        let parsed = match &*value {
            Value::Bool(_) => return,
            Value::String(s) => str_as_bool(s).ok_or("bool_parsing"),
            Value::Number(n) => match Num::of(n) {
                Num::Int(0) => Ok(false),
                Num::Int(1) => Ok(true),
                Num::Int(_) => Err("bool_parsing"),
                Num::Float(0.0) => Ok(false),
                Num::Float(1.0) => Ok(true),
                Num::Float(f) if f.fract() == 0.0 => Err("bool_parsing"),
                Num::Float(_) => Err("bool_type"),
            },
            _ => Err("bool_type"),
        };
        match parsed {
            Ok(b) => *value = Value::Bool(b),
            Err("bool_parsing") => errors.push(error(
                path,
                "bool_parsing",
                "Input should be a valid boolean, unable to interpret input",
                value,
            )),
            Err(_) => errors.push(error(
                path,
                "bool_type",
                "Input should be a valid boolean",
                value,
            )),
        }
    }

    fn integer(
        &mut self,
        rules: &NumRules,
        value: &mut Value,
        path: &Path<'_>,
        errors: &mut Vec<ValidationError>,
    ) {
        let (n, changed) = match &*value {
            Value::Number(n) if n.is_i64() || n.is_u64() => (Num::of(n), false),
            Value::Number(n) => match n.as_f64() {
                Some(f) if !f.is_finite() => return errors.push(finite_number(path, value)),
                Some(f) if f.fract() != 0.0 => {
                    return errors.push(error(
                        path,
                        "int_from_float",
                        "Input should be a valid integer, got a number with a fractional part",
                        value,
                    ));
                }
                Some(f) if f.abs() < 1.7e38 => (Num::Int(f as i128), true),
                _ => return errors.push(int_parsing_size(path, value)),
            },
            Value::String(s) => match str_as_int(s) {
                Ok(i) => (Num::Int(i), true),
                Err(IntError::Size) => return errors.push(int_parsing_size(path, value)),
                Err(IntError::Parsing) => {
                    return errors.push(error(
                        path,
                        "int_parsing",
                        "Input should be a valid integer, unable to parse string as an integer",
                        value,
                    ));
                }
            },
            Value::Bool(b) => (Num::Int(i128::from(*b)), true),
            _ => {
                return errors.push(error(
                    path,
                    "int_type",
                    "Input should be a valid integer",
                    value,
                ));
            }
        };
        if let Some(e) = number_constraints(rules, n, path, value) {
            return errors.push(e);
        }
        if changed {
            let Num::Int(i) = n else { return };
            match i64::try_from(i)
                .map(Number::from)
                .or_else(|_| u64::try_from(i).map(Number::from))
            {
                Ok(number) => *value = Value::Number(number),
                // Only a hand-written schema without a Rust integer `format` gets here.
                Err(_) => errors.push(int_parsing_size(path, value)),
            }
        }
    }

    fn float(
        &mut self,
        rules: &NumRules,
        value: &mut Value,
        path: &Path<'_>,
        errors: &mut Vec<ValidationError>,
    ) {
        let (f, changed) = match &*value {
            Value::Number(n) => (Num::of(n), false),
            Value::String(s) => match str_as_float(s) {
                Some(f) => (Num::Float(f), true),
                None => {
                    return errors.push(error(
                        path,
                        "float_parsing",
                        "Input should be a valid number, unable to parse string as a number",
                        value,
                    ));
                }
            },
            Value::Bool(b) => (Num::Float(if *b { 1.0 } else { 0.0 }), true),
            _ => {
                return errors.push(error(
                    path,
                    "float_type",
                    "Input should be a valid number",
                    value,
                ));
            }
        };
        // Pydantic accepts `inf` and `nan` strings; JSON (and so the Rust value built from
        // it) cannot carry them.
        if !f.as_f64().is_finite() {
            return errors.push(finite_number(path, value));
        }
        if let Some(e) = number_constraints(rules, f, path, value) {
            return errors.push(e);
        }
        if changed && let Some(number) = Number::from_f64(f.as_f64()) {
            *value = Value::Number(number);
        }
    }

    fn string(
        &mut self,
        rules: &StrRules,
        value: &mut Value,
        path: &Path<'_>,
        errors: &mut Vec<ValidationError>,
    ) {
        let s = match &*value {
            Value::String(s) => s,
            Value::Number(n) if rules.format.takes_numbers() => {
                let ts = n.as_f64().unwrap_or(f64::NAN);
                return self.numeric_temporal(&rules.format, ts, value, path, errors);
            }
            _ => {
                let (error_type, msg) = rules.format.type_error();
                return errors.push(error(path, error_type, msg, value));
            }
        };
        if let StrFormat::Url { schemes } = &rules.format {
            // Pydantic checks URLs by their own rules: length in bytes, then emptiness, then
            // the parser, so `minLength`/`maxLength` surface as `url_*` errors.
            let schemes = schemes
                .as_ref()
                .map(|(list, expected)| (&**list, expected.as_str()));
            if let Err(e) = formats::parse_url(s, rules.max_length, schemes) {
                errors.push(e.into_validation_error(path.loc(), value.clone()));
            }
            return;
        }
        if let Some(e) = string_constraints(rules, s, path, value) {
            return errors.push(e);
        }
        let canonical = match rules.format.check(s) {
            Ok(canonical) => canonical,
            Err(e) => return errors.push(e.into_error(path, value)),
        };
        if let Some(canonical) = canonical {
            *value = Value::String(canonical);
        }
    }

    fn numeric_temporal(
        &mut self,
        format: &StrFormat,
        ts: f64,
        value: &mut Value,
        path: &Path<'_>,
        errors: &mut Vec<ValidationError>,
    ) {
        let result = match format {
            StrFormat::DateTime | StrFormat::NaiveDateTime => {
                match datetime::datetime_from_timestamp(ts) {
                    // A timestamp is a UTC instant, which a naive datetime cannot hold.
                    Ok(_) if matches!(format, StrFormat::NaiveDateTime) => {
                        Err(FormatError::TimezoneNaive)
                    }
                    Ok(dt) => Ok(dt.to_string()),
                    Err(e) => Err(FormatError::DatetimeParsing(e)),
                }
            }
            StrFormat::Date => match datetime::datetime_from_timestamp(ts) {
                Ok(dt) if dt.time.is_midnight() => Ok(dt.date.to_string()),
                Ok(_) => Err(FormatError::DateInexact),
                Err(e) => Err(FormatError::DateFromDatetime(e)),
            },
            _ => {
                let offset = if matches!(format, StrFormat::Time) {
                    Some(0)
                } else {
                    None
                };
                match datetime::time_from_seconds(ts, offset) {
                    Ok(t) => Ok(t.to_string()),
                    Err(e) => Err(FormatError::TimeParsing(e)),
                }
            }
        };
        match result {
            Ok(s) => *value = Value::String(s),
            Err(e) => errors.push(e.into_error(path, value)),
        }
    }

    fn array(
        &mut self,
        rules: &ArrayRules,
        value: &mut Value,
        path: &Path<'_>,
        errors: &mut Vec<ValidationError>,
    ) {
        let Value::Array(items) = value else {
            let (error_type, msg) = match rules.field_type {
                "Tuple" => ("tuple_type", "Input should be a valid tuple"),
                "Set" => ("set_type", "Input should be a valid set"),
                _ => ("list_type", "Input should be a valid list"),
            };
            return report(errors, path, error_type, msg, value);
        };
        let len = items.len();
        let max = match (rules.max_items, rules.closed) {
            (Some(max), true) => Some(max.min(rules.prefix.len())),
            (None, true) => Some(rules.prefix.len()),
            (max, false) => max,
        };
        // Pydantic stops at the first item past the maximum and reports only that.
        if let Some(max) = max
            && len > max
        {
            return report_too_long(errors, path, rules.field_type, max, len, value);
        }
        // Length errors quote the list as received, so keep a copy before items coerce.
        let short = rules.min_items.filter(|&min| len < min);
        let snapshot = (short.is_some() && rules.prefix.is_empty()).then(|| value.clone());
        let Value::Array(items) = value else { return };
        let start = errors.len();
        for (i, item) in items.iter_mut().enumerate() {
            let node = match rules.prefix.get(i) {
                Some(&node) => Some(node),
                None => rules.items,
            };
            if let Some(node) = node {
                self.check(node, item, &Path::Index(path, i), errors);
            }
        }
        if !rules.prefix.is_empty() {
            // A tuple reports each missing position, quoting the whole tuple.
            let required = rules.min_items.unwrap_or(0).min(rules.prefix.len());
            if len < required {
                let input = Value::Array(items.clone());
                for i in len..required {
                    report_missing(errors, &Path::Index(path, i), input.clone());
                }
            }
            return;
        }
        if errors.len() != start {
            return;
        }
        if let (Some(min), Some(snapshot)) = (short, snapshot) {
            return report_too_short(errors, path, rules.field_type, min, len, &snapshot);
        }
        if rules.unique
            && let Some(dup) = first_duplicate(items)
        {
            let msg = format!("List should have unique items, item {dup} is a duplicate");
            let input = Value::Array(items.clone());
            report(errors, path, "unique_items", &msg, &input);
        }
    }

    fn object(
        &mut self,
        rules: &ObjectRules,
        value: &mut Value,
        path: &Path<'_>,
        errors: &mut Vec<ValidationError>,
        params: bool,
    ) {
        let len = match &*value {
            Value::Object(map) => map.len(),
            // FastAPI validates with `from_attributes=True`, so every model, nested or not,
            // reports a non-object as `model_attributes_type`.
            _ if rules.model => {
                return report(
                    errors,
                    path,
                    "model_attributes_type",
                    MODEL_ATTRIBUTES_TYPE,
                    value,
                );
            }
            _ => {
                return report(
                    errors,
                    path,
                    "dict_type",
                    "Input should be a valid dictionary",
                    value,
                );
            }
        };
        if let Some(max) = rules.max_props.filter(|&max| len > max) {
            return report_too_long(errors, path, "Dictionary", max, len, value);
        }
        // A missing field, or a dictionary too short, quotes the object as received,
        // before its fields coerce.
        let missing_any = !params
            && value.as_object().is_some_and(|map| {
                rules
                    .props
                    .iter()
                    .any(|(name, prop)| prop.required && !map.contains_key(name))
            });
        let short = rules.min_props.filter(|&min| len < min);
        let snapshot = (missing_any || short.is_some()).then(|| value.clone());
        let Value::Object(map) = value else { return };
        let start = errors.len();
        for (name, prop) in &rules.props {
            match map.get_mut(name) {
                Some(field) => self.check(prop.node, field, &Path::Key(path, name), errors),
                None if prop.required => {
                    let input = if params {
                        Value::Null
                    } else {
                        snapshot.clone().unwrap_or(Value::Null)
                    };
                    report_missing(errors, &Path::Key(path, name), input);
                }
                None => {}
            }
        }
        if rules.checks_extra_keys() {
            self.extra_keys(rules, map, path, errors);
        }
        if let (Some(min), Some(input), true) = (short, &snapshot, errors.len() == start) {
            report_too_short(errors, path, "Dictionary", min, len, input);
        }
    }

    fn extra_keys(
        &mut self,
        rules: &ObjectRules,
        map: &mut Map<String, Value>,
        path: &Path<'_>,
        errors: &mut Vec<ValidationError>,
    ) {
        for (key, field) in map.iter_mut() {
            if rules.props.contains_key(key) {
                continue;
            }
            let child = Path::Key(path, key);
            if let Some((_, node)) = rules.pattern_props.iter().find(|(re, _)| re.is_match(key)) {
                self.check(*node, field, &child, errors);
                continue;
            }
            match rules.additional {
                Additional::Allow => {}
                Additional::Forbid => {
                    report(
                        errors,
                        &child,
                        "extra_forbidden",
                        "Extra inputs are not permitted",
                        field,
                    );
                }
                Additional::Schema(node) => self.check(node, field, &child, errors),
            }
        }
    }

    fn enumeration(
        &mut self,
        rules: &EnumRules,
        value: &mut Value,
        path: &Path<'_>,
        errors: &mut Vec<ValidationError>,
    ) {
        if rules.values.iter().any(|allowed| json_eq(allowed, value)) {
            return;
        }
        // Lax mode: a string naming a numeric member (a query parameter) is that member.
        if let Value::String(s) = &*value {
            let parsed = str_as_float(s).map(Num::Float);
            let member = parsed.and_then(|n| {
                rules.values.iter().find(|allowed| match allowed {
                    Value::Number(m) => Num::of(m).cmp_to(n) == Some(std::cmp::Ordering::Equal),
                    _ => false,
                })
            });
            if let Some(member) = member {
                *value = member.clone();
                return;
            }
        }
        let msg = format!("Input should be {}", rules.expected);
        errors.push(
            error(path, rules.error_type, msg, value).with_ctx("expected", rules.expected.clone()),
        );
    }

    fn union(
        &mut self,
        rules: &UnionRules,
        value: &mut Value,
        path: &Path<'_>,
        errors: &mut Vec<ValidationError>,
    ) {
        if let Some(tagged) = &rules.tagged {
            return self.tagged(tagged, value, path, errors);
        }
        // Pydantic's smart mode, simplified: branches whose type matches the input exactly
        // are tried first, then the others (lax coercion); the first that passes wins.
        let exact: Vec<bool> = rules
            .branches
            .iter()
            .map(|&b| self.exact_type(b, value, 0))
            .collect();
        let order = exact
            .iter()
            .enumerate()
            .filter(|(_, e)| **e)
            .chain(exact.iter().enumerate().filter(|(_, e)| !**e))
            .map(|(i, _)| i);
        // When every branch fails, the errors of the best-matching one are reported: an
        // exact type match first, then the most declared keys present, then the fewest
        // errors, then the earliest. Pydantic lists every branch's errors under branch
        // names (`int`, `str`, `Cat`) that a JSON Schema cannot supply.
        let mut best: Option<(BranchScore, Vec<ValidationError>)> = None;
        for i in order {
            let branch = rules.branches[i];
            if self.budget == 0 {
                // Out of budget: validate the likeliest branch in place, once.
                if best.is_none() {
                    return self.check(branch, value, path, errors);
                }
                break;
            }
            let mut trial = value.clone();
            let mut trial_errors = Vec::new();
            self.trials += 1;
            self.check(branch, &mut trial, path, &mut trial_errors);
            self.trials -= 1;
            if trial_errors.is_empty() {
                *value = trial;
                return;
            }
            let score = (
                exact[i],
                self.declared_keys(branch, value),
                std::cmp::Reverse(trial_errors.len()),
            );
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, trial_errors));
            }
        }
        if let Some((_, best)) = best {
            errors.extend(best);
        }
    }

    fn tagged(
        &mut self,
        tagged: &Tagged,
        value: &mut Value,
        path: &Path<'_>,
        errors: &mut Vec<ValidationError>,
    ) {
        let Value::Object(map) = &*value else {
            return report(
                errors,
                path,
                "model_attributes_type",
                MODEL_ATTRIBUTES_TYPE,
                value,
            );
        };
        let Some(tag) = map.get(&tagged.property) else {
            return report_tag(errors, path, tagged, None, value);
        };
        match tagged
            .tags
            .iter()
            .find(|(name, _)| matches!(tag, Value::String(t) if t == name))
        {
            // Pydantic puts the tag into the location of a discriminated branch's errors.
            Some((name, node)) => self.check(*node, value, &Path::Key(path, name), errors),
            None => report_tag(errors, path, tagged, Some(tag), value),
        }
    }

    /// Whether `value`'s JSON type is the one the node validates, without coercion.
    fn exact_type(&self, id: NodeId, value: &Value, depth: u32) -> bool {
        let Some(node) = self.graph.nodes.get(id) else {
            return false;
        };
        if depth > 32 {
            return false;
        }
        if value.is_null() && node.nullable {
            return true;
        }
        match (&node.kind, value) {
            (Kind::Any, _) => true,
            (Kind::Null, Value::Null) | (Kind::Bool, Value::Bool(_)) => true,
            (Kind::Int(_), Value::Number(n)) => n.is_i64() || n.is_u64(),
            (Kind::Float(_), Value::Number(_)) | (Kind::Str(_), Value::String(_)) => true,
            (Kind::Array(_), Value::Array(_)) | (Kind::Object(_), Value::Object(_)) => true,
            (Kind::Enum(rules), v) => rules.values.iter().any(|allowed| json_eq(allowed, v)),
            (Kind::Ref(target), v) => self.exact_type(*target, v, depth + 1),
            (Kind::Union(rules), v) => rules
                .branches
                .iter()
                .any(|&b| self.exact_type(b, v, depth + 1)),
            _ => false,
        }
    }

    /// How many of an object's keys a branch declares: which variant the input aims at.
    fn declared_keys(&self, id: NodeId, value: &Value) -> usize {
        let (Value::Object(map), Kind::Object(rules)) =
            (value, &self.graph.nodes[self.bare_target(id)].kind)
        else {
            return 0;
        };
        map.keys().filter(|k| rules.props.contains_key(*k)).count()
    }
}

/// `union_tag_not_found` without a tag, `union_tag_invalid` with one.
#[inline(never)]
fn report_tag(
    errors: &mut Vec<ValidationError>,
    path: &Path<'_>,
    tagged: &Tagged,
    tag: Option<&Value>,
    input: &Value,
) {
    let Some(tag) = tag else {
        let msg = format!(
            "Unable to extract tag using discriminator {}",
            tagged.property_repr
        );
        return errors.push(
            error(path, "union_tag_not_found", msg, input)
                .with_ctx("discriminator", tagged.property_repr.clone()),
        );
    };
    let tag = match tag {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let msg = format!(
        "Input tag '{tag}' found using {} does not match any of the expected tags: {}",
        tagged.property_repr, tagged.expected_tags
    );
    errors.push(
        error(path, "union_tag_invalid", msg, input)
            .with_ctx("discriminator", tagged.property_repr.clone())
            .with_ctx("tag", tag)
            .with_ctx("expected_tags", tagged.expected_tags.clone()),
    );
}

fn finite_number(path: &Path<'_>, value: &Value) -> ValidationError {
    error(
        path,
        "finite_number",
        "Input should be a finite number",
        value,
    )
}

fn int_parsing_size(path: &Path<'_>, value: &Value) -> ValidationError {
    error(
        path,
        "int_parsing_size",
        "Unable to parse input string as an integer, exceeded maximum size",
        value,
    )
}

/// The first broken numeric constraint, in pydantic-core's order of checks.
fn number_constraints(
    rules: &NumRules,
    n: Num,
    path: &Path<'_>,
    input: &Value,
) -> Option<ValidationError> {
    use std::cmp::Ordering::{Greater, Less};
    if let Some(m) = &rules.multiple_of
        && !is_multiple(n, m.value)
    {
        let msg = format!("Input should be a multiple of {}", m.shown);
        return Some(error(path, "multiple_of", msg, input).with_ctx("multiple_of", m.ctx.clone()));
    }
    /// The bound when `n` is on its wrong side (`refused`, or equal for an exclusive one).
    fn broken(
        bound: &Option<Bound>,
        n: Num,
        refused: std::cmp::Ordering,
        inclusive: bool,
    ) -> Option<&Bound> {
        bound.as_ref().filter(|b| match n.cmp_to(b.value) {
            Some(o) => o == refused || (!inclusive && o == std::cmp::Ordering::Equal),
            None => true,
        })
    }
    let checks = [
        (
            broken(&rules.le, n, Greater, true),
            "less_than_equal",
            "less than or equal to",
            "le",
        ),
        (
            broken(&rules.lt, n, Greater, false),
            "less_than",
            "less than",
            "lt",
        ),
        (
            broken(&rules.ge, n, Less, true),
            "greater_than_equal",
            "greater than or equal to",
            "ge",
        ),
        (
            broken(&rules.gt, n, Less, false),
            "greater_than",
            "greater than",
            "gt",
        ),
    ];
    let (bound, error_type, words, key) = checks
        .into_iter()
        .find_map(|(b, t, w, k)| Some((b?, t, w, k)))?;
    let msg = format!("Input should be {words} {}", bound.shown);
    Some(error(path, error_type, msg, input).with_ctx(key, bound.ctx.clone()))
}

fn is_multiple(n: Num, m: Num) -> bool {
    match (n, m) {
        (Num::Int(_), Num::Int(0)) => true,
        (Num::Int(a), Num::Int(b)) => a % b == 0,
        (a, b) => {
            let (a, b) = (a.as_f64(), b.as_f64());
            if b == 0.0 {
                return true;
            }
            // Pydantic-core's tolerance: a remainder within a billionth of the value.
            let rem = (a % b).abs();
            let threshold = a.abs() / 1e9;
            rem <= threshold || (rem - b.abs()).abs() <= threshold
        }
    }
}

/// The first broken string constraint, in pydantic-core's order: lengths, then pattern.
fn string_constraints(
    rules: &StrRules,
    s: &str,
    path: &Path<'_>,
    input: &Value,
) -> Option<ValidationError> {
    // Characters are counted only when the byte length cannot decide (bytes >= chars).
    let mut chars = None;
    let mut count = || *chars.get_or_insert_with(|| s.chars().count());
    if let Some(min) = rules.min_length
        && (s.len() < min || count() < min)
    {
        let msg = format!("String should have at least {min} character{}", plural(min));
        return Some(error(path, "string_too_short", msg, input).with_ctx("min_length", min));
    }
    if let Some(max) = rules.max_length
        && s.len() > max
        && count() > max
    {
        let msg = format!("String should have at most {max} character{}", plural(max));
        return Some(error(path, "string_too_long", msg, input).with_ctx("max_length", max));
    }
    if let Some(pattern) = &rules.pattern
        && !pattern.regex.is_match(s)
    {
        let msg = format!("String should match pattern '{}'", pattern.source);
        return Some(
            error(path, "string_pattern_mismatch", msg, input)
                .with_ctx("pattern", pattern.source.clone()),
        );
    }
    None
}

/// A format check that failed.
enum FormatError {
    DatetimeFromDate(DtError),
    DatetimeParsing(DtError),
    TimezoneAware,
    TimezoneNaive,
    DateFromDatetime(DtError),
    DateInexact,
    TimeParsing(DtError),
    Uuid(String),
    Email(&'static str),
    Ipv4,
    Ipv6,
    Ip,
}

impl FormatError {
    fn into_error(self, path: &Path<'_>, input: &Value) -> ValidationError {
        let with_reason = |error_type: &'static str, prefix: &str, reason: &str| {
            error(path, error_type, format!("{prefix}, {reason}"), input).with_ctx("error", reason)
        };
        match self {
            FormatError::DatetimeFromDate(e) => with_reason(
                "datetime_from_date_parsing",
                "Input should be a valid datetime or date",
                e.message(),
            ),
            FormatError::DatetimeParsing(e) => with_reason(
                "datetime_parsing",
                "Input should be a valid datetime",
                e.message(),
            ),
            FormatError::TimezoneAware => error(
                path,
                "timezone_aware",
                "Input should have timezone info",
                input,
            ),
            FormatError::TimezoneNaive => error(
                path,
                "timezone_naive",
                "Input should not have timezone info",
                input,
            ),
            FormatError::DateFromDatetime(e) => with_reason(
                "date_from_datetime_parsing",
                "Input should be a valid date or datetime",
                e.message(),
            ),
            FormatError::DateInexact => error(
                path,
                "date_from_datetime_inexact",
                "Datetimes provided to dates should have zero time - e.g. be exact dates",
                input,
            ),
            FormatError::TimeParsing(e) => with_reason(
                "time_parsing",
                "Input should be in a valid time format",
                e.message(),
            ),
            FormatError::Uuid(reason) => {
                with_reason("uuid_parsing", "Input should be a valid UUID", &reason)
            }
            FormatError::Email(reason) => error(
                path,
                "value_error",
                format!("value is not a valid email address: {reason}"),
                input,
            )
            .with_ctx("reason", reason),
            FormatError::Ipv4 => error(
                path,
                "ip_v4_address",
                "Input is not a valid IPv4 address",
                input,
            ),
            FormatError::Ipv6 => error(
                path,
                "ip_v6_address",
                "Input is not a valid IPv6 address",
                input,
            ),
            FormatError::Ip => error(
                path,
                "ip_any_address",
                "value is not a valid IPv4 or IPv6 address",
                input,
            ),
        }
    }
}

impl StrFormat {
    /// Dates and times also read numbers (unix timestamps, seconds since midnight).
    fn takes_numbers(&self) -> bool {
        matches!(
            self,
            StrFormat::DateTime
                | StrFormat::NaiveDateTime
                | StrFormat::Date
                | StrFormat::Time
                | StrFormat::NaiveTime
        )
    }

    fn type_error(&self) -> (&'static str, &'static str) {
        match self {
            StrFormat::Url { .. } => ("url_type", "URL input should be a string or URL"),
            StrFormat::DateTime | StrFormat::NaiveDateTime => {
                ("datetime_type", "Input should be a valid datetime")
            }
            StrFormat::Date => ("date_type", "Input should be a valid date"),
            StrFormat::Time | StrFormat::NaiveTime => ("time_type", "Input should be a valid time"),
            StrFormat::Uuid => (
                "uuid_type",
                "UUID input should be a string, bytes or UUID object",
            ),
            _ => ("string_type", "Input should be a valid string"),
        }
    }

    /// Checks `s`; `Ok(Some(text))` when the value must be rewritten into the canonical
    /// form chrono's `Deserialize` reads.
    fn check(&self, s: &str) -> Result<Option<String>, FormatError> {
        let canonical = |text: String| if text == s { None } else { Some(text) };
        match self {
            StrFormat::None | StrFormat::Url { .. } => Ok(None),
            StrFormat::DateTime | StrFormat::NaiveDateTime => {
                let naive_wanted = matches!(self, StrFormat::NaiveDateTime);
                let dt = match datetime::parse_datetime(s.as_bytes()) {
                    Ok(dt) => dt,
                    // Pydantic then tries a date, and reports the date's reason.
                    Err(_) => match datetime::parse_date(s.as_bytes()) {
                        Ok(date) => datetime::DateTime {
                            date,
                            time: datetime::Time {
                                hour: 0,
                                minute: 0,
                                second: 0,
                                micro: 0,
                                offset: None,
                            },
                        },
                        Err(e) => return Err(FormatError::DatetimeFromDate(e)),
                    },
                };
                match (dt.time.offset.is_some(), naive_wanted) {
                    (false, false) => Err(FormatError::TimezoneAware),
                    (true, true) => Err(FormatError::TimezoneNaive),
                    _ => Ok(canonical(dt.to_string())),
                }
            }
            StrFormat::Date => match datetime::parse_date(s.as_bytes()) {
                Ok(_) => Ok(None),
                Err(_) => match datetime::parse_datetime(s.as_bytes()) {
                    Ok(dt) if dt.time.is_midnight() => Ok(canonical(dt.date.to_string())),
                    Ok(_) => Err(FormatError::DateInexact),
                    Err(e) => Err(FormatError::DateFromDatetime(e)),
                },
            },
            StrFormat::Time | StrFormat::NaiveTime => match datetime::parse_time(s.as_bytes()) {
                Ok(t) if t.offset.is_some() && matches!(self, StrFormat::NaiveTime) => {
                    Err(FormatError::TimezoneNaive)
                }
                Ok(t) => Ok(canonical(t.to_string())),
                Err(e) => Err(FormatError::TimeParsing(e)),
            },
            StrFormat::Uuid => match formats::uuid_error(s) {
                None => Ok(None),
                Some(reason) => Err(FormatError::Uuid(reason)),
            },
            StrFormat::Email => match formats::email_error(s) {
                None => Ok(None),
                Some(reason) => Err(FormatError::Email(reason)),
            },
            StrFormat::Ipv4 => s
                .parse::<std::net::Ipv4Addr>()
                .map(|_| None)
                .map_err(|_| FormatError::Ipv4),
            StrFormat::Ipv6 => s
                .parse::<std::net::Ipv6Addr>()
                .map(|_| None)
                .map_err(|_| FormatError::Ipv6),
            StrFormat::Ip => s
                .parse::<std::net::IpAddr>()
                .map(|_| None)
                .map_err(|_| FormatError::Ip),
        }
    }
}

/// Pydantic's strings for booleans: `0/off/f/false/n/no` and `1/on/t/true/y/yes`, any case.
fn str_as_bool(s: &str) -> Option<bool> {
    const FALSE: [&str; 6] = ["0", "off", "f", "false", "n", "no"];
    const TRUE: [&str; 6] = ["1", "on", "t", "true", "y", "yes"];
    if FALSE.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        Some(false)
    } else if TRUE.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        Some(true)
    } else {
        None
    }
}

enum IntError {
    Parsing,
    Size,
}

/// Python's `int()` on a string as pydantic uses it: surrounding whitespace, a sign,
/// `_` between digits, and a `.000` tail are allowed.
fn str_as_int(s: &str) -> Result<i128, IntError> {
    let s = s.trim();
    if s.len() > 4300 {
        return Err(IntError::Size);
    }
    let s = match s.find('.') {
        Some(dot) if s[dot + 1..].bytes().all(|b| b == b'0') => &s[..dot],
        _ => s,
    };
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if !valid_digits(digits) {
        return Err(IntError::Parsing);
    }
    let mut n: i128 = 0;
    for b in digits.bytes().filter(|&b| b != b'_') {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(i128::from(b - b'0')))
            .ok_or(IntError::Size)?;
    }
    Ok(if negative { -n } else { n })
}

/// ASCII digits with single underscores only between two digits.
fn valid_digits(digits: &str) -> bool {
    let bytes = digits.as_bytes();
    !bytes.is_empty()
        && bytes.iter().enumerate().all(|(i, &b)| {
            b.is_ascii_digit()
                || (b == b'_'
                    && i > 0
                    && bytes.get(i - 1).is_some_and(u8::is_ascii_digit)
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        })
}

/// Python's `float()` on a string as pydantic uses it (`inf` and `nan` included).
fn str_as_float(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Ok(f) = s.parse::<f64>() {
        return Some(f);
    }
    if !s.contains('_') {
        return None;
    }
    let bytes = s.as_bytes();
    let ok = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'_'
            || (i > 0
                && bytes.get(i - 1).is_some_and(u8::is_ascii_digit)
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
    });
    if !ok {
        return None;
    }
    s.replace('_', "").parse().ok()
}

/// JSON equality, with `1` equal to `1.0`.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            Num::of(x).cmp_to(Num::of(y)) == Some(std::cmp::Ordering::Equal)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn hash_json(value: &Value, state: &mut impl Hasher) {
    match value {
        Value::Null => 0u8.hash(state),
        Value::Bool(b) => b.hash(state),
        Value::Number(n) => {
            // Equal numbers hash alike whatever their spelling (`1` and `1.0`).
            let f = n.as_f64().unwrap_or(0.0);
            if f == 0.0 {
                0u64.hash(state)
            } else {
                f.to_bits().hash(state)
            }
        }
        Value::String(s) => s.hash(state),
        Value::Array(items) => {
            items.len().hash(state);
            for item in items {
                hash_json(item, state);
            }
        }
        Value::Object(map) => {
            // Key order does not matter for equality, so combine the entries commutatively.
            let mut sum: u64 = 0;
            for (k, v) in map {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                k.hash(&mut h);
                hash_json(v, &mut h);
                sum = sum.wrapping_add(h.finish());
            }
            sum.hash(state);
        }
    }
}

/// The index of the first item equal to an earlier one.
fn first_duplicate(items: &[Value]) -> Option<usize> {
    let mut seen: std::collections::HashMap<u64, Vec<usize>> =
        std::collections::HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        hash_json(item, &mut h);
        let bucket = seen.entry(h.finish()).or_default();
        if bucket.iter().any(|&j| json_eq(&items[j], item)) {
            return Some(i);
        }
        bucket.push(i);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_int_strings() {
        let ok = |s: &str| str_as_int(s).ok();
        assert_eq!(ok("12"), Some(12));
        assert_eq!(ok(" 12 "), Some(12));
        assert_eq!(ok("+5"), Some(5));
        assert_eq!(ok("-0"), Some(0));
        assert_eq!(ok("1_000"), Some(1000));
        assert_eq!(ok("12.000"), Some(12));
        assert_eq!(ok("12."), Some(12));
        assert_eq!(ok("1.5"), None);
        assert_eq!(ok("1__0"), None);
        assert_eq!(ok("_1"), None);
        assert_eq!(ok("0x10"), None);
        assert_eq!(ok("1e3"), None);
        assert_eq!(ok(""), None);
        assert_eq!(ok("-"), None);
    }

    #[test]
    fn python_float_strings() {
        assert_eq!(str_as_float(" 1.5 "), Some(1.5));
        assert_eq!(str_as_float("1_0.5"), Some(10.5));
        assert_eq!(str_as_float("1e3"), Some(1000.0));
        assert_eq!(str_as_float("1.5.5"), None);
        assert_eq!(str_as_float("_1"), None);
        assert!(str_as_float("inf").is_some_and(f64::is_infinite));
    }

    #[test]
    fn python_bool_strings() {
        for s in ["0", "off", "F", "false", "n", "NO"] {
            assert_eq!(str_as_bool(s), Some(false), "{s}");
        }
        for s in ["1", "ON", "t", "True", "y", "yes"] {
            assert_eq!(str_as_bool(s), Some(true), "{s}");
        }
        for s in [" yes", "maybe", "", "2"] {
            assert_eq!(str_as_bool(s), None, "{s}");
        }
    }

    #[test]
    fn multiples_tolerate_float_noise() {
        assert!(is_multiple(Num::Float(1.0), Num::Float(0.1)));
        assert!(is_multiple(Num::Float(-1.0), Num::Float(0.1)));
        assert!(!is_multiple(Num::Float(0.3), Num::Float(0.5)));
        assert!(is_multiple(Num::Int(9), Num::Int(3)));
        assert!(!is_multiple(Num::Int(4), Num::Int(3)));
    }

    #[test]
    fn duplicates_compare_as_json() {
        use serde_json::json;
        let items = [json!(1), json!({"a": 1, "b": 2}), json!({"b": 2, "a": 1})];
        assert_eq!(first_duplicate(&items), Some(2));
        assert_eq!(first_duplicate(&[json!(1), json!(1.0)]), Some(1));
        assert_eq!(first_duplicate(&[json!(1), json!("1")]), None);
    }
}
