//! Every Standard Webhooks reference vector in `tests/refs/standard-webhooks/vectors.json`,
//! in both directions: what we sign matches, and what we verify passes or fails as
//! the reference libraries do.

use http::{HeaderMap, HeaderValue};
use roundtrip_delivery::signing::{Secret, SecretError, Signer, Verifier, VerifyErrorKind};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/refs/standard-webhooks/vectors.json"
    );
    let text = std::fs::read_to_string(path).expect("the reference vectors file is readable");
    serde_json::from_str(&text).expect("the reference vectors file is JSON")
}

fn text<'v>(value: &'v Value, key: &str) -> &'v str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field `{key}` is a string in {value}"))
}

fn secret(text: &str) -> Secret {
    Secret::parse(text).unwrap_or_else(|error| panic!("{text} parses: {error}"))
}

/// The message every verify case is built on: the first sign vector.
struct Base {
    secret: Secret,
    id: String,
    timestamp: i64,
    payload: Vec<u8>,
    signature: String,
}

fn base(vectors: &Value) -> Base {
    let vector = &vectors["sign_vectors"][0];
    Base {
        secret: secret(text(vector, "secret")),
        id: text(vector, "msg_id").to_owned(),
        timestamp: vector["timestamp"]
            .as_i64()
            .expect("timestamp is an integer"),
        payload: text(vector, "payload").as_bytes().to_vec(),
        signature: text(vector, "expected_signature").to_owned(),
    }
}

fn headers(id: Option<&str>, timestamp: Option<&str>, signature: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("webhook-id", id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signature),
    ] {
        if let Some(value) = value {
            headers.insert(name, HeaderValue::from_str(value).expect("a valid header"));
        }
    }
    headers
}

#[test]
fn signer_reproduces_every_sign_vector() {
    let vectors = vectors();
    let sign_vectors = vectors["sign_vectors"]
        .as_array()
        .expect("sign_vectors is a list");
    assert!(!sign_vectors.is_empty());
    for vector in sign_vectors {
        let secret = secret(text(vector, "secret"));
        assert_eq!(
            Some(secret.key_len() as u64),
            vector["secret_key_len_bytes"].as_u64(),
            "{}",
            text(vector, "name")
        );
        let timestamp = vector["timestamp"]
            .as_i64()
            .expect("timestamp is an integer");
        let signed = Signer::new(secret).sign(
            text(vector, "msg_id"),
            timestamp,
            text(vector, "payload").as_bytes(),
        );
        assert_eq!(
            signed,
            text(vector, "expected_signature"),
            "{}",
            text(vector, "name")
        );
    }
}

#[test]
fn verifier_accepts_every_sign_vector() {
    let vectors = vectors();
    for vector in vectors["sign_vectors"]
        .as_array()
        .expect("sign_vectors is a list")
    {
        let timestamp = vector["timestamp"]
            .as_i64()
            .expect("timestamp is an integer");
        let headers = headers(
            Some(text(vector, "msg_id")),
            Some(&timestamp.to_string()),
            Some(text(vector, "expected_signature")),
        );
        let verified = Verifier::new(secret(text(vector, "secret")))
            .verify_at(&headers, text(vector, "payload").as_bytes(), timestamp)
            .unwrap_or_else(|error| panic!("{}: {error}", text(vector, "name")));
        assert_eq!(verified.id, text(vector, "msg_id"));
        assert_eq!(verified.timestamp, timestamp);
    }
}

/// Walks `verify_cases` and checks each one; a case this test does not know fails
/// it, so a new vector cannot be skipped silently.
#[test]
fn every_verify_case_behaves_as_the_reference() {
    let vectors = vectors();
    let base = base(&vectors);
    let verifier = Verifier::new(base.secret.clone());
    let ts = base.timestamp.to_string();
    let cases = vectors["verify_cases"]
        .as_array()
        .expect("verify_cases is a list");
    assert!(!cases.is_empty());

    for case in cases {
        let name = text(case, "name");
        let expect = text(case, "expect");
        if let Some(signature) = case["signature"].as_str() {
            let signature = signature.replace("<valid v1 sig>", &base.signature);
            let headers = headers(Some(&base.id), Some(&ts), Some(&signature));
            let result = verifier.verify_at(&headers, &base.payload, base.timestamp);
            match expect {
                "pass" => {
                    result.unwrap_or_else(|error| panic!("{name}: {error}"));
                }
                "fail" => {
                    let error = result.expect_err(name);
                    assert_eq!(error.kind(), VerifyErrorKind::NoMatchingSignature, "{name}");
                }
                other => panic!("{name}: unknown expectation {other}"),
            }
        } else if name.contains("with or without whsec_ prefix") {
            let parsed: Vec<String> = case["secrets"]
                .as_array()
                .expect("secrets is a list")
                .iter()
                .map(|value| secret(value.as_str().expect("a secret string")).to_string())
                .collect();
            assert_eq!(expect, "same key");
            assert!(
                parsed.windows(2).all(|pair| pair[0] == pair[1]),
                "{name}: {parsed:?}"
            );
            // And both verify the reference message.
            for value in case["secrets"].as_array().expect("secrets is a list") {
                let headers = headers(Some(&base.id), Some(&ts), Some(&base.signature));
                Verifier::new(secret(value.as_str().expect("a secret string")))
                    .verify_at(&headers, &base.payload, base.timestamp)
                    .unwrap_or_else(|error| panic!("{name}: {error}"));
            }
        } else if name.contains("unpadded base64") {
            // What Python's `base64.b64decode(secret + "==")` yields, re-encoded with
            // padding (computed with CPython 3 when this test was written).
            let python = [
                (
                    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaQ=",
                ),
                (
                    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr",
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBg==",
                ),
            ];
            for value in case["secrets"].as_array().expect("secrets is a list") {
                let unpadded = value.as_str().expect("a secret string");
                let (_, expected) = python
                    .iter()
                    .find(|(input, _)| *input == unpadded)
                    .unwrap_or_else(|| panic!("{name}: no Python result for {unpadded}"));
                assert_eq!(secret(unpadded).to_string(), *expected, "{name}");
                let padded = format!("{unpadded}{}", "=".repeat((4 - unpadded.len() % 4) % 4));
                assert_eq!(secret(&padded).to_string(), *expected, "{name}");
            }
        } else if name.contains("empty secret") {
            assert_eq!(expect, "error");
            assert_eq!(
                Secret::parse(text(case, "secret")).err(),
                Some(SecretError::Empty)
            );
            assert_eq!(Secret::parse("").err(), Some(SecretError::Empty));
            assert_eq!(Secret::from_bytes(&[]).err(), Some(SecretError::Empty));
        } else if name.contains("older than") {
            let tolerance = vectors["scheme"]["reference_tolerance_seconds"]
                .as_i64()
                .expect("tolerance is an integer");
            let headers = headers(Some(&base.id), Some(&ts), Some(&base.signature));
            let at_edge = base.timestamp + tolerance;
            verifier
                .verify_at(&headers, &base.payload, at_edge)
                .unwrap_or_else(|error| panic!("{name}: exactly at the tolerance passes: {error}"));
            let error = verifier
                .verify_at(&headers, &base.payload, at_edge + 1)
                .expect_err(name);
            assert_eq!(error.kind(), VerifyErrorKind::TimestampTooOld, "{name}");
        } else if name.contains("newer than") {
            let tolerance = vectors["scheme"]["reference_tolerance_seconds"]
                .as_i64()
                .expect("tolerance is an integer");
            let headers = headers(Some(&base.id), Some(&ts), Some(&base.signature));
            let at_edge = base.timestamp - tolerance;
            verifier
                .verify_at(&headers, &base.payload, at_edge)
                .unwrap_or_else(|error| panic!("{name}: exactly at the tolerance passes: {error}"));
            let error = verifier
                .verify_at(&headers, &base.payload, at_edge - 1)
                .expect_err(name);
            assert_eq!(error.kind(), VerifyErrorKind::TimestampTooNew, "{name}");
        } else if name.contains("non-integer timestamp") {
            let negative = format!("-{ts}");
            for bad in [
                "hello",
                "161426533.0",
                negative.as_str(),
                "1.6e9",
                "+1614265330",
                " ",
            ] {
                let headers = headers(Some(&base.id), Some(bad), Some(&base.signature));
                let error = verifier
                    .verify_at(&headers, &base.payload, base.timestamp)
                    .expect_err(bad);
                assert!(
                    error.is_timestamp() || error.is_missing_header(),
                    "{name}: {bad}"
                );
                if bad.trim().is_empty() {
                    continue;
                }
                assert_eq!(
                    error.kind(),
                    VerifyErrorKind::InvalidTimestamp,
                    "{name}: {bad}"
                );
            }
        } else if name.contains("missing webhook-id") {
            let all = [
                Some(base.id.as_str()),
                Some(ts.as_str()),
                Some(base.signature.as_str()),
            ];
            let names = ["webhook-id", "webhook-timestamp", "webhook-signature"];
            for (missing, header_name) in names.iter().enumerate() {
                let mut present = all;
                present[missing] = None;
                let headers = headers(present[0], present[1], present[2]);
                let error = verifier
                    .verify_at(&headers, &base.payload, base.timestamp)
                    .expect_err(header_name);
                assert_eq!(error.kind(), VerifyErrorKind::MissingHeader, "{name}");
                assert_eq!(error.header(), Some(*header_name), "{name}");
                assert!(error.to_string().contains(header_name), "{error}");
            }
        } else if name.contains("empty payload") {
            assert_eq!(case["payload"].as_str(), Some(""));
            // HMAC-SHA256 of "msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330." under the
            // reference secret, computed with Python's hmac module.
            let expected = "v1,v48jdbgvh29KJz2Qc+ghw8G6vG3nAKnujWBg8oM/62A=";
            let signed = Signer::new(base.secret.clone()).sign(&base.id, base.timestamp, b"");
            assert_eq!(signed, expected, "{name}");
            let headers = headers(Some(&base.id), Some(&ts), Some(expected));
            verifier
                .verify_at(&headers, b"", base.timestamp)
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            let error = verifier
                .verify_at(&headers, b" ", base.timestamp)
                .expect_err(name);
            assert!(error.is_signature());
        } else {
            panic!("verify case not covered by this test: {name}");
        }
    }
}
