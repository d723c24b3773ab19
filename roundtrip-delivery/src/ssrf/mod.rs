//! The SSRF guard: which addresses deliveries may connect to.
//!
//! A callback URL often comes from the request that triggers it
//! (`{$request.query.callback_url}`), so whoever calls the API chooses where the
//! server sends requests. Without a guard, `http://169.254.169.254/latest/meta-data`
//! would hand cloud credentials to the caller, and `http://10.0.0.5/admin` would
//! reach services that trust the internal network. The guard is on by default.
//!
//! What it does:
//!
//! - [`check_url`] refuses schemes other than `http` and `https`, URLs without a
//!   host, URLs with credentials (unless allowed), and hosts written as an address
//!   that [`check_ip`] refuses. The `url` crate has already turned spellings such as
//!   `http://2130706433/` and `http://0x7f.1/` into `127.0.0.1`.
//! - [`check_ip`] is a pure function over one address. It refuses loopback,
//!   private, link-local (cloud metadata), carrier-grade NAT, multicast,
//!   documentation, benchmarking, reserved, unspecified and broadcast ranges, in
//!   IPv4 and IPv6, and judges IPv6 forms that carry an IPv4 address (mapped,
//!   NAT64, 6to4, Teredo) by that address. Loopback passes only when the
//!   [`SsrfPolicy`] allows it, for tests and local demos.
//! - [`GuardedResolver`] resolves names, checks **every** address, and is the
//!   resolver reqwest connects through, so the connection goes to an address that
//!   was checked and a DNS rebind between check and connect is impossible.
//!
//! The sender calls [`check_url`] before each attempt (reqwest does not ask the
//! resolver about literal addresses) and builds its client with
//! [`GuardedResolver::configure_client`]. [`resolve_checked`] does the whole check
//! up front, to give the user a clear error at `send()` time.
//!
//! Messages name hosts and addresses but never paths or queries, which can hold
//! tokens.

mod error;
mod policy;
mod resolve;

use std::net::{IpAddr, SocketAddr};

use url::{Host, Url};

pub use error::SsrfError;
pub use policy::{Blocked, BlockedRange, InvalidNetwork, IpNetwork, SsrfPolicy, check_ip};
pub use resolve::{GuardedResolver, Resolve, StaticResolver, SystemResolver};

/// Checks everything about `url` that needs no lookup: the scheme (`http` or
/// `https`), the presence of a host, credentials, and a literal address host.
///
/// A host name passes here; its addresses are checked when it is resolved, by
/// [`GuardedResolver`] or [`resolve_checked`].
pub fn check_url(url: &Url, policy: &SsrfPolicy) -> Result<(), SsrfError> {
    match url.scheme() {
        "http" | "https" => {}
        scheme => {
            return Err(SsrfError::UnsupportedScheme {
                scheme: scheme.to_owned(),
            });
        }
    }
    if (!url.username().is_empty() || url.password().is_some())
        && !policy.allows_credentials_in_url()
    {
        return Err(SsrfError::CredentialsInUrl);
    }
    match url.host() {
        None => Err(SsrfError::MissingHost),
        Some(Host::Domain("")) => Err(SsrfError::MissingHost),
        Some(Host::Domain(_)) => Ok(()),
        Some(Host::Ipv4(ip)) => check_literal(IpAddr::V4(ip), policy),
        Some(Host::Ipv6(ip)) => check_literal(IpAddr::V6(ip), policy),
    }
}

fn check_literal(ip: IpAddr, policy: &SsrfPolicy) -> Result<(), SsrfError> {
    check_ip(ip, policy).map_err(|blocked| SsrfError::Blocked {
        host: ip.to_string(),
        blocked,
    })
}

/// Checks `url` and resolves its host through `resolver`, returning the socket
/// addresses a delivery may connect to, or the reason it may not.
///
/// If any address of the name is refused, the whole name is (see
/// [`GuardedResolver`] for why).
pub async fn resolve_checked(
    url: &Url,
    resolver: &dyn Resolve,
    policy: &SsrfPolicy,
) -> Result<Vec<SocketAddr>, SsrfError> {
    check_url(url, policy)?;
    // http and https always have a known default port.
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses = match url.host() {
        Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(Host::Domain(host)) => resolve::lookup_checked(resolver, policy, host).await?,
        None => return Err(SsrfError::MissingHost),
    };
    Ok(addresses
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}
