//! The guard as a pure function: every refused range, with addresses on both sides
//! of it. No test here opens a connection or asks DNS.

use std::net::IpAddr;

use roundtrip_delivery::ssrf::{BlockedRange, IpNetwork, SsrfPolicy, check_ip};

fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|error| panic!("{text} is an address: {error}"))
}

/// `(address, the range it is refused for)`, under the default policy.
const REFUSED: &[(&str, BlockedRange)] = &[
    // IPv4
    ("0.0.0.0", BlockedRange::Unspecified),
    ("0.1.2.3", BlockedRange::ThisNetwork),
    ("0.255.255.255", BlockedRange::ThisNetwork),
    ("127.0.0.1", BlockedRange::Loopback),
    ("127.255.255.254", BlockedRange::Loopback),
    ("10.0.0.0", BlockedRange::Private),
    ("10.0.0.1", BlockedRange::Private),
    ("10.255.255.255", BlockedRange::Private),
    ("172.16.0.1", BlockedRange::Private),
    ("172.31.255.255", BlockedRange::Private),
    ("192.168.0.1", BlockedRange::Private),
    ("192.168.255.255", BlockedRange::Private),
    ("100.64.0.1", BlockedRange::SharedAddressSpace),
    ("100.100.100.200", BlockedRange::SharedAddressSpace), // Alibaba Cloud metadata
    ("100.127.255.255", BlockedRange::SharedAddressSpace),
    ("169.254.169.254", BlockedRange::LinkLocal), // AWS, GCP, Azure metadata
    ("169.254.0.1", BlockedRange::LinkLocal),
    ("192.0.0.1", BlockedRange::ProtocolAssignments),
    ("192.0.0.192", BlockedRange::ProtocolAssignments), // Oracle Cloud metadata
    ("192.0.2.1", BlockedRange::Documentation),
    ("198.51.100.7", BlockedRange::Documentation),
    ("203.0.113.9", BlockedRange::Documentation),
    ("192.88.99.1", BlockedRange::Reserved),
    ("198.18.0.1", BlockedRange::Benchmarking),
    ("198.19.255.255", BlockedRange::Benchmarking),
    ("224.0.0.1", BlockedRange::Multicast),
    ("239.255.255.250", BlockedRange::Multicast),
    ("240.0.0.1", BlockedRange::Reserved),
    ("254.1.2.3", BlockedRange::Reserved),
    ("255.255.255.255", BlockedRange::Broadcast),
    // IPv6
    ("::", BlockedRange::Unspecified),
    ("::1", BlockedRange::Loopback),
    ("::ffff:127.0.0.1", BlockedRange::Loopback),
    ("::ffff:7f00:1", BlockedRange::Loopback),
    ("::ffff:10.0.0.1", BlockedRange::Private),
    ("::ffff:169.254.169.254", BlockedRange::LinkLocal),
    ("::ffff:0.0.0.0", BlockedRange::Unspecified),
    ("::10.0.0.1", BlockedRange::Ipv4Compatible),
    ("::8.8.8.8", BlockedRange::Ipv4Compatible),
    ("64:ff9b::a00:1", BlockedRange::Private),
    ("64:ff9b::7f00:1", BlockedRange::Loopback),
    ("64:ff9b::a9fe:a9fe", BlockedRange::LinkLocal),
    ("64:ff9b:1::1", BlockedRange::LocalNat64),
    ("2002:0a00:0001::", BlockedRange::Private),
    ("2002:7f00:0001::1", BlockedRange::Loopback),
    ("2002:a9fe:a9fe::", BlockedRange::LinkLocal),
    // Teredo: server 65.54.227.120, client 10.0.0.1 stored inverted (f5ff:fffe).
    (
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",
        BlockedRange::Private,
    ),
    // Teredo with a private server address.
    ("2001:0:c0a8:0101::1", BlockedRange::Private),
    ("100::1", BlockedRange::DiscardOnly),
    ("2001:2::1", BlockedRange::Benchmarking),
    ("2001:10::1", BlockedRange::Orchid),
    ("2001:20::1", BlockedRange::Orchid),
    ("2001:db8::1", BlockedRange::Documentation),
    (
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        BlockedRange::Documentation,
    ),
    ("3fff::1", BlockedRange::Documentation),
    ("fc00::1", BlockedRange::UniqueLocal),
    ("fd00:ec2::254", BlockedRange::UniqueLocal), // AWS metadata over IPv6
    ("fdff:ffff::1", BlockedRange::UniqueLocal),
    ("fe80::1", BlockedRange::LinkLocal),
    ("febf::1", BlockedRange::LinkLocal),
    ("fec0::1", BlockedRange::SiteLocal),
    ("ff00::1", BlockedRange::Multicast),
    ("ff02::1", BlockedRange::Multicast),
    ("4000::1", BlockedRange::Reserved),
    ("1::1", BlockedRange::Reserved),
    ("5f00::1", BlockedRange::Reserved),
];

/// Public addresses, including ones right next to refused ranges.
const ALLOWED: &[&str] = &[
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "9.255.255.255",   // just below 10/8
    "11.0.0.0",        // just above 10/8
    "100.63.255.255",  // just below 100.64/10
    "100.128.0.0",     // just above 100.64/10
    "169.253.255.255", // just below 169.254/16
    "172.15.255.255",  // just below 172.16/12
    "172.32.0.0",      // just above 172.16/12
    "192.0.1.1",       // between 192.0.0/24 and 192.0.2/24
    "192.167.255.255", // just below 192.168/16
    "192.169.0.0",     // just above 192.168/16
    "198.17.255.255",  // just below 198.18/15
    "198.20.0.0",      // just above 198.18/15
    "223.255.255.255", // just below multicast
    "126.255.255.255", // just below loopback
    "128.0.0.0",       // just above loopback
    "1.0.0.0",         // just above 0/8
    "2606:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001:800::200e",
    "::ffff:93.184.216.34",                 // mapped public IPv4
    "64:ff9b::5db8:d822",                   // NAT64 of 93.184.216.34
    "2002:5db8:d822::1",                    // 6to4 of 93.184.216.34
    "2001:0:4136:e378:8000:63bf:a247:27dd", // Teredo, public server and client
    "2001:db7:ffff::1",                     // just below 2001:db8::/32
    "2001:db9::1",                          // just above 2001:db8::/32
    "3ffe:ffff::1",                         // below 3fff::/20, still 2000::/3
    "2001:1::1",                            // PCP anycast, globally reachable
];

#[test]
fn every_non_public_range_is_refused_by_default() {
    let policy = SsrfPolicy::default();
    for &(text, range) in REFUSED {
        let blocked = check_ip(ip(text), &policy)
            .err()
            .unwrap_or_else(|| panic!("{text} must be refused"));
        assert_eq!(blocked.range(), range, "{text}: {blocked}");
        assert_eq!(blocked.ip(), ip(text));
        assert!(
            blocked.to_string().starts_with(&ip(text).to_string()),
            "{blocked}"
        );
    }
}

#[test]
fn public_addresses_pass() {
    let policy = SsrfPolicy::default();
    for text in ALLOWED {
        if let Err(blocked) = check_ip(ip(text), &policy) {
            panic!("{text} must pass: {blocked}");
        }
    }
}

#[test]
fn loopback_passes_only_when_the_policy_allows_it() {
    let strict = SsrfPolicy::default();
    let demo = SsrfPolicy::default().allow_loopback(true);
    assert!(!strict.allows_loopback());
    assert!(demo.allows_loopback());
    for text in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
        let blocked = check_ip(ip(text), &strict).expect_err(text);
        assert!(blocked.is_loopback(), "{text}");
        assert!(
            blocked.to_string().contains("allow_loopback(true)"),
            "{blocked}"
        );
        check_ip(ip(text), &demo).unwrap_or_else(|error| panic!("{text}: {error}"));
    }
}

#[test]
fn allowing_loopback_allows_nothing_else() {
    let demo = SsrfPolicy::default().allow_loopback(true);
    for text in [
        "0.0.0.0", // reaches this host on Linux: always refused
        "::",
        "::ffff:0.0.0.0",
        "10.0.0.1",
        "169.254.169.254",
        "fe80::1",
        // Loopback inside a tunnel form is some other host's loopback.
        "64:ff9b::7f00:1",
        "2002:7f00:0001::",
    ] {
        assert!(
            check_ip(ip(text), &demo).is_err(),
            "{text} must stay refused"
        );
    }
}

#[test]
fn metadata_address_names_its_range_and_the_way_out() {
    let blocked = check_ip(ip("169.254.169.254"), &SsrfPolicy::default()).expect_err("metadata");
    let message = blocked.to_string();
    assert!(
        message.starts_with("169.254.169.254 is link-local"),
        "{message}"
    );
    assert!(message.contains("169.254.0.0/16"), "{message}");
    assert!(message.contains("cloud metadata"), "{message}");
    assert_eq!(blocked.network(), "169.254.0.0/16");
}

#[test]
fn embedded_ipv4_is_named() {
    let blocked = check_ip(ip("::ffff:10.0.0.1"), &SsrfPolicy::default()).expect_err("mapped");
    assert_eq!(
        blocked.embedded_ipv4(),
        Some("10.0.0.1".parse().expect("v4"))
    );
    assert!(
        blocked
            .to_string()
            .contains("embeds the IPv4 address 10.0.0.1, which is private-use"),
        "{blocked}"
    );
    let nat64 = check_ip(ip("64:ff9b::a00:1"), &SsrfPolicy::default()).expect_err("NAT64");
    assert_eq!(nat64.embedded_ipv4(), Some("10.0.0.1".parse().expect("v4")));
}

#[test]
fn an_allowed_network_is_trusted_and_nothing_beside_it() {
    let policy = SsrfPolicy::default()
        .allow_network("10.20.0.0/16".parse().expect("a network"))
        .allow_network("fd12:3456::/32".parse().expect("a network"));
    for text in [
        "10.20.0.1",
        "10.20.255.255",
        "::ffff:10.20.3.4",
        "fd12:3456::1",
    ] {
        check_ip(ip(text), &policy).unwrap_or_else(|error| panic!("{text}: {error}"));
    }
    for text in ["10.21.0.1", "10.19.255.255", "fd12:3457::1", "127.0.0.1"] {
        assert!(check_ip(ip(text), &policy).is_err(), "{text}");
    }
}

#[test]
fn networks_parse_strictly() {
    let network: IpNetwork = "10.0.0.0/8".parse().expect("valid");
    assert_eq!(network.to_string(), "10.0.0.0/8");
    assert!(network.contains(ip("10.1.2.3")));
    assert!(
        !network.contains(ip("::ffff:10.1.2.3")),
        "no cross-family match"
    );
    let host: IpNetwork = "192.0.2.7".parse().expect("a single host");
    assert_eq!(host.prefix(), 32);
    let all: IpNetwork = "::/0".parse().expect("everything");
    assert!(all.contains(ip("2606:4700::1111")));

    let typo = "10.0.0.1/8"
        .parse::<IpNetwork>()
        .expect_err("host bits set");
    assert!(
        typo.to_string().contains("did you mean 10.0.0.0/8"),
        "{typo}"
    );
    assert!("10.0.0.0/33".parse::<IpNetwork>().is_err());
    assert!("10.0.0.0/x".parse::<IpNetwork>().is_err());
    assert!("example.com/8".parse::<IpNetwork>().is_err());
}
