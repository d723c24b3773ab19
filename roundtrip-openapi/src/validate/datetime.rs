//! Dates, times and datetimes parsed the way pydantic does (its `speedate` rules), so that
//! acceptance and error reasons match FastAPI.
//!
//! Accepted: RFC 3339 with `T`, `t`, `_` or a space between date and time, minutes-only
//! times, `,` or `.` before up to 6 fraction digits (more are truncated), `Z` or `±HH[:]MM`
//! offsets, and unix timestamps (numbers, or strings of digits), read as milliseconds above
//! 2·10¹⁰. Values are printed back in the one canonical form chrono's `Deserialize` reads.

use std::fmt;

/// Why a date, time or datetime did not parse, in pydantic's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DtError {
    TooShort,
    ExtraCharacters,
    InvalidCharYear,
    InvalidCharDateSep,
    InvalidCharMonth,
    InvalidCharDay,
    OutOfRangeMonth,
    OutOfRangeDay,
    InvalidCharDateTimeSep,
    InvalidCharHour,
    InvalidCharTimeSep,
    InvalidCharMinute,
    InvalidCharSecond,
    SecondFractionMissing,
    OutOfRangeHour,
    OutOfRangeMinute,
    OutOfRangeSecond,
    InvalidCharTzSign,
    InvalidCharTzHour,
    InvalidCharTzMinute,
    OutOfRangeTz,
    DateTooLarge,
    DateTooSmall,
    TimeTooLarge,
    TimeNegative,
}

impl DtError {
    pub(crate) fn message(self) -> &'static str {
        match self {
            DtError::TooShort => "input is too short",
            DtError::ExtraCharacters => "unexpected extra characters at the end of the input",
            DtError::InvalidCharYear => "invalid character in year",
            DtError::InvalidCharDateSep => "invalid date separator, expected `-`",
            DtError::InvalidCharMonth => "invalid character in month",
            DtError::InvalidCharDay => "invalid character in day",
            DtError::OutOfRangeMonth => "month value is outside expected range of 1-12",
            DtError::OutOfRangeDay => "day value is outside expected range",
            DtError::InvalidCharDateTimeSep => {
                "invalid datetime separator, expected `T`, `t`, `_` or space"
            }
            DtError::InvalidCharHour => "invalid character in hour",
            DtError::InvalidCharTimeSep => "invalid time separator, expected `:`",
            DtError::InvalidCharMinute => "invalid character in minute",
            DtError::InvalidCharSecond => "invalid character in second",
            DtError::SecondFractionMissing => "second fraction digits missing after `.`",
            DtError::OutOfRangeHour => "hour value is outside expected range of 0-23",
            DtError::OutOfRangeMinute => "minute value is outside expected range of 0-59",
            DtError::OutOfRangeSecond => "second value is outside expected range of 0-59",
            DtError::InvalidCharTzSign => "invalid timezone sign",
            DtError::InvalidCharTzHour => "invalid timezone hour",
            DtError::InvalidCharTzMinute => "invalid timezone minute",
            DtError::OutOfRangeTz => "timezone offset must be less than 24 hours",
            DtError::DateTooLarge => "dates after 9999 are not supported as unix timestamps",
            DtError::DateTooSmall => "dates before 0000 are not supported as unix timestamps",
            DtError::TimeTooLarge => "numeric times may not exceed 86,399 seconds",
            DtError::TimeNegative => "time in seconds should be positive",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Date {
    pub(crate) year: u16,
    pub(crate) month: u8,
    pub(crate) day: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Time {
    pub(crate) hour: u8,
    pub(crate) minute: u8,
    pub(crate) second: u8,
    pub(crate) micro: u32,
    /// Offset from UTC in seconds; `None` for a naive time.
    pub(crate) offset: Option<i32>,
}

impl Time {
    pub(crate) fn is_midnight(&self) -> bool {
        self.hour == 0 && self.minute == 0 && self.second == 0 && self.micro == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateTime {
    pub(crate) date: Date,
    pub(crate) time: Time,
}

fn digit(b: &[u8], i: usize, err: DtError) -> Result<u8, DtError> {
    match b.get(i) {
        Some(c) if c.is_ascii_digit() => Ok(c - b'0'),
        _ => Err(err),
    }
}

fn two_digits(b: &[u8], i: usize, err: DtError) -> Result<u8, DtError> {
    Ok(digit(b, i, err)? * 10 + digit(b, i + 1, err)?)
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// `YYYY-MM-DD` at the start of `b`; anything after it is left to the caller.
fn date_prefix(b: &[u8]) -> Result<Date, DtError> {
    if b.len() < 10 {
        return Err(DtError::TooShort);
    }
    let mut year: u16 = 0;
    for i in 0..4 {
        year = year * 10 + u16::from(digit(b, i, DtError::InvalidCharYear)?);
    }
    if b.get(4) != Some(&b'-') {
        return Err(DtError::InvalidCharDateSep);
    }
    let month = two_digits(b, 5, DtError::InvalidCharMonth)?;
    if b.get(7) != Some(&b'-') {
        return Err(DtError::InvalidCharDateSep);
    }
    let day = two_digits(b, 8, DtError::InvalidCharDay)?;
    let max_day = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => return Err(DtError::OutOfRangeMonth),
    };
    if day < 1 || day > max_day {
        return Err(DtError::OutOfRangeDay);
    }
    Ok(Date { year, month, day })
}

/// Exactly `YYYY-MM-DD`.
pub(crate) fn parse_date(b: &[u8]) -> Result<Date, DtError> {
    let date = date_prefix(b)?;
    if b.len() > 10 {
        return Err(DtError::ExtraCharacters);
    }
    Ok(date)
}

/// A time starting at `at`, with its optional offset; returns the index after it.
fn time_at(b: &[u8], at: usize) -> Result<(Time, usize), DtError> {
    if b.len() < at + 5 {
        return Err(DtError::TooShort);
    }
    let hour = two_digits(b, at, DtError::InvalidCharHour)?;
    if b.get(at + 2) != Some(&b':') {
        return Err(DtError::InvalidCharTimeSep);
    }
    let minute = two_digits(b, at + 3, DtError::InvalidCharMinute)?;
    let mut pos = at + 5;
    let (mut second, mut micro) = (0, 0);
    if b.get(pos) == Some(&b':') {
        second = two_digits(b, pos + 1, DtError::InvalidCharSecond)?;
        pos += 3;
        if matches!(b.get(pos), Some(b'.' | b',')) {
            pos += 1;
            let start = pos;
            while b.get(pos).is_some_and(u8::is_ascii_digit) {
                if pos - start < 6 {
                    micro = micro * 10 + u32::from(b[pos] - b'0');
                }
                pos += 1;
            }
            let digits = pos - start;
            if digits == 0 {
                return Err(DtError::SecondFractionMissing);
            }
            for _ in digits..6 {
                micro *= 10;
            }
        }
    }
    if hour > 23 {
        return Err(DtError::OutOfRangeHour);
    }
    if minute > 59 {
        return Err(DtError::OutOfRangeMinute);
    }
    if second > 59 {
        return Err(DtError::OutOfRangeSecond);
    }
    let offset = match b.get(pos) {
        None => None,
        Some(b'Z' | b'z') => {
            pos += 1;
            Some(0)
        }
        Some(&sign @ (b'+' | b'-')) => {
            let hours = i32::from(two_digits(b, pos + 1, DtError::InvalidCharTzHour)?);
            pos += 3;
            let minutes = match b.get(pos) {
                Some(b':') => {
                    let m = two_digits(b, pos + 1, DtError::InvalidCharTzMinute)?;
                    pos += 3;
                    i32::from(m)
                }
                Some(c) if c.is_ascii_digit() => {
                    let m = two_digits(b, pos, DtError::InvalidCharTzMinute)?;
                    pos += 2;
                    i32::from(m)
                }
                _ => 0,
            };
            let total = hours * 3600 + minutes * 60;
            if total >= 24 * 3600 {
                return Err(DtError::OutOfRangeTz);
            }
            Some(if sign == b'-' { -total } else { total })
        }
        Some(_) => return Err(DtError::InvalidCharTzSign),
    };
    let time = Time {
        hour,
        minute,
        second,
        micro,
        offset,
    };
    Ok((time, pos))
}

/// A time of day, nothing before or after it.
pub(crate) fn parse_time(b: &[u8]) -> Result<Time, DtError> {
    let (time, end) = time_at(b, 0)?;
    if end != b.len() {
        return Err(DtError::ExtraCharacters);
    }
    Ok(time)
}

fn parse_rfc3339(b: &[u8]) -> Result<DateTime, DtError> {
    let date = date_prefix(b)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ' | b'_')) {
        return Err(DtError::InvalidCharDateTimeSep);
    }
    let (time, end) = time_at(b, 11)?;
    if end != b.len() {
        return Err(DtError::ExtraCharacters);
    }
    Ok(DateTime { date, time })
}

/// An RFC 3339 datetime, or a unix timestamp written as digits (`-`, `.` allowed).
pub(crate) fn parse_datetime(b: &[u8]) -> Result<DateTime, DtError> {
    parse_rfc3339(b).or_else(|err| match timestamp_string(b) {
        Some(ts) => datetime_from_timestamp(ts),
        None => Err(err),
    })
}

fn timestamp_string(b: &[u8]) -> Option<f64> {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    let mut dots = 0;
    let well_formed = !digits.is_empty()
        && digits.first().is_some_and(u8::is_ascii_digit)
        && digits.iter().all(|&c| {
            dots += usize::from(c == b'.');
            c.is_ascii_digit() || c == b'.'
        })
        && dots <= 1;
    if !well_formed {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Seconds since the epoch, or milliseconds when larger than 2·10¹⁰ (pydantic's rule).
pub(crate) fn datetime_from_timestamp(ts: f64) -> Result<DateTime, DtError> {
    const MIN: i128 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const MAX: i128 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if ts.is_nan() {
        return Err(DtError::DateTooLarge);
    }
    let micros = if ts.abs() > 2e10 {
        (ts * 1e3).round()
    } else {
        (ts * 1e6).round()
    };
    // Saturating float-to-int conversion keeps absurd values in range for the checks below.
    let micros = micros as i128;
    let seconds = micros.div_euclid(1_000_000);
    if seconds > MAX {
        return Err(DtError::DateTooLarge);
    }
    if seconds < MIN {
        return Err(DtError::DateTooSmall);
    }
    let micro = micros.rem_euclid(1_000_000) as u32;
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400) as u32;
    let date = civil_from_days(days as i64);
    Ok(DateTime {
        date,
        time: Time {
            hour: (secs / 3600) as u8,
            minute: (secs / 60 % 60) as u8,
            second: (secs % 60) as u8,
            micro,
            offset: Some(0),
        },
    })
}

/// A number of seconds since midnight, as pydantic reads numeric times (in UTC).
pub(crate) fn time_from_seconds(seconds: f64, offset: Option<i32>) -> Result<Time, DtError> {
    if seconds.is_nan() || seconds < 0.0 {
        return Err(DtError::TimeNegative);
    }
    if seconds >= 86_400.0 {
        return Err(DtError::TimeTooLarge);
    }
    let micros = (seconds * 1e6).round() as u64;
    let secs = (micros / 1_000_000).min(86_399) as u32;
    Ok(Time {
        hour: (secs / 3600) as u8,
        minute: (secs / 60 % 60) as u8,
        second: (secs % 60) as u8,
        micro: (micros % 1_000_000) as u32,
        offset,
    })
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of a day count.
fn civil_from_days(days: i64) -> Date {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Date {
        year: year.clamp(0, 9999) as u16,
        month,
        day,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}:{:02}", self.hour, self.minute, self.second)?;
        if self.micro != 0 {
            let mut frac = self.micro;
            let mut width = 6;
            while frac.is_multiple_of(10) {
                frac /= 10;
                width -= 1;
            }
            write!(f, ".{frac:0width$}")?;
        }
        match self.offset {
            None => Ok(()),
            Some(0) => f.write_str("Z"),
            Some(seconds) => {
                let sign = if seconds < 0 { '-' } else { '+' };
                let seconds = seconds.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", seconds / 3600, seconds / 60 % 60)
            }
        }
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}T{}", self.date, self.time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> Result<String, &'static str> {
        parse_datetime(s.as_bytes())
            .map(|d| d.to_string())
            .map_err(DtError::message)
    }

    #[test]
    fn accepts_what_pydantic_accepts_and_prints_canonically() {
        assert_eq!(
            dt("2024-01-01T00:00:00Z").as_deref(),
            Ok("2024-01-01T00:00:00Z")
        );
        assert_eq!(dt("2024-01-01 10:30").as_deref(), Ok("2024-01-01T10:30:00"));
        assert_eq!(
            dt("2024-01-01t00:00z").as_deref(),
            Ok("2024-01-01T00:00:00Z")
        );
        assert_eq!(
            dt("2024-01-01_00:00+0100").as_deref(),
            Ok("2024-01-01T00:00:00+01:00")
        );
        assert_eq!(
            dt("2024-01-01T00:00:00.1234567-05:30").as_deref(),
            Ok("2024-01-01T00:00:00.123456-05:30")
        );
        assert_eq!(
            dt("2024-01-01T00:00:00,5").as_deref(),
            Ok("2024-01-01T00:00:00.5")
        );
        assert_eq!(dt("1700000000").as_deref(), Ok("2023-11-14T22:13:20Z"));
        assert_eq!(dt("-1.25").as_deref(), Ok("1969-12-31T23:59:58.75Z"));
        assert_eq!(dt("20000000001").as_deref(), Ok("1970-08-20T11:33:20.001Z"));
    }

    #[test]
    fn rejects_with_pydantic_reasons() {
        assert_eq!(
            dt("2024-01-01T25:00"),
            Err("hour value is outside expected range of 0-23")
        );
        assert_eq!(
            parse_date(b"2023-02-29").map_err(DtError::message),
            Err("day value is outside expected range")
        );
        assert_eq!(
            parse_date(b"2024-13-01").map_err(DtError::message),
            Err("month value is outside expected range of 1-12")
        );
        assert_eq!(
            parse_date(b"abcd-01-01").map_err(DtError::message),
            Err("invalid character in year")
        );
        assert_eq!(
            parse_date(b"2024-01-01T00").map_err(DtError::message),
            Err("unexpected extra characters at the end of the input")
        );
        assert_eq!(
            dt("2024-01-01x"),
            Err("invalid datetime separator, expected `T`, `t`, `_` or space")
        );
        assert_eq!(dt("2024-01-01 "), Err("input is too short"));
        let time = |s: &str| {
            parse_time(s.as_bytes())
                .map(|t| t.to_string())
                .map_err(DtError::message)
        };
        assert_eq!(time("12:00:00 "), Err("invalid timezone sign"));
        assert_eq!(
            time("12:00:00+25:00"),
            Err("timezone offset must be less than 24 hours")
        );
        assert_eq!(time("12:00:00+01:0"), Err("invalid timezone minute"));
        assert_eq!(
            time("12:00:00."),
            Err("second fraction digits missing after `.`")
        );
        assert_eq!(time("12:00:6"), Err("invalid character in second"));
        assert_eq!(time("12-00"), Err("invalid time separator, expected `:`"));
        assert_eq!(
            time("12:00:60"),
            Err("second value is outside expected range of 0-59")
        );
        assert_eq!(time("12:00:00.5+01:00").as_deref(), Ok("12:00:00.5+01:00"));
    }

    #[test]
    fn timestamps_outside_years_0_to_9999_are_refused() {
        assert_eq!(datetime_from_timestamp(1e17), Err(DtError::DateTooLarge));
        assert_eq!(datetime_from_timestamp(-1e20), Err(DtError::DateTooSmall));
        assert_eq!(
            datetime_from_timestamp(f64::INFINITY),
            Err(DtError::DateTooLarge)
        );
        assert_eq!(
            time_from_seconds(86_400.0, None),
            Err(DtError::TimeTooLarge)
        );
        assert_eq!(time_from_seconds(-1.0, None), Err(DtError::TimeNegative));
    }
}
