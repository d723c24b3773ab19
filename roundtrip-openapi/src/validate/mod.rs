//! Validation of request input against published JSON Schemas, with FastAPI (pydantic) error shapes.
//!
//! "Documented = enforced": every constraint roundtrip publishes (ranges, lengths,
//! patterns, formats, enums) is checked, and each failure is reported as FastAPI reports
//! it: `{"type", "loc", "msg", "input", "ctx"?}`, with pydantic's words, in pydantic's
//! order, all of them at once.
//!
//! # How the framework uses a [`Validator`]
//!
//! 1. Compile once per schema with [`Validator::new`] (regexes and `$ref`s are resolved
//!    then), and keep it; it is cheap to clone and to share between threads.
//! 2. Fast path: deserialize the request straight into the Rust type. If that works and
//!    [`Validator::serde_covers`] is true, the validator is never called.
//! 3. Otherwise parse the input into a [`serde_json::Value`] and call
//!    [`Validator::validate`] (a JSON body) or [`Validator::validate_params`] (an object of
//!    query, path, header or cookie parameters, or form fields, whose values are strings,
//!    or arrays of strings for [list-typed](ParamInfo::is_list) ones). The validator coerces
//!    the value in place as pydantic's lax mode does (`"9999"` → `9999.0` for a float,
//!    `"yes"` → `true`, `2.0` → `2`, dates to their canonical form) and collects every
//!    error. With no errors, deserialize the Rust type from the coerced value.
//!
//! # Where this differs from FastAPI, and why
//!
//! - A union of several non-null branches that all fail reports the errors of the
//!   best-matching branch only (an exact type match first, then the branch that declares the
//!   most of the object's keys, then the fewest errors). Pydantic reports every branch's
//!   errors under branch names (`int`, `str`, a class name) that a JSON Schema cannot
//!   supply. A union of models with a constant tag property (serde's internally or
//!   adjacently tagged enums) is a discriminated union, reported exactly as pydantic does
//!   (`union_tag_invalid`, `union_tag_not_found`, the tag in `loc`).
//! - `format: date-time` is chrono's `DateTime<Tz>`, so a datetime without an offset is
//!   refused with pydantic's `timezone_aware` error (pydantic's `AwareDatetime`);
//!   `partial-date-time` and `partial-time` (chrono's naive types) refuse an offset with
//!   `timezone_naive`.
//! - `inf` and `nan` strings for a float are refused (`finite_number`): JSON, and so the
//!   value the Rust type is built from, cannot carry them.
//! - `uniqueItems` (schemars' `HashSet`, `BTreeSet`) is enforced, with the error type
//!   `unique_items`; pydantic publishes it for `set[T]` but deduplicates instead.
//! - `oneOf` is read as `anyOf`, as pydantic reads unions: the first passing branch wins.
//! - A schema without `type` is read by the keywords it has (`properties` → an object,
//!   `items` → an array, `minLength` → a string, `minimum` → a number).

mod compile;
mod datetime;
mod error;
pub(crate) mod formats;
mod json_error;
mod run;

use std::sync::Arc;

use serde_json::{Map, Value};

pub use compile::{ParamInfo, SchemaError};
pub use error::{LocItem, ValidationError};

use compile::{Compiled, Compiler};
use run::{Path, Walk};

/// A JSON Schema compiled for validating input the way FastAPI (pydantic v2, lax mode) does.
///
/// Cloning shares the compiled schema.
#[derive(Debug, Clone)]
pub struct Validator {
    compiled: Arc<Compiled>,
}

impl Validator {
    /// Compiles `schema`, resolving `$ref: "#/components/schemas/Name"` (also `#/$defs/`
    /// and `#/definitions/`) against `definitions`. Recursive types are fine.
    ///
    /// # Errors
    ///
    /// A `$ref` that names no definition, a `pattern` the `regex` crate cannot compile
    /// (look-around, back-references), or a non-schema where a schema belongs.
    pub fn new(schema: &Value, definitions: &Map<String, Value>) -> Result<Validator, SchemaError> {
        Ok(Validator {
            compiled: Arc::new(Compiler::compile(schema, definitions)?),
        })
    }

    /// Whether a successful serde deserialization into the schema's Rust type already
    /// guarantees everything the schema says, so the validator need not run.
    ///
    /// True when every reachable schema has only shape keywords (`type`, `properties`,
    /// `required`, `items`, `prefixItems` with the `minItems`/`maxItems` of its length,
    /// `anyOf`/`oneOf`/`allOf`, `enum`/`const`, `$ref`, annotations such as `title`,
    /// `description`, `default`, `examples`), integer and float `format`s with the bounds
    /// schemars derives from them (`format: uint8` with `minimum: 0, maximum: 255`), or
    /// carries `"x-rt-serde-enforced": true` (a type whose `Deserialize` checks its own
    /// constraints, such as [`HttpUrl`](crate::HttpUrl)).
    ///
    /// `additionalProperties: false` counts as covered: schemars writes it only for
    /// `#[serde(deny_unknown_fields)]` and for maps with enum or integer keys, and serde
    /// refuses unknown keys in both. Likewise `enum`/`const` count as covered because
    /// schemars writes them for Rust enums; a `String` restricted with
    /// `#[schemars(extend("enum" = [...]))]` is *not* checked on the fast path, so use a
    /// Rust enum for that. Anything else (`minimum`/`maximum` beyond the type's range,
    /// exclusive bounds, `multipleOf`, `minLength`/`maxLength`, `pattern`,
    /// `minItems`/`maxItems`, `uniqueItems`, string `format`s such as `uri`, `email`,
    /// `date-time`, `uuid`) makes it false.
    pub fn serde_covers(&self) -> bool {
        self.compiled.serde_covers
    }

    /// Validates a JSON body (or any value) located at `loc`, coercing it in place and
    /// appending every error to `errors`.
    ///
    /// A field missing from an object is reported with the object as `input`, as FastAPI
    /// does for bodies.
    ///
    /// The value of a property marked secret (`format: password` or `writeOnly`, as
    /// pydantic's `SecretStr`) is never echoed: in an error's `input` it reads
    /// `"**********"`, also where the input is a whole object holding it.
    pub fn validate(&self, value: &mut Value, loc: &[LocItem], errors: &mut Vec<ValidationError>) {
        let first = errors.len();
        Walk::new(&self.compiled).check(self.compiled.root, value, &Path::Root(loc), errors);
        self.hide_secrets(&mut errors[first..]);
    }

    /// Validates an object whose properties are parameters (query, path, header, cookie)
    /// or form fields, as [`validate`](Self::validate) does, except that a missing
    /// parameter is reported with `input: null`, as FastAPI does.
    pub fn validate_params(
        &self,
        value: &mut Value,
        loc_prefix: &[LocItem],
        errors: &mut Vec<ValidationError>,
    ) {
        let first = errors.len();
        Walk::new(&self.compiled).params(value, &Path::Root(loc_prefix), errors);
        self.hide_secrets(&mut errors[first..]);
    }

    /// The names of the properties marked secret, whose values errors never echo.
    pub fn secret_keys(&self) -> &[String] {
        &self.compiled.secret_keys
    }

    fn hide_secrets(&self, errors: &mut [ValidationError]) {
        let keys = &self.compiled.secret_keys;
        if keys.is_empty() {
            return;
        }
        for error in errors {
            hide_secrets(error, keys);
        }
    }

    /// The top-level properties of an object schema, in declaration order: what the
    /// framework needs to build a parameter object from strings. Empty for a schema that
    /// is not an object.
    pub fn params(&self) -> &[ParamInfo] {
        &self.compiled.params
    }
}

/// What stands for a secret in an error's `input`, as pydantic prints a `SecretStr`.
pub const HIDDEN_SECRET: &str = "**********";

/// Replaces, in `error`'s `input`, every value of a property named in `keys` (and the
/// input itself, when the error is located at such a property or inside it).
pub fn hide_secrets(error: &mut ValidationError, keys: &[String]) {
    let at_secret = error
        .loc
        .iter()
        .any(|item| matches!(item, LocItem::Key(key) if keys.contains(key)));
    if at_secret && !error.input.is_null() {
        error.input = Value::String(HIDDEN_SECRET.to_owned());
        return;
    }
    hide_in(&mut error.input, keys, 0);
}

fn hide_in(value: &mut Value, keys: &[String], depth: usize) {
    if depth > 64 {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if keys.contains(key) {
                    if !value.is_null() {
                        *value = Value::String(HIDDEN_SECRET.to_owned());
                    }
                } else {
                    hide_in(value, keys, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                hide_in(item, keys, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
