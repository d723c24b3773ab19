//! Reading the `Retry-After` header: delta-seconds or an HTTP date.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The wait a `Retry-After` value asks for, relative to `now`.
///
/// Accepts both forms of RFC 9110 §10.2.3: delta-seconds (`120`) and an HTTP
/// date in any of its three formats (`Sun, 06 Nov 1994 08:49:37 GMT`, the
/// obsolete `Sunday, 06-Nov-94 08:49:37 GMT`, and asctime's
/// `Sun Nov  6 08:49:37 1994`). A date in the past means no wait
/// (`Duration::ZERO`). Anything else gives `None`, and the schedule alone decides.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use roundtrip_delivery::retry::parse_retry_after;
///
/// let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(
///     parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
///     Some(Duration::from_secs(120)),
/// );
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|byte| byte.is_ascii_digit()) {
        // All digits but too large for u64: as long as anyone could ask for; the
        // schedule's cap applies anyway.
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let now_secs = unix_seconds(now);
    let date = parse_http_date(value, year_of(now_secs))?;
    let wait = date.saturating_sub(now_secs);
    Some(Duration::from_secs(u64::try_from(wait).unwrap_or(0)))
}

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |secs| -secs),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// An HTTP date as Unix seconds. `current_year` resolves the two-digit years of
/// the obsolete RFC 850 form, as RFC 9110 asks: a year more than 50 years ahead
/// is taken to be in the past century.
fn parse_http_date(text: &str, current_year: i64) -> Option<i64> {
    if let Some((day_name, rest)) = text.split_once(", ") {
        if DAYS.contains(&day_name) {
            return parse_imf_fixdate(rest);
        }
        if LONG_DAYS.contains(&day_name) {
            return parse_rfc850(rest, current_year);
        }
        return None;
    }
    parse_asctime(text)
}

/// `06 Nov 1994 08:49:37 GMT`
fn parse_imf_fixdate(rest: &str) -> Option<i64> {
    let mut fields = rest.split(' ');
    let day = two_digits(fields.next()?)?;
    let month = month(fields.next()?)?;
    let year = four_digits(fields.next()?)?;
    let time = fields.next()?;
    if fields.next()? != "GMT" || fields.next().is_some() {
        return None;
    }
    to_unix(year, month, day, time)
}

/// `06-Nov-94 08:49:37 GMT`
fn parse_rfc850(rest: &str, current_year: i64) -> Option<i64> {
    let (date, rest) = rest.split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    if zone != "GMT" {
        return None;
    }
    let mut parts = date.split('-');
    let day = two_digits(parts.next()?)?;
    let month = month(parts.next()?)?;
    let short_year = two_digits(parts.next()?)?;
    if parts.next().is_some() {
        return None;
    }
    let mut year = current_year - current_year.rem_euclid(100) + i64::from(short_year);
    if year > current_year + 50 {
        year -= 100;
    }
    to_unix(year, month, day, time)
}

/// `Nov  6 08:49:37 1994` after a day name: `Sun Nov  6 08:49:37 1994`.
fn parse_asctime(text: &str) -> Option<i64> {
    let (day_name, rest) = text.split_once(' ')?;
    if !DAYS.contains(&day_name) {
        return None;
    }
    let (month_name, rest) = rest.split_once(' ')?;
    let month = month(month_name)?;
    // The day is two characters: "06"-style digits or a space then one digit.
    let day_text = rest.get(..2)?;
    let day = if let Some(single) = day_text.strip_prefix(' ') {
        one_digit(single)?
    } else {
        two_digits(day_text)?
    };
    let rest = rest.get(2..)?.strip_prefix(' ')?;
    let (time, year) = rest.split_once(' ')?;
    to_unix(four_digits(year)?, month, day, time)
}

fn month(name: &str) -> Option<u32> {
    let index = MONTHS.iter().position(|month| *month == name)?;
    u32::try_from(index + 1).ok()
}

fn one_digit(text: &str) -> Option<u32> {
    match text.as_bytes() {
        [digit] if digit.is_ascii_digit() => Some(u32::from(digit - b'0')),
        _ => None,
    }
}

fn two_digits(text: &str) -> Option<u32> {
    match text.as_bytes() {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
        }
        _ => None,
    }
}

fn four_digits(text: &str) -> Option<i64> {
    if text.len() == 4 && text.bytes().all(|byte| byte.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// Unix seconds of `year-month-day` at `HH:MM:SS` UTC, if that is a real date.
fn to_unix(year: i64, month: u32, day: u32, time: &str) -> Option<i64> {
    let mut parts = time.split(':');
    let hour = two_digits(parts.next()?)?;
    let minute = two_digits(parts.next()?)?;
    // 60 is a leap second; it counts as the next second.
    let second = two_digits(parts.next()?)?;
    if parts.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The Gregorian year that Unix time `secs` falls in (Hinnant's `civil_from_days`).
fn year_of(secs: i64) -> i64 {
    let days = secs.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let year = year_of_era + era * 400;
    if month_index >= 10 { year + 1 } else { year }
}
