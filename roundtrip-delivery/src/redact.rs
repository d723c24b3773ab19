//! Database URLs as they may be shown in messages, logs and `Debug` output: never with
//! a password, even when the URL cannot be parsed.

/// A database URL without its credentials (user name and password), and with its query
/// (which can hold a `password=`) shown as `?…`. It is read as text, so a URL that cannot
/// be parsed (a `#` or `/` in the password, a port out of range, an unknown scheme...) is
/// redacted too: everything up to its last `@` is left out.
///
/// ```
/// use roundtrip_delivery::redact;
/// assert_eq!(redact("postgres://app:s3cret@db:5432/app"), "postgres://db:5432/app");
/// assert_eq!(redact("postgres://app:se#cr/et@db:99999/app"), "postgres://db:99999/app");
/// assert_eq!(redact("postgres://db/app?password=x"), "postgres://db/app?…");
/// ```
pub fn redact(url: &str) -> String {
    // Read as text, not parsed: a parser reads `u:5#55@h` as host `u`, port `5` and a
    // fragment, and would show a piece of the password as the port.
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let mut shown = String::new();
    if let Some(scheme) = scheme {
        shown.push_str(scheme);
        shown.push_str("://");
    }
    // The userinfo ends at the last `@`: a password may hold `/`, `?`, `#` or `@`. It is
    // left out whole: the user name is an account name an attacker could use too.
    let rest = match rest.rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    match rest.find(['?', '#']) {
        Some(end) => {
            shown.push_str(&rest[..end]);
            if rest[end..].starts_with('?') {
                shown.push_str("?…");
            }
        }
        None => shown.push_str(rest),
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_show() {
        let secret = "pa55";
        for (url, shown) in [
            ("postgres://u:pa55@h/db", "postgres://h/db"),
            (
                "postgres://u:pa55@h/db?sslmode=require",
                "postgres://h/db?…",
            ),
            ("postgres://u:pa#55@h:5432/db", "postgres://h:5432/db"),
            ("postgres://u:pa/55@h:5432/db", "postgres://h:5432/db"),
            ("postgres://u:pa55@h:99999/db", "postgres://h:99999/db"),
            ("postgres://u:pa@55@h/db", "postgres://h/db"),
            ("postgres://u:pa55@[h/db", "postgres://[h/db"),
            ("mysql://u:pa#55@h/db", "mysql://h/db"),
            ("u:pa55@h/db", "h/db"),
            ("postgres://h/db?password=pa55", "postgres://h/db?…"),
            (
                "postgres://h:99999/db?password=pa55",
                "postgres://h:99999/db?…",
            ),
            ("postgres://h/db#pa55", "postgres://h/db"),
            ("postgres://u:5#55@h/db", "postgres://h/db"),
            ("postgres://u@h/db", "postgres://h/db"),
            ("sqlite://outbox.db", "sqlite://outbox.db"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
            assert!(!redact(url).contains(secret), "{url}");
        }
    }
}
