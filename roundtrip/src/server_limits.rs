//! What one served app allows its clients: how long a request head may take, how long a
//! keep-alive connection may sit idle, and how many connections may be open at once.

use std::time::Duration;

/// Limits that keep a served app reachable when clients are slow, idle or hostile.
///
/// - **Header timeout** (10 s by default): a client must send a whole request head within
///   this time of the server starting to wait for it, on a new connection or between two
///   requests on a kept-alive one; otherwise the connection is closed. This is what stops a
///   slow-loris client (a request head sent a byte at a time, or never finished).
/// - **Idle timeout** (5 s by default, as uvicorn's `timeout_keep_alive`): a kept-alive
///   connection with no request in progress and no traffic for this long is closed. As
///   the header timeout also runs while the server waits for the next request, a
///   kept-alive connection waits at most the shorter of the two.
/// - **Connection cap** (by default three quarters of the process's open-file limit, at
///   most 10,000; 768 where the limit cannot be read): past it, new connections wait in
///   the listen backlog until one closes, instead of the process running out of file
///   descriptors and failing to accept anyone. A quarter of the descriptors stays free for
///   the database, delivery attempts and files.
///
/// ```
/// use std::time::Duration;
/// use roundtrip::{App, ServerLimits};
///
/// let app = App::new().server_limits(
///     ServerLimits::default()
///         .header_timeout(Duration::from_secs(5))
///         .max_connections(2_000),
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// The default [`ServerLimits::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The default [`ServerLimits::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest default connection cap.
const MAX_DEFAULT_CONNECTIONS: usize = 10_000;
/// The cap when the open-file limit cannot be read: three quarters of the common 1,024.
const FALLBACK_CONNECTIONS: usize = 768;

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: default_max_connections(),
        }
    }
}

impl ServerLimits {
    /// How long a client may take to send a request head (at least 1 ms).
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long a kept-alive connection may sit idle (at least 1 ms).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many connections may be open at once (at least 1).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// The header timeout.
    pub fn get_header_timeout(&self) -> Duration {
        self.header_timeout
    }

    /// The idle timeout.
    pub fn get_idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The connection cap.
    pub fn get_max_connections(&self) -> usize {
        self.max_connections
    }
}

/// Three quarters of the soft open-file limit, at most 10,000.
fn default_max_connections() -> usize {
    match open_file_limit() {
        Some(limit) => (limit / 4 * 3).clamp(1, MAX_DEFAULT_CONNECTIONS),
        None => FALLBACK_CONNECTIONS,
    }
}

/// The process's soft open-file limit, read from `/proc/self/limits` (Linux). Elsewhere,
/// or when it is unlimited, `None`. (Reading the file keeps the crate free of `unsafe`
/// `getrlimit` calls.)
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&limits)
}

fn parse_open_file_limit(limits: &str) -> Option<usize> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_open_file_limit_is_read() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_file_limit(limits), Some(1024));
        assert_eq!(
            parse_open_file_limit("Max open files  unlimited  unlimited files"),
            None
        );
        assert_eq!(parse_open_file_limit(""), None);
    }

    #[test]
    fn the_default_cap_stays_below_the_file_limit() {
        let cap = ServerLimits::default().get_max_connections();
        if let Some(limit) = open_file_limit() {
            assert!(cap < limit, "cap {cap}, file limit {limit}");
        }
        assert!((1..=MAX_DEFAULT_CONNECTIONS).contains(&cap));
    }
}
