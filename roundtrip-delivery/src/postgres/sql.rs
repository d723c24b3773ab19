//! The SQL text of the PostgreSQL store, qualified with the store's schema.
//!
//! Every statement names its tables with the schema (`"roundtrip".messages`), so that it
//! works on any connection: the store's own pool, and the application's connection that
//! [`PgOutbox::enqueue_in`](super::PgOutbox::enqueue_in) writes on, whatever its
//! `search_path` is. The templates below write `_rt_.` where the quoted schema goes; the
//! text is built once when the store opens.

use std::sync::Arc;

use super::connect::quote_ident;

/// Converts a `timestamptz` column to microseconds since the Unix epoch (exact: `extract`
/// answers `numeric` since PostgreSQL 14).
macro_rules! us {
    ($col:literal) => {
        concat!("(extract(epoch from ", $col, ") * 1000000)::int8")
    };
}

/// Converts microseconds since the Unix epoch (a parameter or column) to a `timestamptz`.
macro_rules! ts {
    ($value:literal) => {
        concat!(
            "(timestamptz 'epoch' + ",
            $value,
            " * interval '1 microsecond')"
        )
    };
}

/// The metadata columns every message read returns, live table first.
macro_rules! live_meta {
    () => {
        concat!(
            "id, kind, name, url, method, ",
            us!("created_at"),
            " AS created_at, status, attempts, ",
            us!("next_attempt_at"),
            " AS next_attempt_at, lease_owner, ",
            us!("lease_expires_at"),
            " AS lease_expires_at, lost_leases, NULL::int8 AS finished_at, last_error, \
             idempotency_key, endpoint_id, signing_key, ordering_key, metadata::text AS metadata"
        )
    };
}

macro_rules! history_meta {
    () => {
        concat!(
            "id, kind, name, url, method, ",
            us!("created_at"),
            " AS created_at, status, attempts, NULL::int8 AS next_attempt_at, \
             NULL::text AS lease_owner, NULL::int8 AS lease_expires_at, lost_leases, ",
            us!("finished_at"),
            " AS finished_at, last_error, idempotency_key, endpoint_id, signing_key, \
             ordering_key, metadata::text AS metadata"
        )
    };
}

/// The columns of `message_history`, in the order the `INSERT`s below give them.
macro_rules! history_columns {
    () => {
        "id, kind, name, url, method, headers, body, created_at, status, attempts, lost_leases, \
         finished_at, last_error, idempotency_key, endpoint_id, signing_key, ordering_key, metadata"
    };
}

/// Makes a history insert replace a stale row of the same id (a message finished, retried,
/// and finished again), as the SQLite store's `INSERT OR REPLACE` does.
macro_rules! history_upsert {
    () => {
        " ON CONFLICT (id) DO UPDATE SET (kind, name, url, method, headers, body, created_at, \
         status, attempts, lost_leases, finished_at, last_error, idempotency_key, endpoint_id, \
         signing_key, ordering_key, metadata) = (EXCLUDED.kind, EXCLUDED.name, EXCLUDED.url, \
         EXCLUDED.method, EXCLUDED.headers, EXCLUDED.body, EXCLUDED.created_at, EXCLUDED.status, \
         EXCLUDED.attempts, EXCLUDED.lost_leases, EXCLUDED.finished_at, EXCLUDED.last_error, \
         EXCLUDED.idempotency_key, EXCLUDED.endpoint_id, EXCLUDED.signing_key, \
         EXCLUDED.ordering_key, EXCLUDED.metadata)"
    };
}

/// The live columns a message gets back when it leaves history (`gone` holds the rows).
macro_rules! from_history {
    () => {
        "INSERT INTO _rt_.messages (id, kind, name, url, method, headers, body, created_at, \
         status, attempts, next_attempt_at, lost_leases, last_error, idempotency_key, endpoint_id, \
         signing_key, ordering_key, metadata) \
         SELECT id, kind, name, url, method, headers, body, created_at, 'pending', attempts, now(), \
         0, last_error, idempotency_key, endpoint_id, signing_key, ordering_key, metadata FROM gone"
    };
}

pub(crate) const INSERT_KEYS: &str = "INSERT INTO _rt_.idempotency_keys (name, key, message_id, created_at) \
     SELECT u.name, u.key, u.message_id, now() \
     FROM unnest($1::text[], $2::text[], $3::text[]) AS u(name, key, message_id) \
     ON CONFLICT DO NOTHING RETURNING name, key";

pub(crate) const SELECT_KEYS: &str = "SELECT k.name, k.key, k.message_id FROM _rt_.idempotency_keys k \
     JOIN unnest($1::text[], $2::text[]) AS u(name, key) ON k.name = u.name AND k.key = u.key";

/// Inserts messages given as arrays, one element per message. `$13` holds each message's
/// lease owner: a message with one is written leased to it for `$14` microseconds (the
/// in-process fast path), one without is pending.
macro_rules! insert_messages {
    () => {
        "INSERT INTO _rt_.messages (id, kind, name, url, method, headers, body, created_at, \
         status, attempts, next_attempt_at, idempotency_key, endpoint_id, signing_key, \
         ordering_key, metadata, lease_owner, lease_expires_at) \
         SELECT u.id, u.kind, u.name, u.url, u.method, u.headers::json, u.body, now(), \
         CASE WHEN u.owner IS NULL THEN 'pending' ELSE 'leased' END, \
         0, now(), u.ikey, u.endpoint, u.skey, u.okey, u.metadata::jsonb, u.owner, \
         CASE WHEN u.owner IS NULL THEN NULL ELSE now() + $14 * interval '1 microsecond' END \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::bytea[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]) \
         WITH ORDINALITY AS u(id, kind, name, url, method, headers, body, ikey, endpoint, skey, \
         okey, metadata, owner, ord) ORDER BY u.ord \
         ON CONFLICT (id) DO NOTHING RETURNING id, status"
    };
}

pub(crate) const INSERT_MESSAGES: &str = insert_messages!();

/// The same insert, which also sends the wake-up when at least one row went in pending
/// (a leased one is already some worker's); the notification is delivered when the
/// statement's transaction commits.
pub(crate) const INSERT_MESSAGES_NOTIFY: &str = concat!(
    "WITH ins AS (",
    insert_messages!(),
    ") SELECT id, status, (SELECT pg_notify($15, '')::text \
     WHERE EXISTS (SELECT 1 FROM ins WHERE status = 'pending')) AS woke FROM ins"
);

pub(crate) const NOTIFY: &str = "SELECT pg_notify($1, '')";

pub(crate) const CLAIM: &str = concat!(
    "WITH due AS MATERIALIZED (SELECT id FROM _rt_.messages \
     WHERE status = 'pending' AND next_attempt_at <= now() \
     ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
     UPDATE _rt_.messages SET status = 'leased', lease_owner = $1, \
     lease_expires_at = now() + $2 * interval '1 microsecond' \
     WHERE id IN (SELECT id FROM due) RETURNING ",
    live_meta!(),
    ", headers::text AS headers, body"
);

/// Records attempts and applies outcomes in one statement. `$1..$5` describe the messages
/// (one element per distinct message), `$6..$19` the attempts (one per completion).
pub(crate) const COMPLETE: &str = concat!(
    "WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], \
     $5::text[]) AS i(id, owner, outcome, next_us, last_error)), \
     att AS (INSERT INTO _rt_.attempts (message_id, number, worker, started_at, duration_us, \
     response_status, response_body, response_truncated, error_kind, error, contract_violation, \
     outcome, next_attempt_at, response_headers) \
     SELECT a.id, a.number, a.owner, ",
    ts!("a.started_us"),
    ", a.duration_us, a.status, a.body, a.truncated, a.error_kind, a.error, a.violation, \
     a.outcome, ",
    ts!("a.next_us"),
    ", a.headers FROM unnest($6::text[], $7::int4[], $8::text[], $9::int8[], $10::int8[], \
     $11::int4[], $12::bytea[], $13::bool[], $14::text[], $15::text[], $16::text[], $17::text[], \
     $18::int8[], $19::text[]) \
     WITH ORDINALITY AS a(id, number, owner, started_us, duration_us, status, body, truncated, \
     error_kind, error, violation, outcome, next_us, headers, ord) ORDER BY a.ord), \
     retried AS (UPDATE _rt_.messages m SET status = 'pending', attempts = m.attempts + 1, \
     next_attempt_at = ",
    ts!("i.next_us"),
    ", lease_owner = NULL, lease_expires_at = NULL, last_error = i.last_error \
     FROM input i WHERE i.outcome = 'retry' AND m.id = i.id AND m.status = 'leased' \
     AND m.lease_owner = i.owner RETURNING m.id), \
     finished AS (DELETE FROM _rt_.messages m USING input i WHERE i.outcome <> 'retry' \
     AND m.id = i.id AND m.status = 'leased' AND m.lease_owner = i.owner \
     RETURNING m.*, i.outcome AS final_status, i.last_error AS final_error), \
     moved AS (INSERT INTO _rt_.message_history (",
    history_columns!(),
    ") SELECT id, kind, name, url, method, headers, body, created_at, final_status, attempts + 1, \
     lost_leases, now(), COALESCE(final_error, last_error), idempotency_key, endpoint_id, \
     signing_key, ordering_key, metadata FROM finished",
    history_upsert!(),
    " RETURNING id) \
     SELECT id FROM retried UNION ALL SELECT id FROM moved"
);

pub(crate) const RENEW: &str = "UPDATE _rt_.messages SET lease_expires_at = now() + $1 * interval '1 microsecond' \
     WHERE status = 'leased' AND lease_owner = $2 AND id = ANY($3::text[]) RETURNING id";

pub(crate) const RELEASE: &str = "UPDATE _rt_.messages SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL \
     WHERE status = 'leased' AND lease_owner = $1";

/// Takes back leases (`$1` the crash cap, `$2` the reason, `$3` the owner or NULL for every
/// expired lease). Messages at the cap go to history as failed; the others are due again.
/// Leases locked by a worker that is completing them right now are skipped: they are not
/// lost.
pub(crate) const RECLAIM: &str = concat!(
    "WITH taken AS MATERIALIZED (SELECT id, lost_leases + 1 >= $1 AS dead FROM _rt_.messages \
     WHERE status = 'leased' AND (CASE WHEN $3::text IS NULL THEN lease_expires_at <= now() \
     ELSE lease_owner = $3::text END) FOR UPDATE SKIP LOCKED), \
     gone AS (DELETE FROM _rt_.messages m USING taken t WHERE m.id = t.id AND t.dead RETURNING m.*), \
     moved AS (INSERT INTO _rt_.message_history (",
    history_columns!(),
    ") SELECT id, kind, name, url, method, headers, body, created_at, 'failed', attempts, \
     lost_leases + 1, now(), $2, idempotency_key, endpoint_id, signing_key, ordering_key, \
     metadata FROM gone",
    history_upsert!(),
    " RETURNING 1), \
     requeued AS (UPDATE _rt_.messages m SET status = 'pending', lease_owner = NULL, \
     lease_expires_at = NULL, lost_leases = m.lost_leases + 1 FROM taken t \
     WHERE m.id = t.id AND NOT t.dead RETURNING 1) \
     SELECT (SELECT count(*) FROM requeued) AS requeued, (SELECT count(*) FROM moved) AS failed"
);

pub(crate) const LIVE_META_BY_ID: &str =
    concat!("SELECT ", live_meta!(), " FROM _rt_.messages WHERE id = $1");

pub(crate) const HISTORY_META_BY_ID: &str = concat!(
    "SELECT ",
    history_meta!(),
    " FROM _rt_.message_history WHERE id = $1"
);

pub(crate) const RETRY: &str = concat!(
    "WITH gone AS (DELETE FROM _rt_.message_history WHERE id = $1 RETURNING *), \
     back AS (",
    from_history!(),
    " RETURNING ",
    live_meta!(),
    ") SELECT * FROM back"
);

/// Makes a pending message (waiting out its backoff) due now.
pub(crate) const RETRY_NOW: &str = concat!(
    "UPDATE _rt_.messages SET next_attempt_at = now() WHERE id = $1 AND status = 'pending' \
     RETURNING ",
    live_meta!()
);

pub(crate) const CANCEL: &str = concat!(
    "WITH gone AS (DELETE FROM _rt_.messages WHERE id = $1 RETURNING *), \
     moved AS (INSERT INTO _rt_.message_history (",
    history_columns!(),
    ") SELECT id, kind, name, url, method, headers, body, created_at, 'cancelled', attempts, \
     lost_leases, now(), 'cancelled by a user', idempotency_key, endpoint_id, signing_key, \
     ordering_key, metadata FROM gone",
    history_upsert!(),
    " RETURNING ",
    history_meta!(),
    ") SELECT * FROM moved"
);

/// The start of a replay: the caller adds the filter's conditions on `message_history`,
/// then [`REPLAY_TAIL`].
pub(crate) const REPLAY_HEAD: &str = "WITH gone AS (DELETE FROM _rt_.message_history h WHERE NOT EXISTS \
     (SELECT 1 FROM _rt_.messages m WHERE m.id = h.id)";

pub(crate) const REPLAY_TAIL: &str = concat!(
    " RETURNING *), back AS (",
    from_history!(),
    " RETURNING 1) SELECT count(*) FROM back"
);

/// Deletes one batch of history past its retention (`$1` succeeded before, `$2` others
/// before, both microseconds since the epoch; `$3` the batch size), with its attempts.
pub(crate) const PURGE_MESSAGES: &str = concat!(
    "WITH doomed AS MATERIALIZED (SELECT id FROM _rt_.message_history \
     WHERE (status = 'succeeded' AND finished_at < ",
    ts!("$1"),
    ") OR (status <> 'succeeded' AND finished_at < ",
    ts!("$2"),
    ") LIMIT $3 FOR UPDATE SKIP LOCKED), \
     gone_attempts AS (DELETE FROM _rt_.attempts WHERE message_id IN (SELECT id FROM doomed) \
     RETURNING 1), \
     gone AS (DELETE FROM _rt_.message_history WHERE id IN (SELECT id FROM doomed) RETURNING 1) \
     SELECT (SELECT count(*) FROM gone) AS messages, \
     (SELECT count(*) FROM gone_attempts) AS attempts"
);

pub(crate) const PURGE_KEYS: &str = concat!(
    "DELETE FROM _rt_.idempotency_keys WHERE (name, key) IN (SELECT k.name, k.key FROM \
     _rt_.idempotency_keys k WHERE k.created_at < ",
    ts!("$1"),
    " AND NOT EXISTS (SELECT 1 FROM _rt_.messages m WHERE m.id = k.message_id) LIMIT $2 \
     FOR UPDATE SKIP LOCKED)"
);

pub(crate) const GET: &str = concat!(
    "SELECT ",
    live_meta!(),
    ", headers::text AS headers, body FROM _rt_.messages WHERE id = $1 UNION ALL SELECT ",
    history_meta!(),
    ", headers::text AS headers, body FROM _rt_.message_history WHERE id = $1 LIMIT 1"
);

pub(crate) const ATTEMPTS: &str = concat!(
    "SELECT message_id, number, worker, ",
    us!("started_at"),
    " AS started_at, duration_us, response_status, response_body, response_truncated, \
     error_kind, error, contract_violation, outcome, ",
    us!("next_attempt_at"),
    " AS next_attempt_at, response_headers FROM _rt_.attempts WHERE message_id = $1 ORDER BY seq"
);

/// The attempt log: every attempt, with its `seq`; the caller adds conditions and the order.
pub(crate) const ATTEMPT_LOG: &str = concat!(
    "SELECT seq, message_id, number, worker, ",
    us!("started_at"),
    " AS started_at, duration_us, response_status, response_body, response_truncated, \
     error_kind, error, contract_violation, outcome, ",
    us!("next_attempt_at"),
    " AS next_attempt_at, response_headers FROM _rt_.attempts WHERE true"
);

pub(crate) const LIST_LIVE: &str =
    concat!("SELECT ", live_meta!(), " FROM _rt_.messages WHERE true");

pub(crate) const LIST_HISTORY: &str = concat!(
    "SELECT ",
    history_meta!(),
    " FROM _rt_.message_history WHERE true"
);

/// The statements, with the schema filled in. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    inner: Arc<Texts>,
}

#[derive(Debug)]
pub(crate) struct Texts {
    pub(crate) prefix: String,
    pub(crate) insert_keys: Arc<str>,
    pub(crate) select_keys: Arc<str>,
    pub(crate) insert_messages: Arc<str>,
    pub(crate) insert_messages_notify: Arc<str>,
    pub(crate) claim: Arc<str>,
    pub(crate) complete: Arc<str>,
    pub(crate) renew: Arc<str>,
    pub(crate) release: Arc<str>,
    pub(crate) reclaim: Arc<str>,
    pub(crate) live_meta_by_id: Arc<str>,
    pub(crate) history_meta_by_id: Arc<str>,
    pub(crate) retry: Arc<str>,
    pub(crate) retry_now: Arc<str>,
    pub(crate) cancel: Arc<str>,
    pub(crate) purge_messages: Arc<str>,
    pub(crate) purge_keys: Arc<str>,
    pub(crate) get: Arc<str>,
    pub(crate) attempts: Arc<str>,
    pub(crate) list_live: Arc<str>,
    pub(crate) list_history: Arc<str>,
    pub(crate) attempt_log: Arc<str>,
}

impl std::ops::Deref for Statements {
    type Target = Texts;
    fn deref(&self) -> &Texts {
        &self.inner
    }
}

impl Statements {
    /// The statements for the tables in `schema` (unquoted).
    pub(crate) fn new(schema: &str) -> Self {
        let prefix = format!("{}.", quote_ident(schema));
        let q = |template: &str| -> Arc<str> { Arc::from(template.replace("_rt_.", &prefix)) };
        Statements {
            inner: Arc::new(Texts {
                insert_keys: q(INSERT_KEYS),
                select_keys: q(SELECT_KEYS),
                insert_messages: q(INSERT_MESSAGES),
                insert_messages_notify: q(INSERT_MESSAGES_NOTIFY),
                claim: q(CLAIM),
                complete: q(COMPLETE),
                renew: q(RENEW),
                release: q(RELEASE),
                reclaim: q(RECLAIM),
                live_meta_by_id: q(LIVE_META_BY_ID),
                history_meta_by_id: q(HISTORY_META_BY_ID),
                retry: q(RETRY),
                retry_now: q(RETRY_NOW),
                cancel: q(CANCEL),
                purge_messages: q(PURGE_MESSAGES),
                purge_keys: q(PURGE_KEYS),
                get: q(GET),
                attempts: q(ATTEMPTS),
                list_live: q(LIST_LIVE),
                list_history: q(LIST_HISTORY),
                attempt_log: q(ATTEMPT_LOG),
                prefix,
            }),
        }
    }

    /// Fills the schema into a template built at run time (listings, replays).
    pub(crate) fn qualify(&self, template: &str) -> String {
        template.replace("_rt_.", &self.prefix)
    }
}
