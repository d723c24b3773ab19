//! Why a delivery target was refused or could not be resolved.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::Arc;

use super::Blocked;

/// A delivery URL the guard refused, or a host it could not resolve.
///
/// Messages name the host but never the path or query, which can carry tokens.
/// [`is_permanent`](Self::is_permanent) tells refusals (which no retry changes) from
/// lookup failures (which a later attempt may get past).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SsrfError {
    /// The scheme is not `http` or `https`.
    UnsupportedScheme {
        /// The scheme of the URL, such as `file` or `gopher`.
        scheme: String,
    },
    /// The URL has no host.
    MissingHost,
    /// The URL carries a user name or password, and the policy refuses those.
    CredentialsInUrl,
    /// The host is, or resolves to, an address the policy refuses.
    Blocked {
        /// The host as written in the URL (a name or an address).
        host: String,
        /// The refused address and its range.
        blocked: Blocked,
    },
    /// The host name could not be resolved.
    Resolve {
        /// The host name.
        host: String,
        /// What the resolver reported.
        source: Arc<io::Error>,
    },
    /// The host name resolved to no addresses at all.
    NoAddresses {
        /// The host name.
        host: String,
    },
}

impl SsrfError {
    /// Whether the guard refused the target: a scheme, credentials, a missing host
    /// or a blocked address. Retrying does not help; fix the URL or the policy.
    /// Lookup failures are not permanent.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Resolve { .. } | Self::NoAddresses { .. })
    }

    /// The refused address, when that is the reason.
    pub fn blocked(&self) -> Option<&Blocked> {
        match self {
            Self::Blocked { blocked, .. } => Some(blocked),
            _ => None,
        }
    }

    /// Whether the host could not be resolved (no answer, or no addresses).
    pub fn is_resolve(&self) -> bool {
        !self.is_permanent()
    }

    /// Finds an `SsrfError` in `error` or its chain of sources.
    ///
    /// A request refused by [`GuardedResolver`](super::GuardedResolver) fails
    /// inside reqwest, which wraps the guard's error; this digs it out again.
    pub fn find_in<'e>(error: &'e (dyn StdError + 'static)) -> Option<&'e SsrfError> {
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(found) = error.downcast_ref::<SsrfError>() {
                return Some(found);
            }
            current = error.source();
        }
        None
    }
}

impl fmt::Display for SsrfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedScheme { scheme } => write!(
                f,
                "refusing to deliver to a `{}:` URL: only http and https are allowed",
                scheme.escape_debug()
            ),
            Self::MissingHost => f.write_str("refusing to deliver to a URL without a host"),
            Self::CredentialsInUrl => f.write_str(
                "refusing to deliver to a URL with a user name or password in it: they would be \
                 stored and logged with the URL (allow them with \
                 SsrfPolicy::allow_credentials_in_url(true))",
            ),
            Self::Blocked { host, blocked } if *host == blocked.ip().to_string() => {
                write!(f, "refusing to deliver: {blocked}")
            }
            Self::Blocked { host, blocked } => write!(
                f,
                "refusing to deliver to `{}`, which resolves to a refused address: {blocked}",
                host.escape_debug()
            ),
            Self::Resolve { host, source } => write!(
                f,
                "could not resolve `{}`: {source}; check the host name in the URL",
                host.escape_debug()
            ),
            Self::NoAddresses { host } => write!(
                f,
                "`{}` resolved to no addresses; check the host name in the URL",
                host.escape_debug()
            ),
        }
    }
}

impl StdError for SsrfError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Blocked { blocked, .. } => Some(blocked),
            Self::Resolve { source, .. } => Some(&**source),
            _ => None,
        }
    }
}
