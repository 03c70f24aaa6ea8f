-- Nothing on SQLite: the one process that owns the file publishes its own
-- changes to its subscribers (see the PostgreSQL migration of this name).
SELECT 1;
