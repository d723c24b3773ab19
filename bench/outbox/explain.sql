-- EXPLAIN (ANALYZE, BUFFERS) of the PostgreSQL outbox's claim on a table of 1 million rows.
--
--   psql -h 127.0.0.1 -U postgres -d test -v schema=rt_explain -f bench/outbox/explain.sql
--
-- Creates the schema with the store's own migration, fills `messages` with 1,000,000 rows,
-- runs the claim statement of `roundtrip-delivery/src/postgres/sql.rs` (CLAIM, with the
-- schema filled in and the parameters inlined) in transactions that are rolled back, and
-- drops the schema at the end. Three shapes of queue:
--   A. a backlog: 1,000,000 pending messages, all due;
--   B. mostly waiting: 900,000 retries due in the future (50,000 of them leased), 100,000
--      due now;
--   C. B after 200 claim-and-complete rounds of 100 in one transaction, without a vacuum
--      (20,000 dead index entries at the head of the due index, the classic queue-table
--      problem), then the same claim again, then after VACUUM.
\set ON_ERROR_STOP on
\timing on
DROP SCHEMA IF EXISTS :"schema" CASCADE;
CREATE SCHEMA :"schema";
SET search_path TO :"schema";
\i roundtrip-delivery/migrations/postgres/0001_outbox.sql

-- A: a backlog of 1M due messages (ids sort like the store's: time first).
INSERT INTO messages (id, kind, name, url, method, headers, body, created_at, status,
                      next_attempt_at, metadata)
SELECT 'msg_' || lpad(to_hex(i), 27, '0'), 'callback', 'invoice_notification',
       'http://127.0.0.1:9/hook', 'POST', '[]', '{"description":"paid","paid":true}'::bytea,
       now() - interval '1 hour' + i * interval '1 millisecond', 'pending',
       now() - interval '1 hour' + i * interval '1 millisecond', '{}'
FROM generate_series(1, 1000000) AS i;
VACUUM ANALYZE messages;
SELECT pg_size_pretty(pg_table_size('messages')) AS table_size,
       pg_size_pretty(pg_relation_size('messages_due')) AS due_index_size;

\echo '== A. backlog: 1,000,000 due; claim 100 (custom plan)'
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH due AS MATERIALIZED (SELECT id FROM messages
     WHERE status = 'pending' AND next_attempt_at <= now()
     ORDER BY next_attempt_at, id LIMIT 100 FOR UPDATE SKIP LOCKED)
UPDATE messages SET status = 'leased', lease_owner = 'bench',
     lease_expires_at = now() + 60000000 * interval '1 microsecond'
WHERE id IN (SELECT id FROM due) RETURNING id, body;
ROLLBACK;

\echo '== A. the same, as a generic prepared plan (what a long-lived sqlx statement may get)'
PREPARE claim(text, int8, int8) AS
WITH due AS MATERIALIZED (SELECT id FROM messages
     WHERE status = 'pending' AND next_attempt_at <= now()
     ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
UPDATE messages SET status = 'leased', lease_owner = $1,
     lease_expires_at = now() + $2 * interval '1 microsecond'
WHERE id IN (SELECT id FROM due) RETURNING id, body;
SET plan_cache_mode = force_generic_plan;
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE claim('bench', 60000000, 100);
ROLLBACK;
RESET plan_cache_mode;

-- B: most messages wait for a retry in the future, some are leased, 100,000 are due.
UPDATE messages SET next_attempt_at = now() + interval '1 hour' + (random() * interval '1 day')
WHERE id > 'msg_' || lpad(to_hex(100000), 27, '0');
UPDATE messages SET status = 'leased', lease_owner = 'w1', lease_expires_at = now() + interval '1 minute'
WHERE id > 'msg_' || lpad(to_hex(950000), 27, '0');
VACUUM ANALYZE messages;

\echo '== B. 100,000 due among 1,000,000; claim 100'
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH due AS MATERIALIZED (SELECT id FROM messages
     WHERE status = 'pending' AND next_attempt_at <= now()
     ORDER BY next_attempt_at, id LIMIT 100 FOR UPDATE SKIP LOCKED)
UPDATE messages SET status = 'leased', lease_owner = 'bench',
     lease_expires_at = now() + 60000000 * interval '1 microsecond'
WHERE id IN (SELECT id FROM due) RETURNING id, body;
ROLLBACK;

\echo '== B. reclaim of expired leases (none expired among 50,000 leased)'
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id FROM messages WHERE status = 'leased' AND lease_expires_at <= now() FOR UPDATE SKIP LOCKED;
ROLLBACK;

-- C: 200 rounds of claim 100 + complete (delete), no vacuum in between.
ALTER TABLE messages SET (autovacuum_enabled = off);
DO $$
BEGIN
  FOR r IN 1..200 LOOP
    WITH due AS MATERIALIZED (SELECT id FROM messages
         WHERE status = 'pending' AND next_attempt_at <= now()
         ORDER BY next_attempt_at, id LIMIT 100 FOR UPDATE SKIP LOCKED),
    claimed AS (UPDATE messages SET status = 'leased', lease_owner = 'churn',
         lease_expires_at = now() + interval '1 minute'
         WHERE id IN (SELECT id FROM due) RETURNING id)
    DELETE FROM messages WHERE id IN (SELECT id FROM claimed);
  END LOOP;
END $$;

\echo '== C. after 20,000 claimed and deleted, no vacuum; claim 100'
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH due AS MATERIALIZED (SELECT id FROM messages
     WHERE status = 'pending' AND next_attempt_at <= now()
     ORDER BY next_attempt_at, id LIMIT 100 FOR UPDATE SKIP LOCKED)
UPDATE messages SET status = 'leased', lease_owner = 'bench',
     lease_expires_at = now() + 60000000 * interval '1 microsecond'
WHERE id IN (SELECT id FROM due) RETURNING id, body;
ROLLBACK;

\echo '== C. the same claim, run again (dead index entries now marked killed)'
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH due AS MATERIALIZED (SELECT id FROM messages
     WHERE status = 'pending' AND next_attempt_at <= now()
     ORDER BY next_attempt_at, id LIMIT 100 FOR UPDATE SKIP LOCKED)
UPDATE messages SET status = 'leased', lease_owner = 'bench',
     lease_expires_at = now() + 60000000 * interval '1 microsecond'
WHERE id IN (SELECT id FROM due) RETURNING id, body;
ROLLBACK;

SELECT count(*) AS live_due FROM messages WHERE status = 'pending' AND next_attempt_at <= now();
VACUUM ANALYZE messages;
\echo '== C. after VACUUM; claim 100'
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH due AS MATERIALIZED (SELECT id FROM messages
     WHERE status = 'pending' AND next_attempt_at <= now()
     ORDER BY next_attempt_at, id LIMIT 100 FOR UPDATE SKIP LOCKED)
UPDATE messages SET status = 'leased', lease_owner = 'bench',
     lease_expires_at = now() + 60000000 * interval '1 microsecond'
WHERE id IN (SELECT id FROM due) RETURNING id, body;
ROLLBACK;

RESET search_path;
DROP SCHEMA :"schema" CASCADE;
