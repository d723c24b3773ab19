//! pydantic's lax reading of strings as booleans, integers and floats, and JSON equality
//! and hashing for `uniqueItems` and enums.

use super::*;

/// Pydantic's strings for booleans: `0/off/f/false/n/no` and `1/on/t/true/y/yes`, any case.
pub(super) fn str_as_bool(s: &str) -> Option<bool> {
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

pub(super) enum IntError {
    Parsing,
    Size,
}

/// Python's `int()` on a string as pydantic uses it: surrounding whitespace, a sign,
/// `_` between digits, and a `.000` tail are allowed.
pub(super) fn str_as_int(s: &str) -> Result<i128, IntError> {
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
pub(super) fn valid_digits(digits: &str) -> bool {
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
pub(super) fn str_as_float(s: &str) -> Option<f64> {
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
pub(super) fn json_eq(a: &Value, b: &Value) -> bool {
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

pub(super) fn hash_json(value: &Value, state: &mut impl Hasher) {
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
pub(super) fn first_duplicate(items: &[Value]) -> Option<usize> {
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
