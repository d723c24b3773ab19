//! What `Signer` signs, `Verifier` accepts; rotation; secrets never leak through `Debug`.

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use roundtrip_delivery::signing::{
    Secret, SecretError, Signer, Verifier, VerifyErrorKind, WEBHOOK_ID, WEBHOOK_SIGNATURE,
    WEBHOOK_TIMESTAMP,
};

const NOW: i64 = 1_700_000_000;

fn generated() -> Secret {
    Secret::generate().expect("the OS gives randomness")
}

fn signed_headers(signer: &Signer, id: &str, timestamp: i64, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.extend(signer.headers(id, timestamp, body).expect("a valid id"));
    headers
}

/// A small deterministic generator, so the property runs over varied input
/// without a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, max_len: u64) -> Vec<u8> {
        let len = self.next() % (max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn what_the_signer_signs_the_verifier_accepts() {
    let mut rng = SplitMix(7);
    for round in 0..200 {
        let key = {
            let mut key = rng.bytes(64);
            key.push(1); // never empty
            key
        };
        let secret = Secret::from_bytes(&key).expect("a non-empty key");
        let id = format!("msg_{round}_{}", rng.next());
        let body = rng.bytes(512);
        let timestamp = NOW + (rng.next() % 10_000) as i64;

        let headers = signed_headers(&Signer::new(secret.clone()), &id, timestamp, &body);
        let verified = Verifier::new(secret.clone())
            .verify_at(&headers, &body, timestamp)
            .unwrap_or_else(|error| panic!("round {round}: {error}"));
        assert_eq!(verified.id, id);
        assert_eq!(verified.timestamp, timestamp);

        // Through the `whsec_` text form, as a receiver would be configured.
        let reparsed = Secret::parse(&secret.to_string()).expect("Display parses back");
        Verifier::new(reparsed)
            .verify_at(&headers, &body, timestamp)
            .unwrap_or_else(|error| panic!("round {round}, reparsed: {error}"));

        // One flipped body byte is caught.
        let mut tampered = body.clone();
        tampered.push(b'x');
        let error = Verifier::new(secret)
            .verify_at(&headers, &tampered, timestamp)
            .expect_err("a changed body fails");
        assert_eq!(error.kind(), VerifyErrorKind::NoMatchingSignature);
    }
}

#[test]
fn headers_are_the_three_standard_webhooks_headers() {
    let signer = Signer::new(generated());
    let [id, timestamp, signature] = signer.headers("msg_1", NOW, b"{}").expect("a valid id");
    assert_eq!(
        (id.0, id.1),
        (WEBHOOK_ID, HeaderValue::from_static("msg_1"))
    );
    assert_eq!(timestamp.0, WEBHOOK_TIMESTAMP);
    assert_eq!(timestamp.1, "1700000000");
    assert_eq!(signature.0, WEBHOOK_SIGNATURE);
    assert_eq!(signature.1, signer.sign("msg_1", NOW, b"{}").as_str());
}

#[test]
fn a_message_id_with_a_line_break_is_refused() {
    let signer = Signer::new(generated());
    let error = signer
        .headers("msg\r\nx-injected: 1", NOW, b"{}")
        .expect_err("a line break cannot be a header value");
    assert!(error.to_string().contains("webhook-id"), "{error}");
}

#[test]
fn during_rotation_every_active_secret_signs() {
    let (old, new) = (generated(), generated());
    let signer = Signer::new(old.clone()).with_secret(new.clone());
    let signature = signer.sign("msg_rot", NOW, b"body");
    let entries: Vec<&str> = signature.split(' ').collect();
    assert_eq!(entries.len(), 2, "{signature}");
    assert!(entries.iter().all(|entry| entry.starts_with("v1,")));
    assert_eq!(
        entries[0],
        Signer::new(old.clone()).sign("msg_rot", NOW, b"body")
    );
    assert_eq!(
        entries[1],
        Signer::new(new.clone()).sign("msg_rot", NOW, b"body")
    );

    let headers = signed_headers(&signer, "msg_rot", NOW, b"body");
    for (label, secret) in [("old", old), ("new", new)] {
        Verifier::new(secret)
            .verify_at(&headers, b"body", NOW)
            .unwrap_or_else(|error| panic!("a verifier with only the {label} secret: {error}"));
    }
    Verifier::new(generated())
        .verify_at(&headers, b"body", NOW)
        .expect_err("an unrelated secret matches neither entry");
}

#[test]
fn a_verifier_holding_both_secrets_accepts_either_signer() {
    let (old, new) = (generated(), generated());
    let verifier = Verifier::from_secrets([old.clone(), new.clone()]).expect("two secrets");
    for secret in [old, new] {
        let headers = signed_headers(&Signer::new(secret), "msg_v", NOW, b"b");
        verifier
            .verify_at(&headers, b"b", NOW)
            .expect("either secret verifies");
    }
}

#[test]
fn signer_and_verifier_need_at_least_one_secret() {
    assert_eq!(Signer::from_secrets([]).err(), Some(SecretError::NoSecrets));
    assert_eq!(
        Verifier::from_secrets([]).err(),
        Some(SecretError::NoSecrets)
    );
}

#[test]
fn unknown_versions_and_junk_entries_are_ignored() {
    let secret = generated();
    let valid = Signer::new(secret.clone()).sign("msg_j", NOW, b"b");
    let header = format!(
        "v1a,AAAA v2,{} garbage v1,not-base64!! v1, ,, {valid}",
        &valid[3..]
    );
    let mut headers = signed_headers(&Signer::new(secret.clone()), "msg_j", NOW, b"b");
    headers.insert(
        WEBHOOK_SIGNATURE,
        HeaderValue::from_str(&header).expect("valid"),
    );
    Verifier::new(secret.clone())
        .verify_at(&headers, b"b", NOW)
        .expect("the valid v1 entry passes");

    // The same valid signature under an unknown version does not count.
    let v2_only = format!("v2,{}", &valid[3..]);
    headers.insert(
        WEBHOOK_SIGNATURE,
        HeaderValue::from_str(&v2_only).expect("valid"),
    );
    let error = Verifier::new(secret)
        .verify_at(&headers, b"b", NOW)
        .expect_err("v2 entries are ignored");
    assert!(error.is_signature());
}

#[test]
fn tolerance_is_configurable() {
    let secret = generated();
    let headers = signed_headers(&Signer::new(secret.clone()), "msg_t", NOW, b"b");
    let verifier = Verifier::new(secret).with_tolerance(Duration::from_secs(10));
    assert_eq!(verifier.tolerance(), Duration::from_secs(10));
    verifier
        .verify_at(&headers, b"b", NOW + 10)
        .expect("within 10 s");
    let old = verifier
        .verify_at(&headers, b"b", NOW + 11)
        .expect_err("11 s late");
    assert_eq!(old.kind(), VerifyErrorKind::TimestampTooOld);
    assert!(old.to_string().contains("11 s old"), "{old}");
    let new = verifier
        .verify_at(&headers, b"b", NOW - 11)
        .expect_err("11 s early");
    assert_eq!(new.kind(), VerifyErrorKind::TimestampTooNew);
}

#[test]
fn default_tolerance_is_five_minutes_and_verify_uses_the_clock() {
    let secret = generated();
    let verifier = Verifier::new(secret.clone());
    assert_eq!(verifier.tolerance(), Duration::from_secs(300));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64;
    let headers = signed_headers(&Signer::new(secret.clone()), "msg_c", now, b"b");
    verifier.verify(&headers, b"b").expect("signed just now");
    let stale = signed_headers(&Signer::new(secret), "msg_c", now - 3600, b"b");
    assert!(
        verifier
            .verify(&stale, b"b")
            .expect_err("an hour old")
            .is_timestamp()
    );
}

#[test]
fn extreme_timestamps_do_not_overflow() {
    let secret = generated();
    let verifier = Verifier::new(secret.clone()).with_tolerance(Duration::MAX);
    for timestamp in [0, i64::MAX] {
        let headers = signed_headers(&Signer::new(secret.clone()), "msg_x", timestamp, b"b");
        verifier
            .verify_at(&headers, b"b", 0)
            .expect("within an unbounded tolerance");
    }
    let strict = Verifier::new(secret.clone());
    let headers = signed_headers(&Signer::new(secret), "msg_x", i64::MAX, b"b");
    assert_eq!(
        strict
            .verify_at(&headers, b"b", i64::MIN)
            .expect_err("far future")
            .kind(),
        VerifyErrorKind::TimestampTooNew
    );
    let mut huge = headers.clone();
    huge.insert(
        WEBHOOK_TIMESTAMP,
        HeaderValue::from_static("99999999999999999999999"),
    );
    assert_eq!(
        strict
            .verify_at(&huge, b"b", NOW)
            .expect_err("does not fit i64")
            .kind(),
        VerifyErrorKind::InvalidTimestamp
    );
}

#[test]
fn generated_secrets_are_32_random_bytes_in_whsec_form() {
    let (a, b) = (generated(), generated());
    assert_eq!(a.key_len(), 32);
    let text = a.to_string();
    assert!(text.starts_with("whsec_"), "{text}");
    assert_ne!(text, b.to_string(), "two generated secrets differ");
    let parsed: Secret = text.parse().expect("the printed form parses");
    assert_eq!(parsed.to_string(), text);
}

#[test]
fn debug_never_prints_key_material() {
    let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
    let signer = Signer::new(secret.clone());
    let verifier = Verifier::new(secret.clone());
    for debug in [
        format!("{secret:?}"),
        format!("{signer:?}"),
        format!("{verifier:?}"),
    ] {
        assert!(!debug.contains("MfKQ9r8G"), "{debug}");
        assert!(debug.contains("REDACTED"), "{debug}");
    }
}

#[test]
fn malformed_secrets_say_what_is_expected() {
    let error = Secret::parse("whsec_not base64!").expect_err("spaces and ! are not base64");
    assert!(matches!(error, SecretError::NotBase64(_)));
    assert!(error.to_string().contains("base64"), "{error}");
    // Surrounding whitespace, as pasted from an env file, is fine.
    let padded = Secret::parse(" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").expect("trimmed");
    assert_eq!(padded.to_string(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
}
