//! Command line: serve | migrate | schema | seed.

use std::io::Write;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use usergraph::config::{DatabaseArgs, ServeArgs};
use usergraph::repo::SystemClock;
use usergraph::{default_scope, App};

/// GraphQL API server for user records.
#[derive(Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Flags of `serve`, the command run when none is given.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Add deterministic demo users; prints each new user id on its own line.
    Seed {
        /// How many users to add.
        #[arg(long, default_value_t = 10)]
        users: usize,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "usergraph=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        None => usergraph::serve(cli.serve).await,
        Some(Command::Serve(args)) => usergraph::serve(args).await,
        Some(Command::Migrate(args)) => {
            usergraph::db::migrate(&args.database_url).await?;
            println!("migrations applied");
            Ok(())
        }
        Some(Command::Schema) => {
            print!("{}", usergraph::graphql::sdl());
            Ok(())
        }
        Some(Command::Seed { users, database }) => {
            let app = App::open(&database, Arc::new(SystemClock)).await?;
            let ids = app.repo.seed_users(default_scope(), users).await?;
            let mut out = std::io::stdout().lock();
            for id in ids {
                writeln!(out, "{id}")?;
            }
            Ok(())
        }
    }
}
