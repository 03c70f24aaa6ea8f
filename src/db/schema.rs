//! The one diesel schema for both backends (see `db::types`).

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{Id, Json, Instant};

    environments (id) {
        id -> Id,
        name -> Text,
        required_fields -> Json,
        created_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{Id, Json, Instant};

    users (id) {
        id -> Id,
        environment_id -> Id,
        last_verified_credential_id -> Nullable<Id>,
        session_id -> Nullable<Id>,
        scope -> Nullable<Text>,
        new_user -> Bool,
        first_visit -> Instant,
        last_visit -> Instant,
        alias -> Nullable<Text>,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        job_title -> Nullable<Text>,
        t_shirt_size -> Nullable<Text>,
        team -> Nullable<Text>,
        country -> Nullable<Text>,
        email -> Nullable<Text>,
        phone_number -> Nullable<Text>,
        policies_consent -> Nullable<Bool>,
        username -> Nullable<Text>,
        metadata -> Nullable<Json>,
        mfa_backup_code_acknowledgement -> Nullable<Text>,
        btc_wallet -> Nullable<Text>,
        kda_wallet -> Nullable<Text>,
        ltc_wallet -> Nullable<Text>,
        ckb_wallet -> Nullable<Text>,
        kas_wallet -> Nullable<Text>,
        doge_wallet -> Nullable<Text>,
        email_notification -> Nullable<Bool>,
        discord_notification -> Nullable<Bool>,
        newsletter_notification -> Nullable<Bool>,
        lists -> Nullable<Json>,
        wallet_public_key -> Nullable<Text>,
        wallet -> Nullable<Text>,
        chain -> Nullable<Text>,
        created_at -> Instant,
        updated_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{Id, Instant};

    verified_credentials (id) {
        id -> Id,
        user_id -> Id,
        format -> Text,
        public_identifier -> Text,
        chain -> Nullable<Text>,
        wallet_name -> Nullable<Text>,
        created_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{Id, Instant};

    wallets (id) {
        id -> Id,
        user_id -> Id,
        name -> Text,
        chain -> Text,
        public_key -> Text,
        provider -> Text,
        created_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{Id, Instant};

    sessions (id) {
        id -> Id,
        user_id -> Id,
        ip_address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        created_at -> Instant,
        expires_at -> Instant,
        revoked_at -> Nullable<Instant>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{Id, Instant};

    mfa_devices (id) {
        id -> Id,
        user_id -> Id,
        kind -> Text,
        name -> Nullable<Text>,
        is_default -> Bool,
        verified_at -> Nullable<Instant>,
        created_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{Id, Instant};

    oauth_accounts (id) {
        id -> Id,
        user_id -> Id,
        provider -> Text,
        account_username -> Nullable<Text>,
        account_email -> Nullable<Text>,
        display_name -> Nullable<Text>,
        created_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{Id, Instant};

    chainalysis_checks (id) {
        id -> Id,
        user_id -> Id,
        wallet_public_key -> Text,
        risk_level -> Text,
        created_at -> Instant,
    }
}

diesel::joinable!(users -> environments (environment_id));
diesel::joinable!(verified_credentials -> users (user_id));
diesel::joinable!(wallets -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(mfa_devices -> users (user_id));
diesel::joinable!(oauth_accounts -> users (user_id));
diesel::joinable!(chainalysis_checks -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    environments,
    users,
    verified_credentials,
    wallets,
    sessions,
    mfa_devices,
    oauth_accounts,
    chainalysis_checks,
);

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{Id, Instant};

    api_tokens (id) {
        id -> Id,
        environment_id -> Id,
        name -> Text,
        token_hash -> Text,
        created_at -> Instant,
        revoked_at -> Nullable<Instant>,
    }
}

diesel::joinable!(api_tokens -> environments (environment_id));
diesel::allow_tables_to_appear_in_same_query!(api_tokens, environments);

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{Id, Json, Instant};

    user_history (id) {
        id -> Id,
        environment_id -> Id,
        user_id -> Id,
        version -> Instant,
        previous_version -> Nullable<Instant>,
        operation -> Text,
        changed_fields -> Json,
        token_id -> Nullable<Id>,
        merged -> Bool,
        recorded_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{Id, Instant};

    idempotency_keys (token_id, key) {
        token_id -> Id,
        key -> Text,
        body_hash -> Text,
        status -> Nullable<Integer>,
        response -> Nullable<Text>,
        created_at -> Instant,
    }
}

diesel::joinable!(user_history -> api_tokens (token_id));
diesel::allow_tables_to_appear_in_same_query!(user_history, api_tokens);
