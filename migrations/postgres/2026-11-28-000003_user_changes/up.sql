-- Every committed change of a user reaches the server processes listening on
-- this database (live updates, `repo/feed.rs`). NOTIFY is transactional:
-- delivered only if the write commits, and in commit order. The payload stays
-- small, the listener reads the user itself:
--   <I|U|D> (insert, update, delete) <environment id> <user id> <updated_at in microseconds since 1970>
-- A trigger rather than a statement in each write: a nested-record change
-- moves the user's `updated_at` too, and no write path can forget it.
CREATE FUNCTION usergraph_notify_user_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed users;
BEGIN
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

CREATE TRIGGER users_notify_change
    AFTER INSERT OR DELETE OR UPDATE OF updated_at ON users
    FOR EACH ROW EXECUTE FUNCTION usergraph_notify_user_change();
