-- Nothing on SQLite: a foreign key check takes no row lock there (one
-- writer at a time holds the whole file), so the history keeps its key to
-- `environments` and its cascade (see the PostgreSQL migration of this
-- name, which replaces both by a trigger).
SELECT 1;
