//! `check_url`: schemes, credentials, and literal addresses in every spelling the
//! `url` crate accepts. Pure: no lookups, no connections.

use roundtrip_delivery::ssrf::{BlockedRange, SsrfError, SsrfPolicy, check_url};
use url::Url;

fn url(text: &str) -> Url {
    Url::parse(text).unwrap_or_else(|error| panic!("{text} parses: {error}"))
}

fn refused(text: &str, policy: &SsrfPolicy) -> SsrfError {
    check_url(&url(text), policy)
        .err()
        .unwrap_or_else(|| panic!("{text} must be refused"))
}

#[test]
fn only_http_and_https_are_delivered_to() {
    let policy = SsrfPolicy::default();
    for text in [
        "file:///etc/passwd",
        "gopher://example.com:70/_hello",
        "ftp://example.com/",
        "dict://example.com:2628/",
        "ldap://example.com/",
        "ws://example.com/",
        "data:text/plain,hi",
        "javascript:alert(1)",
    ] {
        let error = refused(text, &policy);
        assert!(
            matches!(error, SsrfError::UnsupportedScheme { .. }),
            "{text}: {error}"
        );
        assert!(error.is_permanent());
        assert!(error.to_string().contains("only http and https"), "{error}");
    }
    for text in [
        "http://example.com/hook",
        "https://example.com:8443/hook?x=1",
        "HTTPS://EXAMPLE.COM/",
    ] {
        check_url(&url(text), &policy).unwrap_or_else(|error| panic!("{text}: {error}"));
    }
}

#[test]
fn cloud_metadata_url_is_refused_without_a_lookup() {
    let error = refused(
        "http://169.254.169.254/latest/meta-data",
        &SsrfPolicy::default(),
    );
    let blocked = error.blocked().expect("refused for its address");
    assert_eq!(blocked.range(), BlockedRange::LinkLocal);
    let message = error.to_string();
    assert!(
        message.contains("169.254.169.254 is link-local"),
        "{message}"
    );
    assert!(
        !message.contains("meta-data"),
        "the path stays out of messages: {message}"
    );
}

#[test]
fn ipv4_mapped_ipv6_literal_is_refused() {
    let error = refused("http://[::ffff:7f00:1]/", &SsrfPolicy::default());
    assert_eq!(
        error.blocked().map(|b| b.range()),
        Some(BlockedRange::Loopback)
    );
    let error = refused("http://[::ffff:a9fe:a9fe]/", &SsrfPolicy::default());
    assert_eq!(
        error.blocked().map(|b| b.range()),
        Some(BlockedRange::LinkLocal)
    );
}

/// The `url` crate follows WHATWG and turns these into dotted quads before we see
/// them; this proves it, so a change there cannot slip past.
#[test]
fn numeric_ipv4_spellings_are_normalised_and_refused() {
    let policy = SsrfPolicy::default();
    for (text, normalised) in [
        ("http://2130706433/", "127.0.0.1"),
        ("http://0x7f.1/", "127.0.0.1"),
        ("http://0x7f000001/", "127.0.0.1"),
        ("http://017700000001/", "127.0.0.1"),
        ("http://0177.0.0.1/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://0/", "0.0.0.0"),
        ("http://0xa9.0xfe.0xa9.0xfe/", "169.254.169.254"),
        ("http://2852039166/", "169.254.169.254"),
        ("http://012.0.0.1/", "10.0.0.1"),
        ("http://%31%32%37.0.0.1/", "127.0.0.1"),
    ] {
        let parsed = url(text);
        assert_eq!(parsed.host_str(), Some(normalised), "{text}");
        let error = check_url(&parsed, &policy).expect_err(text);
        assert_eq!(
            error.blocked().map(|b| b.ip().to_string()),
            Some(normalised.to_owned()),
            "{text}"
        );
    }
}

#[test]
fn loopback_urls_pass_when_allowed() {
    let demo = SsrfPolicy::default().allow_loopback(true);
    for text in [
        "http://127.0.0.1:8000/hook",
        "http://[::1]:8000/",
        "http://2130706433/",
    ] {
        check_url(&url(text), &demo).unwrap_or_else(|error| panic!("{text}: {error}"));
    }
    assert!(check_url(&url("http://0.0.0.0:8000/"), &demo).is_err());
}

#[test]
fn credentials_in_the_url_are_refused_unless_allowed() {
    let strict = SsrfPolicy::default();
    for text in [
        "https://alice:s3cr3t@example.com/",
        "https://alice@example.com/",
        "https://:s3cr3t@example.com/",
        "http://example.com@169.254.169.254/",
    ] {
        let error = refused(text, &strict);
        assert!(
            matches!(error, SsrfError::CredentialsInUrl),
            "{text}: {error}"
        );
        assert!(
            !error.to_string().contains("s3cr3t"),
            "no secret in: {error}"
        );
    }
    let lenient = SsrfPolicy::default().allow_credentials_in_url(true);
    check_url(&url("https://user:pass@example.com/"), &lenient).expect("allowed");
    // The host is still checked: userinfo cannot hide the metadata address.
    let error = refused("http://example.com@169.254.169.254/", &lenient);
    assert_eq!(
        error.blocked().map(|b| b.range()),
        Some(BlockedRange::LinkLocal)
    );
}

#[test]
fn names_pass_the_url_check_and_are_judged_when_resolved() {
    let policy = SsrfPolicy::default();
    // A name is not an address: only resolution can tell, so it passes here.
    check_url(&url("http://localhost:8000/"), &policy).expect("a name");
    check_url(&url("http://evil.test/"), &policy).expect("a name");
}
