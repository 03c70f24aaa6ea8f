-- `lower()` now folds all of Unicode on SQLite, as on PostgreSQL (see
-- `fold_case_like_postgres` in src/db/mod.rs): rebuild the unique indexes
-- over it, so that `É@x` and `é@x` are one email. Fails if the file already
-- holds two users that differ only in the case of a non-ASCII letter.
REINDEX users_email_unique;
REINDEX users_username_unique;
