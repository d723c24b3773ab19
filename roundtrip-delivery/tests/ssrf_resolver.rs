//! The guard with an injected resolver: names that point inside, rebinding, and
//! the reqwest client refusing before it connects. The only real lookup is
//! `localhost`; no test opens a connection.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::future::BoxFuture;
use roundtrip_delivery::ssrf::{
    BlockedRange, GuardedResolver, Resolve, SsrfError, SsrfPolicy, StaticResolver, resolve_checked,
};
use url::Url;

const PUBLIC_V4: &str = "93.184.216.34";
const PUBLIC_V6: &str = "2606:4700::1111";

fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|error| panic!("{text} is an address: {error}"))
}

fn url(text: &str) -> Url {
    Url::parse(text).unwrap_or_else(|error| panic!("{text} parses: {error}"))
}

fn names() -> StaticResolver {
    StaticResolver::new()
        .with_host("evil.test", [ip("10.0.0.5")])
        .with_host("rebind.test", [ip(PUBLIC_V4), ip("127.0.0.1")])
        .with_host("good.test", [ip(PUBLIC_V4), ip(PUBLIC_V6)])
        .with_host("metadata.test", [ip("fd00:ec2::254")])
        .with_host("empty.test", [])
}

#[tokio::test]
async fn a_name_pointing_at_a_private_address_is_refused() {
    let error = resolve_checked(
        &url("http://evil.test/hook"),
        &names(),
        &SsrfPolicy::default(),
    )
    .await
    .expect_err("evil.test is 10.0.0.5");
    let blocked = error.blocked().expect("refused for its address");
    assert_eq!(blocked.ip(), ip("10.0.0.5"));
    assert_eq!(blocked.range(), BlockedRange::Private);
    assert!(error.is_permanent());
    let message = error.to_string();
    assert!(message.contains("`evil.test`"), "{message}");
    assert!(
        message.contains("10.0.0.5 is private-use (10.0.0.0/8)"),
        "{message}"
    );
    assert!(!message.contains("/hook"), "{message}");
}

/// The documented choice: one refused address refuses the name.
#[tokio::test]
async fn a_name_with_any_refused_address_is_refused_whole() {
    let error = resolve_checked(
        &url("http://rebind.test/"),
        &names(),
        &SsrfPolicy::default(),
    )
    .await
    .expect_err("rebind.test includes 127.0.0.1");
    assert_eq!(error.blocked().map(|b| b.ip()), Some(ip("127.0.0.1")));

    let guard = GuardedResolver::new(Arc::new(names()), SsrfPolicy::default());
    let error = guard
        .lookup("rebind.test")
        .await
        .expect_err("refused whole");
    assert!(error.blocked().is_some_and(|b| b.is_loopback()), "{error}");

    // Where loopback is allowed (a local demo), both addresses pass.
    let demo = GuardedResolver::new(
        Arc::new(names()),
        SsrfPolicy::default().allow_loopback(true),
    );
    assert_eq!(
        demo.lookup("rebind.test").await.expect("both allowed"),
        vec![ip(PUBLIC_V4), ip("127.0.0.1")]
    );
}

#[tokio::test]
async fn public_names_resolve_to_socket_addresses_with_the_url_port() {
    let policy = SsrfPolicy::default();
    let https = resolve_checked(&url("https://good.test/hook"), &names(), &policy)
        .await
        .expect("public");
    assert_eq!(
        https,
        vec![
            SocketAddr::new(ip(PUBLIC_V4), 443),
            SocketAddr::new(ip(PUBLIC_V6), 443)
        ]
    );
    let custom = resolve_checked(&url("http://GOOD.test:8080/"), &names(), &policy)
        .await
        .expect("public, any case");
    assert_eq!(custom[0], SocketAddr::new(ip(PUBLIC_V4), 8080));
    let literal = resolve_checked(&url("http://93.184.216.34/"), &names(), &policy)
        .await
        .expect("a public literal needs no lookup");
    assert_eq!(literal, vec![SocketAddr::new(ip(PUBLIC_V4), 80)]);
}

#[tokio::test]
async fn lookup_failures_are_not_permanent() {
    let policy = SsrfPolicy::default();
    let unknown = resolve_checked(&url("http://unknown.test/"), &names(), &policy)
        .await
        .expect_err("not in the table");
    assert!(matches!(unknown, SsrfError::Resolve { .. }), "{unknown}");
    assert!(!unknown.is_permanent());
    assert!(
        unknown
            .to_string()
            .contains("could not resolve `unknown.test`"),
        "{unknown}"
    );

    let empty = resolve_checked(&url("http://empty.test/"), &names(), &policy)
        .await
        .expect_err("no addresses");
    assert!(matches!(empty, SsrfError::NoAddresses { .. }), "{empty}");
    assert!(empty.is_resolve());
}

#[tokio::test]
async fn url_checks_run_before_any_lookup() {
    /// Fails the test if asked anything.
    struct NeverAsked;
    impl Resolve for NeverAsked {
        fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
            panic!("the resolver was asked about {host}")
        }
    }
    let policy = SsrfPolicy::default();
    for text in [
        "file:///etc/passwd",
        "http://169.254.169.254/",
        "https://u:p@good.test/",
    ] {
        assert!(
            resolve_checked(&url(text), &NeverAsked, &policy)
                .await
                .is_err(),
            "{text}"
        );
    }
}

/// A DNS rebind: the first answer is public, every later one private. Every
/// resolution goes through the check, including the one reqwest connects with.
#[tokio::test]
async fn every_resolution_is_checked_so_a_rebind_gets_nowhere() {
    struct Rebinding(AtomicUsize);
    impl Resolve for Rebinding {
        fn resolve<'a>(&'a self, _host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
            let first = self.0.fetch_add(1, Ordering::SeqCst) == 0;
            Box::pin(async move {
                Ok(vec![if first {
                    ip(PUBLIC_V4)
                } else {
                    ip("169.254.169.254")
                }])
            })
        }
    }
    let guard = GuardedResolver::new(
        Arc::new(Rebinding(AtomicUsize::new(0))),
        SsrfPolicy::default(),
    );
    assert_eq!(
        guard
            .lookup("flip.test")
            .await
            .expect("first answer is public"),
        vec![ip(PUBLIC_V4)]
    );
    let error = guard
        .lookup("flip.test")
        .await
        .expect_err("second answer is metadata");
    assert_eq!(
        error.blocked().map(|b| b.range()),
        Some(BlockedRange::LinkLocal)
    );

    let error = reqwest::dns::Resolve::resolve(&guard, "flip.test".parse().expect("a name"))
        .await
        .err()
        .expect("the resolver reqwest uses refuses too");
    assert!(
        SsrfError::find_in(&*error).is_some_and(|e| e.blocked().is_some()),
        "{error}"
    );
}

#[tokio::test]
async fn the_reqwest_resolver_hands_out_only_checked_addresses() {
    let guard = GuardedResolver::new(Arc::new(names()), SsrfPolicy::default());
    let addresses: Vec<SocketAddr> =
        reqwest::dns::Resolve::resolve(&guard, "good.test".parse().expect("a name"))
            .await
            .expect("public")
            .collect();
    assert_eq!(
        addresses,
        vec![
            SocketAddr::new(ip(PUBLIC_V4), 0),
            SocketAddr::new(ip(PUBLIC_V6), 0)
        ]
    );
    let error = reqwest::dns::Resolve::resolve(&guard, "metadata.test".parse().expect("a name"))
        .await
        .err()
        .expect("fd00:ec2::254 is unique-local");
    let found = SsrfError::find_in(&*error).expect("the guard's error");
    assert_eq!(
        found.blocked().map(|b| b.range()),
        Some(BlockedRange::UniqueLocal)
    );
}

/// The whole path through reqwest: the request fails at resolution, so no
/// connection is opened, and the guard's reason can be dug out of reqwest's error.
#[tokio::test]
async fn a_guarded_client_refuses_before_connecting() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let guard = GuardedResolver::new(Arc::new(names()), SsrfPolicy::default());
    let client = guard
        .configure_client(reqwest::Client::builder())
        .build()
        .expect("a client");
    for target in ["http://evil.test/hook", "http://rebind.test:8080/"] {
        let error = client.get(target).send().await.expect_err(target);
        let found = SsrfError::find_in(&error)
            .unwrap_or_else(|| panic!("{target}: the guard's error is in the chain: {error:?}"));
        assert!(found.is_permanent(), "{target}: {found}");
        assert!(found.blocked().is_some(), "{target}: {found}");
    }
}

/// The one real lookup: `localhost` is loopback, refused by default.
#[tokio::test]
async fn localhost_is_loopback_through_the_system_resolver() {
    let strict = GuardedResolver::system(SsrfPolicy::default());
    match strict.lookup("localhost").await {
        Err(SsrfError::Blocked { blocked, .. }) => assert!(blocked.is_loopback(), "{blocked}"),
        Err(SsrfError::Resolve { .. }) => {} // no resolver configured in this sandbox
        other => panic!("localhost must not pass by default: {other:?}"),
    }
    let demo = GuardedResolver::system(SsrfPolicy::default().allow_loopback(true));
    if let Ok(addresses) = demo.lookup("localhost").await {
        assert!(addresses.iter().all(|ip| ip.is_loopback()), "{addresses:?}");
    }
}
