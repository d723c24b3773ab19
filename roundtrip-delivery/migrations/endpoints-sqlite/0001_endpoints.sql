-- Webhook endpoints (subscriptions) on SQLite, in the outbox's database file. Recorded in
-- `_roundtrip_endpoint_migrations`, apart from the outbox's own migrations. Times are
-- milliseconds since the Unix epoch (UTC). Ids are `ep_` + 27 base62 characters that sort by
-- creation time.

CREATE TABLE webhook_endpoints (
    id               TEXT    NOT NULL PRIMARY KEY,
    url              TEXT    NOT NULL,                  -- normalized by the url crate
    description      TEXT    NOT NULL DEFAULT '',
    event_types      TEXT    NOT NULL DEFAULT '[]',     -- JSON array, sorted; [] = every event
    event_types_key  TEXT    NOT NULL DEFAULT '',       -- the sorted types joined by newlines
    metadata         TEXT    NOT NULL DEFAULT '{}',     -- JSON object, free-form
    enabled          INTEGER NOT NULL DEFAULT 1,
    disabled_at      INTEGER,
    disabled_kind    TEXT    CHECK (disabled_kind IN ('manual', 'gone', 'failing')),
    disabled_reason  TEXT,
    failing_since    INTEGER,                           -- first failure of the current streak
    last_success_at  INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

-- One endpoint per URL and set of event types: a second one would get every message twice.
CREATE UNIQUE INDEX webhook_endpoints_target ON webhook_endpoints (url, event_types_key);

-- Which endpoints want which event: `*` for those that want every event. Publishing reads
-- this index, never the whole endpoint table.
CREATE TABLE webhook_endpoint_events (
    event_type   TEXT NOT NULL,
    endpoint_id  TEXT NOT NULL,
    PRIMARY KEY (event_type, endpoint_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX webhook_endpoint_events_endpoint ON webhook_endpoint_events (endpoint_id);

-- Signing secrets: the current one (no expiry) and, after a rotation, the previous ones
-- until their grace period ends. Every unexpired secret signs.
CREATE TABLE webhook_endpoint_secrets (
    endpoint_id  TEXT    NOT NULL,
    seq          INTEGER NOT NULL,                      -- 1 for the first, +1 per rotation
    secret       TEXT    NOT NULL,                      -- whsec_...
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,                               -- NULL for the current secret
    PRIMARY KEY (endpoint_id, seq)
) STRICT, WITHOUT ROWID;
