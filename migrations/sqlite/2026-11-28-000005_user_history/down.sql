DROP TABLE idempotency_keys;
DROP TABLE user_history;
