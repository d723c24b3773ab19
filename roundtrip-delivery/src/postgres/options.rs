//! How to connect a [`PgOutbox`](super::PgOutbox): the database, the schema, the pools,
//! wake-ups, group commit, and the store's limits.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use super::connect::{configure, parse_url, redact_url};
use crate::store::error::{Repr, Subject};
use crate::store::options::{Limits, limit_setters};

/// The builder methods of a PostgreSQL store's pool (fields `acquire_timeout` and
/// `application_name`), with the store's default `application_name`.
macro_rules! pool_setters {
    ($application_name:literal) => {
        /// How long a call waits for a pooled connection before failing with
        /// `is_unavailable` (default 5 s). This bounds how long a call (a `send()`, say) can
        /// hang when the database is unreachable.
        pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
            self.acquire_timeout = timeout;
            self
        }

        #[doc = concat!(
                                    "The `application_name` of the store's connections (default `",
                                    $application_name,
                                    "`), shown in `pg_stat_activity`."
                                )]
        pub fn application_name(mut self, name: impl Into<String>) -> Self {
            self.application_name = name.into();
            self
        }
    };
}

pub(crate) use pool_setters;

/// The schema used when none is given.
pub const DEFAULT_SCHEMA: &str = "roundtrip";

/// How to connect a [`PgOutbox`](super::PgOutbox).
///
/// ```
/// use roundtrip_delivery::postgres::PgOptions;
/// let options = PgOptions::new("postgres://app@127.0.0.1/app")
///     .schema("outbox")
///     .max_connections(16);
/// assert_eq!(options.get_schema(), "outbox");
/// ```
#[derive(Clone)]
pub struct PgOptions {
    pub(crate) url: String,
    pub(crate) connect: Option<PgConnectOptions>,
    pub(crate) schema: String,
    pub(crate) channel: Option<String>,
    pub(crate) listen: bool,
    pub(crate) listen_url: Option<String>,
    pub(crate) max_connections: u32,
    pub(crate) acquire_timeout: Duration,
    pub(crate) application_name: String,
    pub(crate) group_commit: bool,
    pub(crate) synchronous_work: bool,
    pub(crate) commit_lanes: usize,
    pub(crate) max_batch: usize,
    pub(crate) must_exist: bool,
    pub(crate) limits: Limits,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &redact_url(&self.url))
            .field("schema", &self.schema)
            .field("channel", &self.get_channel())
            .field("listen", &self.listen)
            .field("max_connections", &self.max_connections)
            .field("group_commit", &self.group_commit)
            .finish_non_exhaustive()
    }
}

impl PgOptions {
    /// Options for the database at `url` (`postgres://user:password@host:port/database`),
    /// with the defaults: schema `roundtrip`, 10 connections, LISTEN on, group commit on.
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            connect: None,
            schema: DEFAULT_SCHEMA.to_owned(),
            channel: None,
            listen: true,
            listen_url: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            application_name: "roundtrip-outbox".to_owned(),
            group_commit: true,
            synchronous_work: false,
            commit_lanes: 2,
            max_batch: 1024,
            must_exist: false,
            limits: Limits::default(),
        }
    }

    /// Options from sqlx connect options built in code (TLS settings, sockets); the URL is
    /// then only used in messages.
    ///
    /// This names a sqlx type on purpose: TLS roots and client certificates, Unix sockets
    /// and other driver settings a URL cannot carry are set there, and roundtrip does not
    /// repeat them.
    pub fn from_connect_options(connect: PgConnectOptions) -> Self {
        let shown = format!(
            "postgres://{}:{}/{}",
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or("")
        );
        let mut options = Self::new(shown);
        options.connect = Some(connect);
        options
    }

    /// The schema that holds the outbox tables (default `roundtrip`): letters, digits and
    /// `_`, not starting with a digit, at most 63 bytes. Created if missing.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Connect only to an outbox that already exists (default: off, the schema and its
    /// tables are created). For tools that inspect a running application's outbox, such
    /// as the app CLI: a mistyped schema or database is then an error that says so, not a
    /// new, empty outbox that lists nothing. Migrations still run on an outbox that exists.
    pub fn must_exist(mut self, on: bool) -> Self {
        self.must_exist = on;
        self
    }

    /// The schema.
    pub fn get_schema(&self) -> &str {
        &self.schema
    }

    /// The LISTEN/NOTIFY channel (default `<schema>_outbox`). Every process sharing the
    /// outbox must use the same one.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }

    /// The channel.
    pub fn get_channel(&self) -> String {
        self.channel
            .clone()
            .unwrap_or_else(|| format!("{}_outbox", self.schema))
    }

    /// Whether to LISTEN for wake-ups (default true). Without it, workers find messages
    /// from other processes at their next poll.
    pub fn listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }

    /// A separate URL for the listening connection, for deployments where the main URL goes
    /// through a transaction-pooling proxy (PgBouncer in transaction mode), which cannot
    /// carry LISTEN: point this one at PostgreSQL itself.
    pub fn listen_url(mut self, url: impl Into<String>) -> Self {
        self.listen_url = Some(url.into());
        self
    }

    /// The most connections each of the store's two pools opens (default 10): one for
    /// enqueues and reads, one for the workers' claims and completions. The listener uses one
    /// more.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    pool_setters!("roundtrip-outbox");

    /// Whether concurrent enqueues share transactions (default true). Without it, each
    /// call is its own transaction on the pool.
    pub fn group_commit(mut self, on: bool) -> Self {
        self.group_commit = on;
        self
    }

    /// Whether claims, lease renewals and attempt records wait for the WAL flush like
    /// enqueues do (default false: they commit with `synchronous_commit = off`, which roughly
    /// doubles the claim-and-complete throughput; a database crash can then lose the last
    /// fraction of a second of them, and those messages are sent again).
    pub fn synchronous_work(mut self, on: bool) -> Self {
        self.synchronous_work = on;
        self
    }

    /// How many group-commit transactions may run at once (default 2). PostgreSQL
    /// serializes the commits of transactions that sent `NOTIFY`, so more lanes mostly make
    /// smaller batches: in `bench/outbox`, 64 concurrent callers got about 6,900 enqueues/s
    /// with 1 or 2 lanes, 4,800 with 4 and 2,200 with 8.
    pub fn commit_lanes(mut self, lanes: usize) -> Self {
        self.commit_lanes = lanes.max(1);
        self
    }

    /// How many messages at most share one group-commit transaction (default 1024).
    pub fn max_batch(mut self, messages: usize) -> Self {
        self.max_batch = messages.max(1);
        self
    }

    limit_setters!();

    /// The connect options of `url`: those given in code when it is the store's own URL.
    pub(crate) fn connect_options(&self, url: &str) -> Result<PgConnectOptions, Repr> {
        match (&self.connect, url == self.url) {
            (Some(connect), true) => Ok(configure(connect.clone(), &self.application_name)),
            _ => parse_url(url, &self.application_name, Subject::Outbox),
        }
    }
}
