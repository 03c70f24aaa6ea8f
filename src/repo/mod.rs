//! All SQL lives here: users, their nested records, environments, demo data.

mod children;
mod nodes;
mod seed;
mod tokens;
mod users;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::models::UserRow;
use crate::db::Db;
use crate::domain::FieldError;

pub use children::Children;
pub use nodes::NodeRow;
pub use seed::{EnvironmentError, DEFAULT_ENVIRONMENT_ID};
pub use tokens::{NewToken, TokenError};
pub use users::{ChildChange, DeleteOutcome, UserFilter, UserPosition};

/// Where "now" comes from; tests fix it to prove the version rules.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The repository: every query the server runs.
#[derive(Clone)]
pub struct Repo {
    db: Db,
    clock: Arc<dyn Clock>,
}

/// A user with all its nested records, read in one transaction.
#[derive(Debug, Clone)]
pub struct UserSnapshot {
    pub user: UserRow,
    pub children: Children,
}

/// What a compare-and-set update did.
#[derive(Debug)]
pub enum UpdateOutcome {
    /// The change was written (or the input was empty); the user as it now is.
    Updated(UserSnapshot),
    /// The stored version is not the expected one; the user as it now is.
    Conflict(UserSnapshot),
    /// No such user in this environment.
    NotFound,
    /// The input broke these rules; nothing was written.
    Invalid(Vec<FieldError>),
}

impl Repo {
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        Repo { db, clock }
    }

    /// The pool this repository queries.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

/// The environment a request acts in: the scope of every read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub environment_id: Uuid,
}
