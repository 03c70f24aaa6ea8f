-- Nothing on SQLite: no other process writes the file, so nothing is
-- notified (see the PostgreSQL migration of this name).
SELECT 1;
