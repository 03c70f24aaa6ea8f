-- The history's foreign key to `environments` made every write of a user
-- lock its environment's one row (`FOR KEY SHARE`, the key check of the
-- entry's insert): all concurrent writes of an environment, from every
-- process, shared a lock on that row, which PostgreSQL keeps as a
-- multixact made anew at each new locker (a write-ahead log record and a
-- multixact for most writes; docs/BENCHMARKS.md, "The history without its
-- environment's lock"). The check itself proved nothing: an entry is
-- written in the transaction that writes its user, with the user's
-- environment, which the user's own foreign key holds.
--
-- What the key's cascade did stays: an environment's deletion deletes its
-- entries. This trigger fires after the cascades of the environment's
-- foreign keys (triggers fire in name order, and those are named `RI_…`):
-- the deletion of its users has waited for every write in flight on them,
-- and a write that comes later finds its user gone and records nothing. The
-- `DELETE` below reads with a snapshot taken after that wait (READ
-- COMMITTED), so it sees their entries.
ALTER TABLE user_history DROP CONSTRAINT user_history_environment_id_fkey;

CREATE FUNCTION usergraph_delete_environment_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM user_history WHERE environment_id = OLD.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER environments_delete_history
    AFTER DELETE ON environments
    FOR EACH ROW EXECUTE FUNCTION usergraph_delete_environment_history();
