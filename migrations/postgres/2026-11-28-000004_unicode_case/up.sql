-- Nothing on PostgreSQL: its `lower()` already folds all of Unicode (see
-- the SQLite migration of this name).
SELECT 1;
