//! `Retry-After` in both forms, and outcomes built from responses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, StatusCode};
use roundtrip_delivery::retry::{AttemptOutcome, parse_retry_after};

/// Sun, 06 Nov 1994 08:49:37 GMT, the example date of RFC 9110.
fn rfc_example() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(784_111_777)
}

fn secs(secs: u64) -> Option<Duration> {
    Some(Duration::from_secs(secs))
}

#[test]
fn delta_seconds() {
    let now = rfc_example();
    assert_eq!(parse_retry_after("0", now), secs(0));
    assert_eq!(parse_retry_after("120", now), secs(120));
    assert_eq!(parse_retry_after(" 3600 ", now), secs(3600));
    assert_eq!(
        parse_retry_after("99999999999999999999999", now),
        Some(Duration::from_secs(u64::MAX)),
        "too large for u64 means as long as possible; the schedule caps it"
    );
    for bad in ["", " ", "-5", "+5", "1.5", "5s", "1e3", "soon"] {
        assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
    }
}

#[test]
fn all_three_http_date_formats_of_rfc_9110() {
    let now = rfc_example();
    for text in [
        "Sun, 06 Nov 1994 08:51:37 GMT",
        "Sunday, 06-Nov-94 08:51:37 GMT",
        "Sun Nov  6 08:51:37 1994",
    ] {
        assert_eq!(parse_retry_after(text, now), secs(120), "{text}");
    }
}

#[test]
fn dates_cross_months_years_and_leap_days() {
    let now = rfc_example();
    // 1994-11-06 08:49:37 to 1996-02-29 00:00:00.
    let expected = 825_552_000 - 784_111_777;
    assert_eq!(
        parse_retry_after("Thu, 29 Feb 1996 00:00:00 GMT", now),
        secs(expected)
    );
    assert_eq!(
        parse_retry_after("Thu Feb 29 00:00:00 1996", now),
        secs(expected)
    );
    // 1995 has no 29 February.
    assert_eq!(
        parse_retry_after("Wed, 29 Feb 1995 00:00:00 GMT", now),
        None
    );
    // Against a known modern instant: 2026-01-01T00:00:00Z is 1767225600.
    let new_year = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    assert_eq!(
        parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", new_year),
        secs(60)
    );
    assert_eq!(
        parse_retry_after("Thursday, 01-Jan-26 00:01:00 GMT", new_year),
        secs(60)
    );
}

#[test]
fn a_date_in_the_past_means_no_wait() {
    let now = rfc_example();
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
        secs(0)
    );
    assert_eq!(
        parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
        secs(0)
    );
}

#[test]
fn two_digit_years_are_read_within_fifty_years() {
    // In 2026, "70" is 2070 (44 years ahead), "80" is 1980 (54 would be too far).
    let now = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let in_2070 = parse_retry_after("Tuesday, 01-Jan-70 00:00:00 GMT", now).expect("a date");
    assert!(
        in_2070 > Duration::from_secs(40 * 365 * 86_400),
        "{in_2070:?}"
    );
    assert_eq!(
        parse_retry_after("Tuesday, 01-Jan-80 00:00:00 GMT", now),
        secs(0)
    );
}

#[test]
fn malformed_dates_are_ignored() {
    let now = rfc_example();
    for bad in [
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 November 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT extra",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 94",
        "2026-01-01T00:00:00Z",
        "Sun, 06 Nov 1994 08:49:37 GMT\u{0}",
    ] {
        assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
    }
}

#[test]
fn outcomes_read_the_status_and_retry_after_of_a_response() {
    let now = rfc_example();
    let mut headers = HeaderMap::new();
    headers.insert(
        "retry-after",
        HeaderValue::from_static("Sun, 06 Nov 1994 08:59:37 GMT"),
    );
    let outcome = AttemptOutcome::from_response(StatusCode::SERVICE_UNAVAILABLE, &headers, now);
    assert!(
        matches!(outcome, AttemptOutcome::Status { code: 503, retry_after: Some(wait) } if wait == Duration::from_secs(600)),
        "{outcome:?}"
    );
    assert_eq!(outcome.kind(), "status");
    assert_eq!(
        outcome.to_string(),
        "the receiver answered 503 Service Unavailable (Retry-After: 600 s)"
    );

    let plain = AttemptOutcome::from_response(StatusCode::NO_CONTENT, &HeaderMap::new(), now);
    assert!(plain.is_success());
    assert!(matches!(
        plain,
        AttemptOutcome::Status {
            code: 204,
            retry_after: None
        }
    ));

    let mut garbage = HeaderMap::new();
    garbage.insert("retry-after", HeaderValue::from_static("later"));
    let outcome = AttemptOutcome::from_response(StatusCode::TOO_MANY_REQUESTS, &garbage, now);
    assert!(matches!(
        outcome,
        AttemptOutcome::Status {
            code: 429,
            retry_after: None
        }
    ));
    assert!(outcome.is_throttle());
}
