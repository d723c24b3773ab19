-- The roundtrip outbox on SQLite. Times are milliseconds since the Unix epoch (UTC),
-- durations microseconds. Ids are `msg_` + 27 base62 characters that sort by creation time.

-- Live messages only (pending or leased). Finished ones move to message_history, so the
-- claim query scans a table that stays small.
CREATE TABLE messages (
    id                TEXT    NOT NULL PRIMARY KEY,
    kind              TEXT    NOT NULL CHECK (kind IN ('callback', 'webhook')),
    name              TEXT    NOT NULL,
    url               TEXT    NOT NULL,
    method            TEXT    NOT NULL,
    headers           TEXT    NOT NULL DEFAULT '[]',  -- JSON [[name, value], ...]
    body              BLOB    NOT NULL,
    created_at        INTEGER NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('pending', 'leased')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  INTEGER,
    lost_leases       INTEGER NOT NULL DEFAULT 0,      -- claims that ended without an outcome
    last_error        TEXT,
    idempotency_key   TEXT,
    endpoint_id       TEXT,                            -- webhook subscription, later
    signing_key       TEXT,                            -- a reference for the SecretSource, never a secret
    ordering_key      TEXT,                            -- FIFO per key, later
    metadata          TEXT    NOT NULL DEFAULT '{}'    -- JSON: rate-limit keys, signature scheme (v1a), ...
) STRICT;

-- The claim: the oldest due pending messages.
CREATE INDEX messages_due ON messages (next_attempt_at, id) WHERE status = 'pending';
-- Reclaiming expired leases and releasing an owner's leases.
CREATE INDEX messages_leases ON messages (lease_expires_at) WHERE status = 'leased';
CREATE INDEX messages_owner ON messages (lease_owner) WHERE status = 'leased';
-- FIFO heads per key, later.
CREATE INDEX messages_ordering ON messages (ordering_key, id) WHERE ordering_key IS NOT NULL;

-- Finished messages: succeeded, failed or cancelled. Purged after the retention.
CREATE TABLE message_history (
    id                TEXT    NOT NULL PRIMARY KEY,
    kind              TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    url               TEXT    NOT NULL,
    method            TEXT    NOT NULL,
    headers           TEXT    NOT NULL DEFAULT '[]',
    body              BLOB    NOT NULL,
    created_at        INTEGER NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('succeeded', 'failed', 'cancelled')),
    attempts          INTEGER NOT NULL,
    lost_leases       INTEGER NOT NULL DEFAULT 0,
    finished_at       INTEGER NOT NULL,
    last_error        TEXT,
    idempotency_key   TEXT,
    endpoint_id       TEXT,
    signing_key       TEXT,
    ordering_key      TEXT,
    metadata          TEXT    NOT NULL DEFAULT '{}'
) STRICT;

CREATE INDEX message_history_finished ON message_history (status, finished_at);

-- One row per try.
CREATE TABLE attempts (
    seq                 INTEGER PRIMARY KEY,
    message_id          TEXT    NOT NULL,
    number              INTEGER NOT NULL,
    worker              TEXT    NOT NULL,
    started_at          INTEGER NOT NULL,
    duration_us         INTEGER NOT NULL,
    response_status     INTEGER,
    response_body       BLOB,
    response_truncated  INTEGER NOT NULL DEFAULT 0,
    error_kind          TEXT,
    error               TEXT,
    contract_violation  TEXT,
    outcome             TEXT    NOT NULL CHECK (outcome IN ('succeeded', 'retry', 'failed')),
    next_attempt_at     INTEGER
) STRICT;

CREATE INDEX attempts_message ON attempts (message_id, seq);

-- Idempotency keys outlive their message's delivery by the store's idempotency retention.
CREATE TABLE idempotency_keys (
    name        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (name, key)
) STRICT, WITHOUT ROWID;

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
