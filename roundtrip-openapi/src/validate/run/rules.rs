//! The checks of a value's constraints (numbers, strings, formats) and the errors they
//! report, in pydantic's words.

use super::*;

/// `union_tag_not_found` without a tag, `union_tag_invalid` with one.
#[inline(never)]
pub(super) fn report_tag(
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

pub(super) fn finite_number(path: &Path<'_>, value: &Value) -> ValidationError {
    error(
        path,
        "finite_number",
        "Input should be a finite number",
        value,
    )
}

pub(super) fn int_parsing_size(path: &Path<'_>, value: &Value) -> ValidationError {
    error(
        path,
        "int_parsing_size",
        "Unable to parse input string as an integer, exceeded maximum size",
        value,
    )
}

/// The first broken numeric constraint, in pydantic-core's order of checks.
pub(super) fn number_constraints(
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
    pub(super) fn broken(
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

pub(super) fn is_multiple(n: Num, m: Num) -> bool {
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
pub(super) fn string_constraints(
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
pub(super) enum FormatError {
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
    pub(super) fn into_error(self, path: &Path<'_>, input: &Value) -> ValidationError {
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
    pub(super) fn takes_numbers(&self) -> bool {
        matches!(
            self,
            StrFormat::DateTime
                | StrFormat::NaiveDateTime
                | StrFormat::Date
                | StrFormat::Time
                | StrFormat::NaiveTime
        )
    }

    pub(super) fn type_error(&self) -> (&'static str, &'static str) {
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
    pub(super) fn check(&self, s: &str) -> Result<Option<String>, FormatError> {
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
