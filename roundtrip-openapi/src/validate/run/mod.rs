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

mod lax;
mod rules;

use self::lax::*;
use self::rules::*;

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
