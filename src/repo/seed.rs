//! Environments and deterministic demo data.

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::{Repo, Scope};
use crate::db::models::*;
use crate::db::schema::{
    chainalysis_checks, environments, mfa_devices, oauth_accounts, sessions, users,
    verified_credentials, wallets,
};
use crate::db::types::{DbId, DbJson, DbTime};
use crate::db::DbError;
use crate::domain::{truncate_to_micros, REQUIRABLE_FIELDS};

/// Why an environment could not be created.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    #[error("{0:?} is not a field an environment can require; these are: {fields}", fields = REQUIRABLE_FIELDS.join(", "))]
    UnknownField(String),
    #[error(transparent)]
    Db(#[from] DbError),
}
use crate::write_transaction;

/// The environment `seed` fills and the server scopes requests to until
/// tokens name one.
pub const DEFAULT_ENVIRONMENT_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001);

const FIRST_NAMES: [&str; 8] = [
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
];
const LAST_NAMES: [&str; 8] = [
    "Lovelace", "Hopper", "Turing", "Johnson", "Dijkstra", "Liskov", "Knuth", "Allen",
];
const COUNTRIES: [&str; 8] = ["GB", "US", "GB", "US", "NL", "US", "US", "US"];

/// Everything one demo user consists of.
struct DemoUser {
    user: UserRow,
    credentials: Vec<VerifiedCredentialRow>,
    wallets: Vec<WalletRow>,
    sessions: Vec<SessionRow>,
    mfa_devices: Vec<MfaDeviceRow>,
    oauth_accounts: Vec<OauthAccountRow>,
    chainalysis_checks: Vec<ChainalysisCheckRow>,
}

/// Demo user number `n` of an environment: the same content for the same `n`.
fn demo_user(environment: Uuid, n: i64, now: DateTime<Utc>) -> DemoUser {
    let i = n.unsigned_abs() as usize;
    let first = FIRST_NAMES[i % FIRST_NAMES.len()];
    let last = LAST_NAMES[i % LAST_NAMES.len()];
    let handle = format!("{}_{}{n}", first.to_lowercase(), last.to_lowercase());
    let id = DbId(Uuid::new_v4());
    let base = Utc
        .with_ymd_and_hms(2026, 1, 1, 9, 0, 0)
        .single()
        .unwrap_or(now);
    let created = DbTime(base + Duration::hours(n));
    let later = DbTime(created.0 + Duration::minutes(30));
    let eth_address = format!("0x{:040x}", 0xa11ce_u64 * 1_000 + n as u64);
    let sol_address = format!("So1{:041}", n);
    let eth_credential = DbId(Uuid::new_v4());
    DemoUser {
        credentials: vec![
            VerifiedCredentialRow {
                id: eth_credential,
                user_id: id,
                format: "BLOCKCHAIN".into(),
                public_identifier: eth_address.clone(),
                chain: Some("ETH".into()),
                wallet_name: Some("metamask".into()),
                created_at: created,
            },
            VerifiedCredentialRow {
                id: DbId(Uuid::new_v4()),
                user_id: id,
                format: "EMAIL".into(),
                public_identifier: format!("{handle}@example.com"),
                chain: None,
                wallet_name: None,
                created_at: created,
            },
        ],
        wallets: vec![
            WalletRow {
                id: DbId(Uuid::new_v4()),
                user_id: id,
                name: "metamask".into(),
                chain: "ETH".into(),
                public_key: eth_address.clone(),
                provider: "browserExtension".into(),
                created_at: created,
            },
            WalletRow {
                id: DbId(Uuid::new_v4()),
                user_id: id,
                name: "phantom".into(),
                chain: "SOL".into(),
                public_key: sol_address,
                provider: "browserExtension".into(),
                created_at: created,
            },
        ],
        sessions: vec![SessionRow {
            id: DbId(Uuid::new_v4()),
            user_id: id,
            ip_address: Some(format!("192.0.2.{}", i % 250 + 1)),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
            created_at: created,
            expires_at: DbTime(created.0 + Duration::days(30)),
            revoked_at: None,
        }],
        mfa_devices: vec![
            MfaDeviceRow {
                id: DbId(Uuid::new_v4()),
                user_id: id,
                kind: "TOTP".into(),
                name: Some("Authenticator".into()),
                is_default: true,
                verified_at: Some(created),
                created_at: created,
            },
            MfaDeviceRow {
                id: DbId(Uuid::new_v4()),
                user_id: id,
                kind: "PASSKEY".into(),
                name: Some("Laptop".into()),
                is_default: false,
                verified_at: Some(later),
                created_at: later,
            },
        ],
        oauth_accounts: vec![OauthAccountRow {
            id: DbId(Uuid::new_v4()),
            user_id: id,
            provider: "github".into(),
            account_username: Some(handle.clone()),
            account_email: Some(format!("{handle}@example.com")),
            display_name: Some(format!("{first} {last}")),
            created_at: created,
        }],
        chainalysis_checks: vec![ChainalysisCheckRow {
            id: DbId(Uuid::new_v4()),
            user_id: id,
            wallet_public_key: eth_address.clone(),
            risk_level: "LOW".into(),
            created_at: created,
        }],
        user: UserRow {
            id,
            environment_id: DbId(environment),
            last_verified_credential_id: Some(eth_credential),
            session_id: None,
            scope: Some("user".into()),
            new_user: n % 2 == 0,
            first_visit: created,
            last_visit: DbTime(created.0 + Duration::days(1)),
            alias: Some(first.to_lowercase()),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            job_title: Some("Engineer".into()),
            t_shirt_size: Some(["S", "M", "L"][i % 3].into()),
            team: Some("Platform".into()),
            country: Some(COUNTRIES[i % COUNTRIES.len()].into()),
            email: Some(format!("{handle}@example.com")),
            phone_number: Some(format!("+1415555{:04}", i % 10_000)),
            policies_consent: Some(true),
            username: Some(handle),
            metadata: Some(DbJson(serde_json::json!({ "plan": "free", "seq": n }))),
            mfa_backup_code_acknowledgement: Some("PENDING".into()),
            btc_wallet: None,
            kda_wallet: None,
            ltc_wallet: None,
            ckb_wallet: None,
            kas_wallet: None,
            doge_wallet: None,
            email_notification: Some(true),
            discord_notification: Some(false),
            newsletter_notification: Some(n % 3 == 0),
            lists: Some(DbJson(serde_json::json!(["beta"]))),
            wallet_public_key: Some(eth_address),
            wallet: Some("metamask".into()),
            chain: Some("ETH".into()),
            created_at: created,
            updated_at: DbTime(truncate_to_micros(now)),
        },
    }
}

/// Inserts rows one statement each: diesel's multi-row insert needs the
/// `DEFAULT` keyword, which SQLite lacks. Seeding only, so the count is fine.
macro_rules! insert_each {
    ($c:expr, $table:ident, $rows:expr) => {
        for row in &$rows {
            diesel::insert_into($table::table)
                .values(row)
                .execute($c)
                .await?;
        }
    };
}

impl Repo {
    /// Creates the default environment unless it exists.
    pub async fn ensure_default_environment(&self) -> Result<(), DbError> {
        let row = EnvironmentRow {
            id: DbId(DEFAULT_ENVIRONMENT_ID),
            name: "default".into(),
            required_fields: DbJson(serde_json::json!(["email"])),
            created_at: DbTime(truncate_to_micros(self.clock.now())),
        };
        let mut conn = self.db.conn().await?;
        crate::with_conn!(&mut conn, c => {
            diesel::insert_into(environments::table)
                .values(&row)
                .on_conflict_do_nothing()
                .execute(c)
                .await
        })?;
        Ok(())
    }

    /// Creates an environment whose users must fill `required_fields`
    /// (names from [`REQUIRABLE_FIELDS`]); returns its id.
    pub async fn create_environment(
        &self,
        name: &str,
        required_fields: &[String],
    ) -> Result<Uuid, EnvironmentError> {
        if let Some(unknown) = required_fields
            .iter()
            .find(|field| !REQUIRABLE_FIELDS.contains(&field.as_str()))
        {
            return Err(EnvironmentError::UnknownField(unknown.clone()));
        }
        let row = EnvironmentRow {
            id: DbId(Uuid::new_v4()),
            name: name.to_owned(),
            required_fields: DbJson(serde_json::json!(required_fields)),
            created_at: DbTime(truncate_to_micros(self.clock.now())),
        };
        let mut conn = self.db.conn().await?;
        crate::with_conn!(&mut conn, c => {
            diesel::insert_into(environments::table).values(&row).execute(c).await
        })
        .map_err(DbError::from)?;
        Ok(row.id.0)
    }

    /// Adds `count` demo users, each with every kind of nested record, to the
    /// scope's environment, numbering on from the users already there and
    /// skipping numbers whose username is taken, so that emails and
    /// usernames stay unique. Returns their ids in order.
    pub async fn seed_users(&self, scope: Scope, count: usize) -> Result<Vec<Uuid>, DbError> {
        let now = self.clock.now();
        let env = scope.environment_id;
        let mut conn = self.db.conn().await?;
        write_transaction!(&mut conn, c -> Result<Vec<Uuid>, DbError> => {
            let existing: i64 = users::table
                .filter(users::environment_id.eq(DbId(env)))
                .count()
                .get_result(c)
                .await?;
            let mut ids = Vec::with_capacity(count);
            let mut n = existing;
            for _ in 0..count {
                // Numbers freed by deletions are behind us, but a number may
                // still be taken (by a user created by hand, or a concurrent
                // seed): skip to the next free username (and so email).
                let demo = loop {
                    n += 1;
                    let demo = demo_user(env, n, now);
                    let taken = diesel::select(diesel::dsl::exists(
                        users::table
                            .filter(users::environment_id.eq(DbId(env)))
                            .filter(users::username.eq(&demo.user.username)),
                    ))
                    .get_result::<bool>(c)
                    .await?;
                    if !taken {
                        break demo;
                    }
                };
                ids.push(demo.user.id.0);
                diesel::insert_into(users::table).values(&demo.user).execute(c).await?;
                insert_each!(c, verified_credentials, demo.credentials);
                insert_each!(c, wallets, demo.wallets);
                insert_each!(c, sessions, demo.sessions);
                insert_each!(c, mfa_devices, demo.mfa_devices);
                insert_each!(c, oauth_accounts, demo.oauth_accounts);
                insert_each!(c, chainalysis_checks, demo.chainalysis_checks);
            }
            Ok(ids)
        })
    }
}
