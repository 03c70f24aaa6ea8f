CREATE OR REPLACE FUNCTION usergraph_notify_user_change() RETURNS trigger
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

DROP TABLE usergraph_listeners;
