//! Validation of string formats: URLs, date-times, dates and times, UUIDs, emails and IPs.

use super::*;

#[test]
fn urls_follow_pydantic_http_url() {
    let s = json!({"type": "string", "format": "uri", "minLength": 1, "maxLength": 2083, "x-rt-url-schemes": ["http", "https"]});
    assert_eq!(
        errors(s.clone(), json!("not-a-url")),
        one_ctx(
            "url_parsing",
            json!(["body"]),
            "Input should be a valid URL, relative URL without a base",
            json!("not-a-url"),
            json!({"error": "relative URL without a base"})
        )
    );
    assert_eq!(
        errors(s.clone(), json!("ftp://example.com/x")),
        one_ctx(
            "url_scheme",
            json!(["body"]),
            "URL scheme should be 'http' or 'https'",
            json!("ftp://example.com/x"),
            json!({"expected_schemes": "'http' or 'https'"})
        )
    );
    assert_eq!(
        errors(s.clone(), json!("")),
        one_ctx(
            "url_parsing",
            json!(["body"]),
            "Input should be a valid URL, input is empty",
            json!(""),
            json!({"error": "input is empty"})
        )
    );
    assert_eq!(
        errors(s.clone(), json!(5)),
        one(
            "url_type",
            json!(["body"]),
            "URL input should be a string or URL",
            json!(5)
        )
    );
    let long = json!(format!("http://a.com/{}", "a".repeat(2071)));
    assert_eq!(
        errors(s.clone(), long.clone()),
        one_ctx(
            "url_too_long",
            json!(["body"]),
            "URL should have at most 2083 characters",
            long,
            json!({"max_length": 2083})
        )
    );
    assert_eq!(
        coerced(s, json!("https://example.com/x")),
        json!("https://example.com/x")
    );
    let any = json!({"type": "string", "format": "uri"});
    assert_eq!(coerced(any, json!("mailto:a@b.c")), json!("mailto:a@b.c"));
}

#[test]
fn datetimes_need_an_offset_and_come_out_canonical() {
    let s = json!({"type": "string", "format": "date-time"});
    assert_eq!(
        coerced(s.clone(), json!("2024-01-01 10:00:00+0100")),
        json!("2024-01-01T10:00:00+01:00")
    );
    assert_eq!(
        coerced(s.clone(), json!("2024-01-01T10:00:00Z")),
        json!("2024-01-01T10:00:00Z")
    );
    assert_eq!(
        coerced(s.clone(), json!(1700000000)),
        json!("2023-11-14T22:13:20Z")
    );
    assert_eq!(
        errors(s.clone(), json!("2024-01-01T10:00:00")),
        one(
            "timezone_aware",
            json!(["body"]),
            "Input should have timezone info",
            json!("2024-01-01T10:00:00")
        )
    );
    assert_eq!(
        errors(s.clone(), json!("2024-13-01T00:00:00")),
        one_ctx(
            "datetime_from_date_parsing",
            json!(["body"]),
            "Input should be a valid datetime or date, month value is outside expected range of 1-12",
            json!("2024-13-01T00:00:00"),
            json!({"error": "month value is outside expected range of 1-12"})
        )
    );
    assert_eq!(
        errors(s.clone(), json!(1e17)),
        one_ctx(
            "datetime_parsing",
            json!(["body"]),
            "Input should be a valid datetime, dates after 9999 are not supported as unix timestamps",
            json!(1e17),
            json!({"error": "dates after 9999 are not supported as unix timestamps"})
        )
    );
    assert_eq!(
        errors(s, json!(true)),
        one(
            "datetime_type",
            json!(["body"]),
            "Input should be a valid datetime",
            json!(true)
        )
    );
    let naive = json!({"type": "string", "format": "partial-date-time"});
    assert_eq!(
        coerced(naive.clone(), json!("2024-01-01 10:00")),
        json!("2024-01-01T10:00:00")
    );
    assert_eq!(
        errors(naive, json!("2024-01-01T10:00:00Z")),
        one(
            "timezone_naive",
            json!(["body"]),
            "Input should not have timezone info",
            json!("2024-01-01T10:00:00Z")
        )
    );
}

#[test]
fn dates_and_times_follow_pydantic() {
    let date = json!({"type": "string", "format": "date"});
    assert_eq!(
        coerced(date.clone(), json!("2024-01-01")),
        json!("2024-01-01")
    );
    assert_eq!(
        coerced(date.clone(), json!("2024-01-01T00:00:00Z")),
        json!("2024-01-01")
    );
    assert_eq!(coerced(date.clone(), json!(86400)), json!("1970-01-02"));
    assert_eq!(
        errors(date.clone(), json!("2024-01-01T01:00:00")),
        one(
            "date_from_datetime_inexact",
            json!(["body"]),
            "Datetimes provided to dates should have zero time - e.g. be exact dates",
            json!("2024-01-01T01:00:00")
        )
    );
    assert_eq!(
        errors(date.clone(), json!("2024-02-30")),
        one_ctx(
            "date_from_datetime_parsing",
            json!(["body"]),
            "Input should be a valid date or datetime, day value is outside expected range",
            json!("2024-02-30"),
            json!({"error": "day value is outside expected range"})
        )
    );
    assert_eq!(
        errors(date, json!([1])),
        one(
            "date_type",
            json!(["body"]),
            "Input should be a valid date",
            json!([1])
        )
    );
    let time = json!({"type": "string", "format": "partial-time"});
    assert_eq!(coerced(time.clone(), json!("12:00")), json!("12:00:00"));
    assert_eq!(
        errors(time, json!("25:00")),
        one_ctx(
            "time_parsing",
            json!(["body"]),
            "Input should be in a valid time format, hour value is outside expected range of 0-23",
            json!("25:00"),
            json!({"error": "hour value is outside expected range of 0-23"})
        )
    );
}

#[test]
fn uuids_emails_and_ips() {
    let uuid = json!({"type": "string", "format": "uuid"});
    assert_eq!(
        errors(uuid.clone(), json!("abc")),
        one_ctx(
            "uuid_parsing",
            json!(["body"]),
            "Input should be a valid UUID, invalid length: expected length 32 for simple format, found 3",
            json!("abc"),
            json!({"error": "invalid length: expected length 32 for simple format, found 3"})
        )
    );
    assert_eq!(
        errors(uuid.clone(), json!(5)),
        one(
            "uuid_type",
            json!(["body"]),
            "UUID input should be a string, bytes or UUID object",
            json!(5)
        )
    );
    assert_eq!(
        coerced(uuid, json!("00000000-0000-0000-0000-000000000000")),
        json!("00000000-0000-0000-0000-000000000000")
    );
    let email = json!({"type": "string", "format": "email"});
    assert_eq!(
        errors(email, json!("nope")),
        one_ctx(
            "value_error",
            json!(["body"]),
            "value is not a valid email address: An email address must have an @-sign.",
            json!("nope"),
            json!({"reason": "An email address must have an @-sign."})
        )
    );
    let ip = json!({"type": "string", "format": "ipv4"});
    assert_eq!(
        errors(ip, json!("1.2.3")),
        one(
            "ip_v4_address",
            json!(["body"]),
            "Input is not a valid IPv4 address",
            json!("1.2.3")
        )
    );
}
