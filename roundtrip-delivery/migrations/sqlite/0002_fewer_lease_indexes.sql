-- Every claim and completion updated three indexes of the live table. Releasing or
-- reclaiming an owner's leases is rare and scans only leased rows (through
-- messages_leases), so the owner index is not worth its cost on every message.
DROP INDEX IF EXISTS messages_owner;
