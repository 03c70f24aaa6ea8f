//! Command-line flags, each with an environment-variable fallback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// The embedded default: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./usergraph.db";

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
            Some(path) if !path.is_empty() => Ok(DatabaseUrl::Sqlite(PathBuf::from(path))),
            _ => Err(format!(
                "unsupported database URL {url:?}: expected postgres://…, postgresql://… or sqlite://PATH"
            )),
        }
    }
}

/// Database flags shared by every command that opens the database.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// postgres://… (or postgresql://…) for PostgreSQL, sqlite://PATH for the embedded database.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: DatabaseUrl,

    /// Most connections the pool opens.
    #[arg(long, env = "USERGRAPH_MAX_CONNECTIONS", default_value_t = 16)]
    pub max_connections: usize,
}

/// Flags of `usergraph serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "USERGRAPH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_database_urls() {
        assert_eq!(
            "sqlite://./usergraph.db".parse(),
            Ok(DatabaseUrl::Sqlite(PathBuf::from("./usergraph.db")))
        );
        assert_eq!(
            "sqlite:///var/lib/usergraph/db.sqlite".parse(),
            Ok(DatabaseUrl::Sqlite(PathBuf::from(
                "/var/lib/usergraph/db.sqlite"
            )))
        );
        assert!(matches!(
            "postgresql://h/db".parse(),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!("mysql://h/db".parse::<DatabaseUrl>().is_err());
        assert!("sqlite://".parse::<DatabaseUrl>().is_err());
    }
}
