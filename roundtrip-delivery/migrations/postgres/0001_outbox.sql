-- The roundtrip outbox on PostgreSQL. The store runs this with `search_path` set to its own
-- schema (default `roundtrip`), so the names below are unqualified on purpose.
--
-- Times are `timestamptz` taken from the database clock (`now()`), so that processes on
-- several hosts agree on when a lease runs out. Ids are `msg_` + 27 base62 characters that
-- sort by creation time; they use the "C" collation so that they sort by byte, as on SQLite,
-- whatever the database's collation is.

-- Live messages only (pending or leased). Finished ones move to message_history, so the
-- claim query scans a table that stays small.
CREATE TABLE messages (
    id                text COLLATE "C" NOT NULL PRIMARY KEY,
    kind              text        NOT NULL CHECK (kind IN ('callback', 'webhook')),
    name              text        NOT NULL,
    url               text        NOT NULL,
    method            text        NOT NULL,
    headers           json        NOT NULL DEFAULT '[]',  -- [[name, value], ...], order kept
    body              bytea       NOT NULL,
    created_at        timestamptz NOT NULL,
    status            text        NOT NULL CHECK (status IN ('pending', 'leased')),
    attempts          integer     NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL,
    lease_owner       text,
    lease_expires_at  timestamptz,
    lost_leases       integer     NOT NULL DEFAULT 0,      -- claims that ended without an outcome
    last_error        text,
    idempotency_key   text,
    endpoint_id       text,                                -- webhook subscription, later
    signing_key       text,                                -- a reference for the SecretSource, never a secret
    ordering_key      text,                                -- FIFO per key, later
    metadata          jsonb       NOT NULL DEFAULT '{}'    -- rate-limit keys, signature scheme (v1a), ...
);

-- The claim: `WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at,
-- id LIMIT n FOR UPDATE SKIP LOCKED` reads this index in order and stops after n live rows.
CREATE INDEX messages_due ON messages (next_attempt_at, id) WHERE status = 'pending';
-- Reclaiming expired leases, releasing and reclaiming an owner's leases: the leased rows are
-- the messages in flight, few, so one index serves the expiry scan and the owner filter.
CREATE INDEX messages_leased ON messages (lease_expires_at) WHERE status = 'leased';
-- FIFO heads per key, later.
CREATE INDEX messages_ordering ON messages (ordering_key, id) WHERE ordering_key IS NOT NULL;

-- Every claim and completion rewrites or deletes a row here: vacuum it early, so that dead
-- index entries do not pile up in front of the claim.
ALTER TABLE messages SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.05
);

-- Finished messages: succeeded, failed or cancelled. Purged after the retention.
CREATE TABLE message_history (
    id                text COLLATE "C" NOT NULL PRIMARY KEY,
    kind              text        NOT NULL,
    name              text        NOT NULL,
    url               text        NOT NULL,
    method            text        NOT NULL,
    headers           json        NOT NULL DEFAULT '[]',
    body              bytea       NOT NULL,
    created_at        timestamptz NOT NULL,
    status            text        NOT NULL CHECK (status IN ('succeeded', 'failed', 'cancelled')),
    attempts          integer     NOT NULL,
    lost_leases       integer     NOT NULL DEFAULT 0,
    finished_at       timestamptz NOT NULL,
    last_error        text,
    idempotency_key   text,
    endpoint_id       text,
    signing_key       text,
    ordering_key      text,
    metadata          jsonb       NOT NULL DEFAULT '{}'
);

CREATE INDEX message_history_finished ON message_history (status, finished_at);

-- One row per try. `seq` orders the attempts of a message.
CREATE TABLE attempts (
    message_id          text COLLATE "C" NOT NULL,
    seq                 bigint      GENERATED ALWAYS AS IDENTITY,
    number              integer     NOT NULL,
    worker              text        NOT NULL,
    started_at          timestamptz NOT NULL,
    duration_us         bigint      NOT NULL,
    response_status     integer,
    response_body       bytea,
    response_truncated  boolean     NOT NULL DEFAULT false,
    error_kind          text,
    error               text,
    contract_violation  text,
    outcome             text        NOT NULL CHECK (outcome IN ('succeeded', 'retry', 'failed')),
    next_attempt_at     timestamptz,
    PRIMARY KEY (message_id, seq)
);

-- Idempotency keys outlive their message's delivery by the store's idempotency retention.
CREATE TABLE idempotency_keys (
    name        text        NOT NULL,
    key         text        NOT NULL,
    message_id  text COLLATE "C" NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (name, key)
);

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
