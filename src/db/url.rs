//! Which database to open, as named by a URL.

use std::path::PathBuf;
use std::str::FromStr;

/// Where the data lives: PostgreSQL or an embedded SQLite file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A `postgres://` or `postgresql://` URL, passed on as is.
    Postgres(String),
    /// The path of a `sqlite://PATH` URL.
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    /// True for the embedded backend.
    pub fn is_embedded(&self) -> bool {
        matches!(self, DatabaseUrl::Sqlite(_))
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Postgres(url) => f.write_str(url),
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        match url.strip_prefix("sqlite://") {
            // Each pooled connection would open its own empty in-memory database.
            Some(path) if path.starts_with(":memory:") || path.contains("mode=memory") => {
                Err("an in-memory SQLite database cannot be shared by a pool: name a file".into())
            }
            Some(path) if !path.is_empty() => Ok(DatabaseUrl::Sqlite(PathBuf::from(path))),
            _ => Err(format!(
                "unsupported database URL {url:?}: expected postgres://…, postgresql://… or sqlite://PATH"
            )),
        }
    }
}
