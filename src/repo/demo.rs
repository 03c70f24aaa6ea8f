//! Deterministic demo data: demo user number `n` of an environment always
//! has the same names, handles and nested records (ids aside).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use crate::db::models::*;
use crate::db::types::{DbId, DbJson, DbTime};
use crate::domain::truncate_to_micros;

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

/// The rows of demo users: one user's, or a batch's.
#[derive(Default)]
pub struct DemoRows {
    pub users: Vec<UserRow>,
    pub credentials: Vec<VerifiedCredentialRow>,
    pub wallets: Vec<WalletRow>,
    pub sessions: Vec<SessionRow>,
    pub mfa_devices: Vec<MfaDeviceRow>,
    pub oauth_accounts: Vec<OauthAccountRow>,
    pub chainalysis_checks: Vec<ChainalysisCheckRow>,
}

/// Demo user number `n` of an environment: the same content for the same `n`.
///
/// Ids are UUIDv7, ordered by time: a seed of a million users then appends
/// to the right edge of each primary-key and `user_id` index instead of
/// touching a random page per row, which is what made large seeds slow.
pub fn demo_user(environment: Uuid, n: i64, now: DateTime<Utc>) -> DemoRows {
    let i = n.unsigned_abs() as usize;
    let first = FIRST_NAMES[i % FIRST_NAMES.len()];
    let last = LAST_NAMES[i % LAST_NAMES.len()];
    let handle = format!("{}_{}{n}", first.to_lowercase(), last.to_lowercase());
    let id = DbId(Uuid::now_v7());
    let base = Utc
        .with_ymd_and_hms(2026, 1, 1, 9, 0, 0)
        .single()
        .unwrap_or(now);
    let created = DbTime(base + Duration::hours(n));
    let later = DbTime(created.0 + Duration::minutes(30));
    let eth_address = format!("0x{:040x}", 0xa11ce_u64 * 1_000 + n as u64);
    let sol_address = format!("So1{:041}", n);
    let eth_credential = DbId(Uuid::now_v7());
    DemoRows {
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
                id: DbId(Uuid::now_v7()),
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
                id: DbId(Uuid::now_v7()),
                user_id: id,
                name: "metamask".into(),
                chain: "ETH".into(),
                public_key: eth_address.clone(),
                provider: "browserExtension".into(),
                created_at: created,
            },
            WalletRow {
                id: DbId(Uuid::now_v7()),
                user_id: id,
                name: "phantom".into(),
                chain: "SOL".into(),
                public_key: sol_address,
                provider: "browserExtension".into(),
                created_at: created,
            },
        ],
        sessions: vec![SessionRow {
            id: DbId(Uuid::now_v7()),
            user_id: id,
            ip_address: Some(format!("192.0.2.{}", i % 250 + 1)),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
            created_at: created,
            expires_at: DbTime(created.0 + Duration::days(30)),
            revoked_at: None,
        }],
        mfa_devices: vec![
            MfaDeviceRow {
                id: DbId(Uuid::now_v7()),
                user_id: id,
                kind: "TOTP".into(),
                name: Some("Authenticator".into()),
                is_default: true,
                verified_at: Some(created),
                created_at: created,
            },
            MfaDeviceRow {
                id: DbId(Uuid::now_v7()),
                user_id: id,
                kind: "PASSKEY".into(),
                name: Some("Laptop".into()),
                is_default: false,
                verified_at: Some(later),
                created_at: later,
            },
        ],
        oauth_accounts: vec![OauthAccountRow {
            id: DbId(Uuid::now_v7()),
            user_id: id,
            provider: "github".into(),
            account_username: Some(handle.clone()),
            account_email: Some(format!("{handle}@example.com")),
            display_name: Some(format!("{first} {last}")),
            created_at: created,
        }],
        chainalysis_checks: vec![ChainalysisCheckRow {
            id: DbId(Uuid::now_v7()),
            user_id: id,
            wallet_public_key: eth_address.clone(),
            risk_level: "LOW".into(),
            created_at: created,
        }],
        users: vec![UserRow {
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
        }],
    }
}

impl DemoRows {
    /// Adds `other`'s rows to these.
    pub fn append(&mut self, mut other: DemoRows) {
        self.users.append(&mut other.users);
        self.credentials.append(&mut other.credentials);
        self.wallets.append(&mut other.wallets);
        self.sessions.append(&mut other.sessions);
        self.mfa_devices.append(&mut other.mfa_devices);
        self.oauth_accounts.append(&mut other.oauth_accounts);
        self.chainalysis_checks
            .append(&mut other.chainalysis_checks);
    }

    /// Keeps the users `inserted` names and the nested rows of those, in
    /// order; returns their ids.
    pub fn keep_users(&mut self, inserted: &[DbId]) -> Vec<DbId> {
        let kept: std::collections::HashSet<DbId> = inserted.iter().copied().collect();
        self.users.retain(|row| kept.contains(&row.id));
        self.credentials.retain(|row| kept.contains(&row.user_id));
        self.wallets.retain(|row| kept.contains(&row.user_id));
        self.sessions.retain(|row| kept.contains(&row.user_id));
        self.mfa_devices.retain(|row| kept.contains(&row.user_id));
        self.oauth_accounts
            .retain(|row| kept.contains(&row.user_id));
        self.chainalysis_checks
            .retain(|row| kept.contains(&row.user_id));
        self.users.iter().map(|row| row.id).collect()
    }
}

/// Demo users per batch, each committed on its own: one `INSERT` per
/// table on PostgreSQL; on SQLite, one per table and 100 users
/// (`sqlite.rs`, `CHUNK`).
const BATCH: usize = 500;

/// A seed shared by its workers (one per connection): which numbers each
/// batch takes, how many users are in, and whether a worker failed (then
/// the others stop after their batch in progress).
///
/// Users are numbered on from the users already there. A number may be
/// taken (by a user created by hand, or a concurrent seed): the unique
/// indexes skip its user (username and email go together), and its place
/// goes back to the plan for the next batch to number on.
pub struct SeedPlan<'a> {
    pub environment: Uuid,
    pub now: DateTime<Utc>,
    wanted: usize,
    state: Mutex<SeedState>,
    failed: AtomicBool,
    progress: &'a (dyn Fn(usize) + Send + Sync),
}

#[derive(Default)]
struct SeedState {
    next_number: i64,
    /// Users in batches handed out and not yet found skipped.
    claimed: usize,
    added: usize,
    /// The ids each batch added, by its first number.
    batches: Vec<(i64, Vec<Uuid>)>,
}

impl<'a> SeedPlan<'a> {
    /// `wanted` users after number `existing`.
    pub fn new(
        environment: Uuid,
        now: DateTime<Utc>,
        wanted: usize,
        existing: i64,
        progress: &'a (dyn Fn(usize) + Send + Sync),
    ) -> Self {
        SeedPlan {
            environment,
            now,
            wanted,
            state: Mutex::new(SeedState {
                next_number: existing + 1,
                ..SeedState::default()
            }),
            failed: AtomicBool::new(false),
            progress,
        }
    }

    /// The next batch's rows and first number, or `None` once every wanted
    /// user is in a batch (or a worker failed).
    pub fn next_batch(&self) -> Option<(i64, DemoRows)> {
        let (first, size) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let size = BATCH.min(self.wanted - state.claimed);
            if size == 0 || self.failed.load(Ordering::Relaxed) {
                return None;
            }
            let first = state.next_number;
            state.next_number += size as i64;
            state.claimed += size;
            (first, size)
        };
        let mut rows = DemoRows::default();
        for n in first..first + size as i64 {
            rows.append(demo_user(self.environment, n, self.now));
        }
        Some((first, rows))
    }

    /// Batch `first` of `size` users is in, but for those not in `added`.
    pub fn batch_done(&self, first: i64, size: usize, added: Vec<DbId>) {
        let added_now = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.claimed -= size - added.len();
            state.added += added.len();
            state
                .batches
                .push((first, added.into_iter().map(|id| id.0).collect()));
            state.added
        };
        (self.progress)(added_now);
    }

    /// A worker failed: no more batches.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// The new users' ids, in number order.
    pub fn into_ids(self) -> Vec<Uuid> {
        let mut state = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        state.batches.sort_unstable_by_key(|(first, _)| *first);
        state.batches.into_iter().flat_map(|(_, ids)| ids).collect()
    }
}
