-- W1 as usergraph runs it on PostgreSQL (the statement pg_stat_statements
-- records for `user(id) { … wallets sessions mfaDevices }`), after a lookup
-- of a random seeded id (`bench_ids`, filled by bench/run), which usergraph
-- does not pay: the ceiling is a little low, in usergraph's disfavour.
\set n random(1, :ids)
SELECT id AS uid FROM bench_ids WHERE n = :n \gset
SELECT "users"."id", "users"."environment_id", "users"."last_verified_credential_id", "users"."session_id",
  "users"."scope", "users"."new_user", "users"."first_visit", "users"."last_visit", "users"."alias",
  "users"."first_name", "users"."last_name", "users"."job_title", "users"."t_shirt_size", "users"."team",
  "users"."country", "users"."email", "users"."phone_number", "users"."policies_consent", "users"."username",
  "users"."metadata", "users"."mfa_backup_code_acknowledgement", "users"."btc_wallet", "users"."kda_wallet",
  "users"."ltc_wallet", "users"."ckb_wallet", "users"."kas_wallet", "users"."doge_wallet",
  "users"."email_notification", "users"."discord_notification", "users"."newsletter_notification",
  "users"."lists", "users"."wallet_public_key", "users"."wallet", "users"."chain", "users"."created_at",
  "users"."updated_at", NULL,
  (SELECT json_agg(t ORDER BY t.created_at, t.id)::text FROM wallets t WHERE t.user_id = "users"."id"),
  (SELECT json_agg(t ORDER BY t.created_at, t.id)::text FROM sessions t WHERE t.user_id = "users"."id"),
  (SELECT json_agg(t ORDER BY t.created_at, t.id)::text FROM mfa_devices t WHERE t.user_id = "users"."id"),
  NULL, NULL
FROM "users" WHERE (("users"."id" = :uid) AND ("users"."environment_id" = '00000000-0000-4000-8000-000000000001')) LIMIT 1;
