-- W2 as usergraph runs it on PostgreSQL: the read of W1 (see read.sql),
-- then the compare-and-set with the version just read, answering with the
-- user and its lists and recording the change history in the same
-- statement (`pg::Recorded`; pg_stat_statements shows it with every value a
-- parameter). The patch writes a new `firstName` only, as W2's does. The entry's
-- id is time-ordered, as usergraph's (UUIDv7; PostgreSQL 15 has no function
-- for it).
\set n random(1, :ids)
\set r random(1, 2000000000)
SELECT id AS uid FROM bench_ids WHERE n = :n \gset
SELECT "users"."id", "users"."updated_at" AS v, "users"."first_name",
  (SELECT json_agg(t ORDER BY t.created_at, t.id)::text FROM wallets t WHERE t.user_id = "users"."id"),
  (SELECT json_agg(t ORDER BY t.created_at, t.id)::text FROM sessions t WHERE t.user_id = "users"."id"),
  (SELECT json_agg(t ORDER BY t.created_at, t.id)::text FROM mfa_devices t WHERE t.user_id = "users"."id")
FROM "users" WHERE (("users"."id" = :uid) AND ("users"."environment_id" = '00000000-0000-4000-8000-000000000001')) LIMIT 1 \gset
WITH updated AS (UPDATE "users" SET
  "last_verified_credential_id" = CASE WHEN false THEN NULL ELSE "last_verified_credential_id" END,
  "scope" = CASE WHEN false THEN NULL ELSE "scope" END,
  "new_user" = CASE WHEN false THEN NULL ELSE "new_user" END,
  "first_visit" = CASE WHEN false THEN NULL ELSE "first_visit" END,
  "last_visit" = CASE WHEN false THEN NULL ELSE "last_visit" END,
  "alias" = CASE WHEN false THEN NULL ELSE "alias" END,
  "first_name" = CASE WHEN true THEN 'Bench' || :r::text ELSE "first_name" END,
  "last_name" = CASE WHEN false THEN NULL ELSE "last_name" END,
  "job_title" = CASE WHEN false THEN NULL ELSE "job_title" END,
  "t_shirt_size" = CASE WHEN false THEN NULL ELSE "t_shirt_size" END,
  "team" = CASE WHEN false THEN NULL ELSE "team" END,
  "country" = CASE WHEN false THEN NULL ELSE "country" END,
  "email" = CASE WHEN false THEN NULL ELSE "email" END,
  "phone_number" = CASE WHEN false THEN NULL ELSE "phone_number" END,
  "policies_consent" = CASE WHEN false THEN NULL ELSE "policies_consent" END,
  "username" = CASE WHEN false THEN NULL ELSE "username" END,
  "metadata" = CASE WHEN false THEN NULL ELSE "metadata" END,
  "mfa_backup_code_acknowledgement" = CASE WHEN false THEN NULL ELSE "mfa_backup_code_acknowledgement" END,
  "btc_wallet" = CASE WHEN false THEN NULL ELSE "btc_wallet" END,
  "kda_wallet" = CASE WHEN false THEN NULL ELSE "kda_wallet" END,
  "ltc_wallet" = CASE WHEN false THEN NULL ELSE "ltc_wallet" END,
  "ckb_wallet" = CASE WHEN false THEN NULL ELSE "ckb_wallet" END,
  "kas_wallet" = CASE WHEN false THEN NULL ELSE "kas_wallet" END,
  "doge_wallet" = CASE WHEN false THEN NULL ELSE "doge_wallet" END,
  "email_notification" = CASE WHEN false THEN NULL ELSE "email_notification" END,
  "discord_notification" = CASE WHEN false THEN NULL ELSE "discord_notification" END,
  "newsletter_notification" = CASE WHEN false THEN NULL ELSE "newsletter_notification" END,
  "lists" = CASE WHEN false THEN NULL ELSE "lists" END,
  "wallet_public_key" = CASE WHEN false THEN NULL ELSE "wallet_public_key" END,
  "wallet" = CASE WHEN false THEN NULL ELSE "wallet" END,
  "chain" = CASE WHEN false THEN NULL ELSE "chain" END,
  "updated_at" = greatest(now(), :v::timestamptz + interval '1 microsecond')
WHERE (("users"."id" = :uid) AND ("users"."environment_id" = '00000000-0000-4000-8000-000000000001'))
  AND ("users"."updated_at" = :v)
RETURNING "users"."id", "users"."environment_id", "users"."last_verified_credential_id", "users"."session_id",
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
  NULL, NULL,
  (SELECT coalesce(json_agg(f ORDER BY f COLLATE "C"), '[]')::text FROM users old_row, unnest(ARRAY[NULL::text,
    CASE WHEN old_row.last_verified_credential_id::text IS DISTINCT FROM users.last_verified_credential_id::text THEN 'lastVerifiedCredentialId' END,
    CASE WHEN old_row.scope::text IS DISTINCT FROM users.scope::text THEN 'scope' END,
    CASE WHEN old_row.new_user::text IS DISTINCT FROM users.new_user::text THEN 'newUser' END,
    CASE WHEN old_row.first_visit::text IS DISTINCT FROM users.first_visit::text THEN 'firstVisit' END,
    CASE WHEN old_row.last_visit::text IS DISTINCT FROM users.last_visit::text THEN 'lastVisit' END,
    CASE WHEN old_row.alias::text IS DISTINCT FROM users.alias::text THEN 'alias' END,
    CASE WHEN old_row.first_name::text IS DISTINCT FROM users.first_name::text THEN 'firstName' END,
    CASE WHEN old_row.last_name::text IS DISTINCT FROM users.last_name::text THEN 'lastName' END,
    CASE WHEN old_row.job_title::text IS DISTINCT FROM users.job_title::text THEN 'jobTitle' END,
    CASE WHEN old_row.t_shirt_size::text IS DISTINCT FROM users.t_shirt_size::text THEN 'tShirtSize' END,
    CASE WHEN old_row.team::text IS DISTINCT FROM users.team::text THEN 'team' END,
    CASE WHEN old_row.country::text IS DISTINCT FROM users.country::text THEN 'country' END,
    CASE WHEN old_row.email::text IS DISTINCT FROM users.email::text THEN 'email' END,
    CASE WHEN old_row.phone_number::text IS DISTINCT FROM users.phone_number::text THEN 'phoneNumber' END,
    CASE WHEN old_row.policies_consent::text IS DISTINCT FROM users.policies_consent::text THEN 'policiesConsent' END,
    CASE WHEN old_row.username::text IS DISTINCT FROM users.username::text THEN 'username' END,
    CASE WHEN old_row.metadata::text IS DISTINCT FROM users.metadata::text THEN 'metadata' END,
    CASE WHEN old_row.mfa_backup_code_acknowledgement::text IS DISTINCT FROM users.mfa_backup_code_acknowledgement::text THEN 'mfaBackupCodeAcknowledgement' END,
    CASE WHEN old_row.btc_wallet::text IS DISTINCT FROM users.btc_wallet::text THEN 'btcWallet' END,
    CASE WHEN old_row.kda_wallet::text IS DISTINCT FROM users.kda_wallet::text THEN 'kdaWallet' END,
    CASE WHEN old_row.ltc_wallet::text IS DISTINCT FROM users.ltc_wallet::text THEN 'ltcWallet' END,
    CASE WHEN old_row.ckb_wallet::text IS DISTINCT FROM users.ckb_wallet::text THEN 'ckbWallet' END,
    CASE WHEN old_row.kas_wallet::text IS DISTINCT FROM users.kas_wallet::text THEN 'kasWallet' END,
    CASE WHEN old_row.doge_wallet::text IS DISTINCT FROM users.doge_wallet::text THEN 'dogeWallet' END,
    CASE WHEN old_row.email_notification::text IS DISTINCT FROM users.email_notification::text THEN 'emailNotification' END,
    CASE WHEN old_row.discord_notification::text IS DISTINCT FROM users.discord_notification::text THEN 'discordNotification' END,
    CASE WHEN old_row.newsletter_notification::text IS DISTINCT FROM users.newsletter_notification::text THEN 'newsletterNotification' END,
    CASE WHEN old_row.lists::text IS DISTINCT FROM users.lists::text THEN 'lists' END,
    CASE WHEN old_row.wallet_public_key::text IS DISTINCT FROM users.wallet_public_key::text THEN 'walletPublicKey' END,
    CASE WHEN old_row.wallet::text IS DISTINCT FROM users.wallet::text THEN 'wallet' END,
    CASE WHEN old_row.chain::text IS DISTINCT FROM users.chain::text THEN 'chain' END
  ]) AS f WHERE old_row.id = users.id AND f IS NOT NULL) AS changed_fields),
recorded AS (INSERT INTO user_history (id, environment_id, user_id, version, previous_version, operation,
    changed_fields, token_id, merged, recorded_at)
  SELECT (lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || '7'
      || substr(md5(random()::text), 1, 19))::uuid,
    updated.environment_id, updated.id, updated.updated_at, :v::timestamptz, 'UPDATE',
    updated.changed_fields::jsonb, NULL, false, now()
  FROM updated)
SELECT * FROM updated;
