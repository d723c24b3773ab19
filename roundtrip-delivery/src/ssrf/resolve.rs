//! Resolving host names, and the resolver that reqwest connects through.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{SsrfError, SsrfPolicy, check_ip};

/// Turns a host name into IP addresses. The extension point for tests, which
/// inject names with [`StaticResolver`] instead of asking DNS.
pub trait Resolve: Send + Sync + 'static {
    /// All addresses of `host`, a name without brackets or port.
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>>;
}

/// Asks the operating system (`getaddrinfo`, through tokio).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let mut addresses: Vec<IpAddr> = Vec::new();
            for address in tokio::net::lookup_host((host, 0)).await? {
                if !addresses.contains(&address.ip()) {
                    addresses.push(address.ip());
                }
            }
            Ok(addresses)
        })
    }
}

/// A fixed table of names, for tests and demos. Unknown names fail as DNS would.
///
/// ```
/// use roundtrip_delivery::ssrf::StaticResolver;
///
/// let resolver = StaticResolver::new()
///     .with_host("evil.test", ["10.0.0.5".parse()?])
///     .with_host("receiver.test", ["127.0.0.1".parse()?]);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    hosts: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `host` (case-insensitive) resolve to `addresses`, in that order.
    #[must_use]
    pub fn with_host(mut self, host: &str, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        self.hosts
            .insert(host.to_ascii_lowercase(), addresses.into_iter().collect());
        self
    }
}

impl Resolve for StaticResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        let found = self.hosts.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            found.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "no such host in the StaticResolver table",
                )
            })
        })
    }
}

/// A resolver that hands out only addresses the [`SsrfPolicy`] allows.
///
/// It implements [`reqwest::dns::Resolve`]: set it on the client and reqwest
/// connects to exactly the addresses that were checked, so a name that answers
/// with a public address to the check and a private one to the connection (a DNS
/// rebind) gets nowhere; there is no second lookup.
///
/// **When any address of a name is refused, the whole name is refused**, not
/// filtered down to its public addresses. Filtering would also be safe (only
/// checked addresses are connected to), but refusing is deterministic (the
/// outcome does not depend on which address the connection tries first) and says
/// plainly that the name points inside a network, which is an attack or a
/// misconfiguration the user should hear about rather than a delivery that works
/// on some attempts only.
///
/// Three things stay the sender's job, and [`configure_client`](Self::configure_client)
/// does them:
///
/// - reqwest does not call a resolver for URLs whose host is a literal IP address,
///   so the sender calls [`check_url`](super::check_url) before every attempt;
/// - redirects must not be followed, or a `Location: http://169.254.169.254/`
///   would skip that check;
/// - proxies must be off: through a proxy, the proxy resolves the target, not us.
#[derive(Clone)]
pub struct GuardedResolver {
    inner: Arc<dyn Resolve>,
    policy: Arc<SsrfPolicy>,
}

impl GuardedResolver {
    /// Guards `inner` with `policy`.
    pub fn new(inner: Arc<dyn Resolve>, policy: SsrfPolicy) -> Self {
        Self {
            inner,
            policy: Arc::new(policy),
        }
    }

    /// Guards the operating system's resolver with `policy`.
    pub fn system(policy: SsrfPolicy) -> Self {
        Self::new(Arc::new(SystemResolver), policy)
    }

    /// The policy addresses are checked against.
    pub fn policy(&self) -> &SsrfPolicy {
        &self.policy
    }

    /// The addresses of `host`, all of them allowed by the policy, or the error
    /// naming the first refused one. A literal address is checked without a lookup.
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, SsrfError> {
        let bare = host
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            check_ip(ip, &self.policy).map_err(|blocked| SsrfError::Blocked {
                host: ip.to_string(),
                blocked,
            })?;
            return Ok(vec![ip]);
        }
        lookup_checked(&*self.inner, &self.policy, host).await
    }

    /// Sets this resolver on `builder`, and turns off what would go around it:
    /// redirects (a redirect to a literal address would skip the check) and
    /// proxies (a proxy resolves the target itself).
    ///
    /// This names reqwest's builder on purpose: an application that sends requests of its
    /// own with reqwest guards them the way the workers guard theirs, and the guard only
    /// works on the client itself.
    pub fn configure_client(self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        builder
            .dns_resolver(self)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
    }
}

/// Resolves the name `host` and checks every address; any refused address
/// refuses the name.
pub(super) async fn lookup_checked(
    resolver: &dyn Resolve,
    policy: &SsrfPolicy,
    host: &str,
) -> Result<Vec<IpAddr>, SsrfError> {
    let addresses = resolver
        .resolve(host)
        .await
        .map_err(|source| SsrfError::Resolve {
            host: host.to_owned(),
            source: Arc::new(source),
        })?;
    if addresses.is_empty() {
        return Err(SsrfError::NoAddresses {
            host: host.to_owned(),
        });
    }
    for &ip in &addresses {
        check_ip(ip, policy).map_err(|blocked| SsrfError::Blocked {
            host: host.to_owned(),
            blocked,
        })?;
    }
    Ok(addresses)
}

impl fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let addresses = guard.lookup(name.as_str()).await?;
            // Port 0: reqwest puts in the URL's port.
            let addresses: reqwest::dns::Addrs =
                Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addresses)
        })
    }
}
