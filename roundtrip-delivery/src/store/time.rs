//! Times as the stores keep them: milliseconds (SQLite) or microseconds (PostgreSQL) since
//! the Unix epoch, negative before it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `t` in units of `unit` since the epoch, saturating.
fn since_epoch(t: SystemTime, unit: fn(&Duration) -> u128) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(unit(&d)).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(unit(&e.duration())).unwrap_or(i64::MAX),
    }
}

/// The time `n` units of `unit` from the epoch.
fn from_epoch(n: i64, unit: fn(u64) -> Duration) -> SystemTime {
    if n >= 0 {
        UNIX_EPOCH + unit(n.unsigned_abs())
    } else {
        UNIX_EPOCH - unit(n.unsigned_abs())
    }
}

/// A length in units of `unit`. A lease or retention longer than a quarter of `i64` is
/// "forever" for a queue; the cap keeps the stores' time arithmetic in range.
fn length(d: Duration, unit: fn(&Duration) -> u128) -> i64 {
    i64::try_from(unit(&d)).unwrap_or(i64::MAX / 4)
}

/// Milliseconds since the Unix epoch (the SQLite stores' times).
pub(crate) fn to_ms(t: SystemTime) -> i64 {
    since_epoch(t, Duration::as_millis)
}

/// The time `ms` milliseconds from the Unix epoch.
pub(crate) fn from_ms(ms: i64) -> SystemTime {
    from_epoch(ms, Duration::from_millis)
}

/// A length in milliseconds.
pub(crate) fn duration_ms(d: Duration) -> i64 {
    length(d, Duration::as_millis)
}

/// Microseconds since the Unix epoch (the PostgreSQL stores' times).
pub(crate) fn to_us(t: SystemTime) -> i64 {
    since_epoch(t, Duration::as_micros)
}

/// The time `us` microseconds from the Unix epoch.
pub(crate) fn from_us(us: i64) -> SystemTime {
    from_epoch(us, Duration::from_micros)
}

/// A length in microseconds.
pub(crate) fn duration_us(d: Duration) -> i64 {
    length(d, Duration::as_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_on_both_sides_of_the_epoch() {
        for t in [
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            UNIX_EPOCH - Duration::from_millis(86_400_000),
        ] {
            assert_eq!(from_ms(to_ms(t)), t);
            assert_eq!(from_us(to_us(t)), t);
        }
        assert_eq!(duration_ms(Duration::MAX), i64::MAX / 4);
    }
}
