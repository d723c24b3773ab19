//! Which IP addresses a delivery may connect to: the policy, the ranges it refuses,
//! and the pure check.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use BlockedRange as R;

/// What deliveries may connect to. The default refuses every address that is not
/// public unicast.
///
/// Two relaxations exist, both explicit:
///
/// - [`allow_loopback(true)`](Self::allow_loopback) lets tests and local demos
///   deliver to `127.0.0.0/8` and `::1`. The unspecified addresses (`0.0.0.0`,
///   `::`) stay refused, because connecting to them reaches this host too.
/// - [`allow_network`](Self::allow_network) trusts one network, for a receiver
///   that really lives on a private address. Any address inside it passes, whatever
///   range it falls in, so keep it as narrow as the receiver needs.
///
/// ```
/// use roundtrip_delivery::ssrf::{SsrfPolicy, check_ip};
///
/// let strict = SsrfPolicy::default();
/// assert!(check_ip("127.0.0.1".parse()?, &strict).is_err());
///
/// let demo = SsrfPolicy::default().allow_loopback(true);
/// assert!(check_ip("127.0.0.1".parse()?, &demo).is_ok());
///
/// let internal = SsrfPolicy::default().allow_network("10.20.0.0/16".parse()?);
/// assert!(check_ip("10.20.3.4".parse()?, &internal).is_ok());
/// assert!(check_ip("10.21.0.1".parse()?, &internal).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SsrfPolicy {
    allow_loopback: bool,
    allow_credentials: bool,
    allowed_networks: Vec<IpNetwork>,
}

impl SsrfPolicy {
    /// The strict default: public unicast addresses only, no credentials in URLs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows (or refuses again) loopback targets: `127.0.0.0/8`, `::1` and
    /// `::ffff:127.0.0.0/104`. For tests and local demos.
    #[must_use]
    pub fn allow_loopback(mut self, allow: bool) -> Self {
        self.allow_loopback = allow;
        self
    }

    /// Trusts every address inside `network`, whatever range it is in.
    #[must_use]
    pub fn allow_network(mut self, network: IpNetwork) -> Self {
        self.allowed_networks.push(network);
        self
    }

    /// Allows URLs that carry a user name or password (`https://user:pass@host/`).
    ///
    /// Refused by default: a callback URL often comes from the request, and
    /// credentials in it would be stored in the outbox and printed wherever the URL
    /// is. Prefer a header or a signed URL token.
    #[must_use]
    pub fn allow_credentials_in_url(mut self, allow: bool) -> Self {
        self.allow_credentials = allow;
        self
    }

    /// Whether loopback targets are allowed.
    pub fn allows_loopback(&self) -> bool {
        self.allow_loopback
    }

    /// Whether URLs may carry a user name or password.
    pub fn allows_credentials_in_url(&self) -> bool {
        self.allow_credentials
    }

    /// The networks trusted with [`allow_network`](Self::allow_network).
    pub fn allowed_networks(&self) -> &[IpNetwork] {
        &self.allowed_networks
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.allowed_networks
            .iter()
            .any(|network| network.contains(ip))
    }
}

/// An IP network in CIDR form, such as `10.20.0.0/16` or `fd12:3456::/32`.
///
/// Parses from `address/prefix`, or from a bare address (a single host). Host bits
/// below the prefix must be zero, which catches `10.0.0.1/8` typed for `10.0.0.0/8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// The network `address/prefix`. Fails when the prefix is longer than the
    /// address (32 or 128 bits) or when host bits are set.
    pub fn new(address: IpAddr, prefix: u8) -> Result<Self, InvalidNetwork> {
        let bits = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > bits {
            return Err(InvalidNetwork(format!(
                "prefix /{prefix} is longer than the {bits} bits of {address}"
            )));
        }
        let network = Self { address, prefix };
        let masked = network.network_address();
        if masked != address {
            return Err(InvalidNetwork(format!(
                "{address}/{prefix} has host bits set; did you mean {masked}/{prefix}?"
            )));
        }
        Ok(network)
    }

    /// The first address of the network.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies inside this network. Addresses of the other family never do.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_u32(self.prefix);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_u128(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    fn network_address(&self) -> IpAddr {
        match self.address {
            IpAddr::V4(ip) => IpAddr::V4(Ipv4Addr::from(u32::from(ip) & mask_u32(self.prefix))),
            IpAddr::V6(ip) => IpAddr::V6(Ipv6Addr::from(u128::from(ip) & mask_u128(self.prefix))),
        }
    }
}

impl FromStr for IpNetwork {
    type Err = InvalidNetwork;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| {
            InvalidNetwork(format!(
                "\"{}\" is not an IP address; write a network as 10.0.0.0/8 or fd00::/8",
                address.escape_debug()
            ))
        })?;
        let prefix = match prefix {
            None if address.is_ipv4() => 32,
            None => 128,
            Some(prefix) => prefix.parse::<u8>().map_err(|_| {
                InvalidNetwork(format!(
                    "\"{}\" is not a prefix length; write a network as 10.0.0.0/8 or fd00::/8",
                    prefix.escape_debug()
                ))
            })?,
        };
        Self::new(address, prefix)
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// A network given to [`SsrfPolicy::allow_network`] could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid network: {0}")]
pub struct InvalidNetwork(String);

fn mask_u32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask_u128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

/// The kinds of address range the guard refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockedRange {
    /// `0.0.0.0` or `::`: connecting to it reaches this host on most systems.
    Unspecified,
    /// `0.0.0.0/8`, "this network".
    ThisNetwork,
    /// `127.0.0.0/8` and `::1`.
    Loopback,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// `100.64.0.0/10`, shared address space behind carrier-grade NAT.
    SharedAddressSpace,
    /// `169.254.0.0/16` (cloud metadata lives here) and `fe80::/10`.
    LinkLocal,
    /// `192.0.0.0/24`, IETF protocol assignments.
    ProtocolAssignments,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18.0.0/15` and `2001:2::/48`.
    Benchmarking,
    /// `224.0.0.0/4` and `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// Reserved for future use or deprecated: `240.0.0.0/4`, `192.88.99.0/24`, and
    /// IPv6 outside the global unicast range `2000::/3`.
    Reserved,
    /// `::/96` minus `::` and `::1`: IPv4-compatible IPv6, deprecated since 2006.
    Ipv4Compatible,
    /// `fc00::/7`, unique local addresses (AWS metadata sits at `fd00:ec2::254`).
    UniqueLocal,
    /// `fec0::/10`, deprecated site-local addresses.
    SiteLocal,
    /// `64:ff9b:1::/48`, a translation prefix for one network only.
    LocalNat64,
    /// `100::/64`, addresses whose traffic is discarded.
    DiscardOnly,
    /// `2001:10::/28` and `2001:20::/28`, ORCHID identifiers that are not routable.
    Orchid,
}

impl fmt::Display for BlockedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unspecified => "unspecified",
            Self::ThisNetwork => "\"this network\"",
            Self::Loopback => "loopback",
            Self::Private => "private-use",
            Self::SharedAddressSpace => "shared address space (carrier-grade NAT)",
            Self::LinkLocal => "link-local",
            Self::ProtocolAssignments => "reserved for IETF protocol assignments",
            Self::Documentation => "reserved for documentation",
            Self::Benchmarking => "reserved for benchmarking",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Reserved => "reserved",
            Self::Ipv4Compatible => "IPv4-compatible IPv6 (deprecated)",
            Self::UniqueLocal => "unique local (private IPv6)",
            Self::SiteLocal => "site-local (deprecated private IPv6)",
            Self::LocalNat64 => "a local-use NAT64 prefix",
            Self::DiscardOnly => "discard-only",
            Self::Orchid => "an ORCHID identifier (not routable)",
        })
    }
}

/// An address the policy refuses, and why.
///
/// Its `Display` names the address, the range and what to do, for example
/// `169.254.169.254 is link-local (169.254.0.0/16, where cloud metadata services
/// listen); deliveries go to public addresses only`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    ip: IpAddr,
    embedded: Option<Ipv4Addr>,
    range: BlockedRange,
    entry: &'static Entry,
}

impl Blocked {
    /// The refused address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The IPv4 address embedded in [`ip`](Self::ip) that was refused, when an IPv6
    /// form carries one (IPv4-mapped, NAT64, 6to4, Teredo).
    pub fn embedded_ipv4(&self) -> Option<Ipv4Addr> {
        self.embedded
    }

    /// The range the address falls in.
    pub fn range(&self) -> BlockedRange {
        self.range
    }

    /// The network that matched, in CIDR form, such as `169.254.0.0/16`.
    pub fn network(&self) -> &'static str {
        self.entry.cidr
    }

    /// Whether the address is loopback, which [`SsrfPolicy::allow_loopback`] allows.
    pub fn is_loopback(&self) -> bool {
        self.range == BlockedRange::Loopback
    }
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            Some(v4) => write!(f, "{} embeds the IPv4 address {v4}, which is ", self.ip)?,
            None => write!(f, "{} is ", self.ip)?,
        }
        write!(f, "{} ({}", self.range, self.entry.cidr)?;
        if let Some(note) = self.entry.note {
            write!(f, ", {note}")?;
        }
        f.write_str(")")?;
        match self.range {
            BlockedRange::Loopback => f.write_str(
                "; loopback is refused unless the policy allows it \
                 (SsrfPolicy::allow_loopback(true), for tests and local demos)",
            ),
            BlockedRange::Unspecified => {
                f.write_str("; connecting to it reaches this host, so it is refused even where loopback is allowed")
            }
            _ => f.write_str(
                "; deliveries go to public addresses only \
                 (trust a private receiver's network with SsrfPolicy::allow_network)",
            ),
        }
    }
}

impl std::error::Error for Blocked {}

/// One row of the tables below.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    cidr: &'static str,
    bits: u128,
    prefix: u8,
    range: BlockedRange,
    note: Option<&'static str>,
}

const fn v4(
    a: u8,
    b: u8,
    c: u8,
    d: u8,
    prefix: u8,
    cidr: &'static str,
    range: BlockedRange,
) -> Entry {
    Entry {
        cidr,
        bits: u32::from_be_bytes([a, b, c, d]) as u128,
        prefix,
        range,
        note: None,
    }
}

const fn v6(bits: u128, prefix: u8, cidr: &'static str, range: BlockedRange) -> Entry {
    Entry {
        cidr,
        bits,
        prefix,
        range,
        note: None,
    }
}

const fn noted(mut entry: Entry, note: &'static str) -> Entry {
    entry.note = Some(note);
    entry
}

/// IPv4 special-purpose ranges (IANA registry) that are not globally reachable,
/// most specific first: the first match names the range.
static IPV4_BLOCKED: [Entry; 17] = [
    v4(0, 0, 0, 0, 32, "0.0.0.0/32", R::Unspecified),
    v4(0, 0, 0, 0, 8, "0.0.0.0/8", R::ThisNetwork),
    v4(127, 0, 0, 0, 8, "127.0.0.0/8", R::Loopback),
    v4(10, 0, 0, 0, 8, "10.0.0.0/8", R::Private),
    noted(
        v4(100, 64, 0, 0, 10, "100.64.0.0/10", R::SharedAddressSpace),
        "some clouds put metadata services here",
    ),
    noted(
        v4(169, 254, 0, 0, 16, "169.254.0.0/16", R::LinkLocal),
        "where cloud metadata services listen",
    ),
    v4(172, 16, 0, 0, 12, "172.16.0.0/12", R::Private),
    v4(192, 0, 0, 0, 24, "192.0.0.0/24", R::ProtocolAssignments),
    v4(192, 0, 2, 0, 24, "192.0.2.0/24", R::Documentation),
    noted(
        v4(192, 88, 99, 0, 24, "192.88.99.0/24", R::Reserved),
        "deprecated 6to4 relay anycast",
    ),
    v4(192, 168, 0, 0, 16, "192.168.0.0/16", R::Private),
    v4(198, 18, 0, 0, 15, "198.18.0.0/15", R::Benchmarking),
    v4(198, 51, 100, 0, 24, "198.51.100.0/24", R::Documentation),
    v4(203, 0, 113, 0, 24, "203.0.113.0/24", R::Documentation),
    v4(224, 0, 0, 0, 4, "224.0.0.0/4", R::Multicast),
    v4(255, 255, 255, 255, 32, "255.255.255.255/32", R::Broadcast),
    v4(240, 0, 0, 0, 4, "240.0.0.0/4", R::Reserved),
];

/// IPv6 ranges refused outright, most specific first. Forms that embed an IPv4
/// address (mapped, NAT64, 6to4, Teredo) are handled before this table.
static IPV6_BLOCKED: [Entry; 14] = [
    v6(0, 128, "::/128", R::Unspecified),
    v6(1, 128, "::1/128", R::Loopback),
    v6(0, 96, "::/96", R::Ipv4Compatible),
    v6(0x0064_ff9b_0001 << 80, 48, "64:ff9b:1::/48", R::LocalNat64),
    v6(0x0100 << 112, 64, "100::/64", R::DiscardOnly),
    v6(0x2001_0002 << 96, 48, "2001:2::/48", R::Benchmarking),
    v6(0x2001_0010 << 96, 28, "2001:10::/28", R::Orchid),
    v6(0x2001_0020 << 96, 28, "2001:20::/28", R::Orchid),
    v6(0x2001_0db8 << 96, 32, "2001:db8::/32", R::Documentation),
    v6(0x3fff << 112, 20, "3fff::/20", R::Documentation),
    noted(
        v6(0xfc00 << 112, 7, "fc00::/7", R::UniqueLocal),
        "AWS metadata listens on fd00:ec2::254",
    ),
    v6(0xfe80 << 112, 10, "fe80::/10", R::LinkLocal),
    v6(0xfec0 << 112, 10, "fec0::/10", R::SiteLocal),
    v6(0xff00 << 112, 8, "ff00::/8", R::Multicast),
];

/// Everything outside global unicast `2000::/3` that the table above does not name.
static IPV6_NOT_GLOBAL: Entry = noted(
    v6(0x2000 << 112, 3, "outside 2000::/3", R::Reserved),
    "not global unicast",
);

const IPV4_MAPPED: u128 = 0xffff << 32; // ::ffff:0:0/96
const NAT64: u128 = 0x0064_ff9b << 96; // 64:ff9b::/96
const SIX_TO_FOUR: u128 = 0x2002 << 112; // 2002::/16
const TEREDO: u128 = 0x2001_0000 << 96; // 2001::/32
const GLOBAL_UNICAST: u128 = 0x2000 << 112; // 2000::/3

fn in_prefix(bits: u128, network: u128, prefix: u8) -> bool {
    let mask = mask_u128(prefix);
    bits & mask == network & mask
}

/// Whether `bits`, an address `width` bits wide (32 or 128), lies in `entry`.
/// Both are moved to the top of a `u128`, where the entry's prefix counts from.
fn matches(entry: &Entry, bits: u128, width: u8) -> bool {
    let shift = 128 - u32::from(width);
    let to_top = |value: u128| value.checked_shl(shift).unwrap_or(0);
    in_prefix(to_top(bits), to_top(entry.bits), entry.prefix)
}

/// Whether a delivery may connect to `ip` under `policy`.
///
/// A pure function: no lookups, no I/O. IPv6 forms that carry an IPv4 address
/// (`::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`, Teredo
/// `2001:0::`) are judged by the IPv4 address inside, so `::ffff:127.0.0.1` is as
/// loopback as `127.0.0.1`.
pub fn check_ip(ip: IpAddr, policy: &SsrfPolicy) -> Result<(), Blocked> {
    if policy.trusts(ip) {
        return Ok(());
    }
    match ip {
        IpAddr::V4(v4) => check_v4(v4, policy, policy.allow_loopback).map_err(|entry| Blocked {
            ip,
            embedded: None,
            range: entry.range,
            entry,
        }),
        IpAddr::V6(v6) => check_v6(v6, policy),
    }
}

/// Checks an IPv4 address; `allow_loopback` is off for addresses embedded in
/// tunnel forms, whose loopback would be some other host's.
fn check_v4(ip: Ipv4Addr, policy: &SsrfPolicy, allow_loopback: bool) -> Result<(), &'static Entry> {
    if policy.trusts(IpAddr::V4(ip)) {
        return Ok(());
    }
    let bits = u128::from(u32::from(ip));
    match IPV4_BLOCKED.iter().find(|entry| matches(entry, bits, 32)) {
        Some(entry) if entry.range == BlockedRange::Loopback && allow_loopback => Ok(()),
        Some(entry) => Err(entry),
        None => Ok(()),
    }
}

fn check_v6(ip: Ipv6Addr, policy: &SsrfPolicy) -> Result<(), Blocked> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    let embedded = |v4: Ipv4Addr, allow_loopback: bool| {
        check_v4(v4, policy, allow_loopback).map_err(|entry| Blocked {
            ip: IpAddr::V6(ip),
            embedded: Some(v4),
            range: entry.range,
            entry,
        })
    };

    if in_prefix(bits, IPV4_MAPPED, 96) {
        // The socket layer connects to the IPv4 address itself: same rules, loopback included.
        return embedded(low32, policy.allow_loopback);
    }
    if in_prefix(bits, NAT64, 96) {
        return embedded(low32, false);
    }
    if in_prefix(bits, SIX_TO_FOUR, 16) {
        return embedded(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32), false);
    }
    if in_prefix(bits, TEREDO, 32) {
        // The server sits in bits 32..64; the client, inverted, in the last 32 bits.
        embedded(Ipv4Addr::from(((bits >> 64) & 0xffff_ffff) as u32), false)?;
        return embedded(Ipv4Addr::from(!(bits as u32)), false);
    }

    let blocked = |entry: &'static Entry| Blocked {
        ip: IpAddr::V6(ip),
        embedded: None,
        range: entry.range,
        entry,
    };
    match IPV6_BLOCKED.iter().find(|entry| matches(entry, bits, 128)) {
        Some(entry) if entry.range == BlockedRange::Loopback && policy.allow_loopback => Ok(()),
        Some(entry) => Err(blocked(entry)),
        None if !in_prefix(bits, GLOBAL_UNICAST, 3) => Err(blocked(&IPV6_NOT_GLOBAL)),
        None => Ok(()),
    }
}
