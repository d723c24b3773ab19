-- Webhook endpoints (subscriptions) on PostgreSQL, in the outbox's schema. The store runs
-- this with `search_path` set to that schema, so the names below are unqualified on purpose;
-- it is recorded in `<schema>._roundtrip_endpoint_migrations`, apart from the outbox's own
-- migrations. Ids are `ep_` + 27 base62 characters that sort by creation time; they use the
-- "C" collation so that they sort by byte, as on SQLite.

CREATE TABLE webhook_endpoints (
    id               text COLLATE "C" NOT NULL PRIMARY KEY,
    url              text        NOT NULL,              -- normalized by the url crate
    description      text        NOT NULL DEFAULT '',
    event_types      jsonb       NOT NULL DEFAULT '[]', -- sorted; [] = every event
    event_types_key  text        NOT NULL DEFAULT '',   -- the sorted types joined by newlines
    metadata         jsonb       NOT NULL DEFAULT '{}', -- free-form
    enabled          boolean     NOT NULL DEFAULT true,
    disabled_at      timestamptz,
    disabled_kind    text        CHECK (disabled_kind IN ('manual', 'gone', 'failing')),
    disabled_reason  text,
    failing_since    timestamptz,                       -- first failure of the current streak
    last_success_at  timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- One endpoint per URL and set of event types: a second one would get every message twice.
CREATE UNIQUE INDEX webhook_endpoints_target ON webhook_endpoints (url, event_types_key);

-- Which endpoints want which event: `*` for those that want every event.
CREATE TABLE webhook_endpoint_events (
    event_type   text NOT NULL,
    endpoint_id  text COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    PRIMARY KEY (event_type, endpoint_id)
);

CREATE INDEX webhook_endpoint_events_endpoint ON webhook_endpoint_events (endpoint_id);

-- Signing secrets: the current one (no expiry) and, after a rotation, the previous ones
-- until their grace period ends. Every unexpired secret signs.
CREATE TABLE webhook_endpoint_secrets (
    endpoint_id  text COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    seq          integer     NOT NULL,                  -- 1 for the first, +1 per rotation
    secret       text        NOT NULL,                  -- whsec_...
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,                           -- NULL for the current secret
    PRIMARY KEY (endpoint_id, seq)
);
