-- The server processes that have live-update subscribers (`repo/feed.rs`):
-- a change is notified only while one is registered here. NOTIFY costs
-- every commit that sends it a database-wide lock and an entry in the
-- notification queue, and wakes every listening connection, subscribers or
-- not; a deployment without subscribers no longer pays that.
--
-- One row per listening connection, by its backend's process id. A process
-- registers when its first subscriber arrives and removes its row when it
-- has had none for a while; a row whose process died stays until the next
-- registration clears it, and until then changes are notified for nothing,
-- as before.
CREATE TABLE usergraph_listeners (
    pid integer PRIMARY KEY,
    registered_at timestamptz NOT NULL DEFAULT now()
);

-- Why a change can never be missed by a new subscriber: a registration
-- takes this table's ACCESS EXCLUSIVE lock before inserting its row, which
-- waits for every transaction that has looked here (and holds its ACCESS
-- SHARE lock until it ends), and holds back the ones that look now until
-- the row is committed. So every write either ended before the registration
-- (the subscriber's first read, which follows it, sees the write) or looks
-- after it and sees the row: under READ COMMITTED each statement of the
-- trigger reads with a snapshot taken after its locks. A REPEATABLE READ or
-- SERIALIZABLE transaction reads with its first statement's snapshot, which
-- may predate the row: such a write always notifies.
CREATE OR REPLACE FUNCTION usergraph_notify_user_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed users;
BEGIN
    IF current_setting('transaction_isolation') = 'read committed'
        AND NOT EXISTS (SELECT FROM usergraph_listeners) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
    ELSE
        changed := NEW;
    END IF;
    PERFORM pg_notify(
        'usergraph_user_changes',
        left(TG_OP, 1) || ' ' || changed.environment_id || ' ' || changed.id || ' '
            || (extract(epoch FROM changed.updated_at) * 1000000)::bigint
    );
    RETURN NULL;
END
$$;
