//! Command line: serve | migrate | schema | seed | environment | token.

use std::io::Write;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use usergraph::config::{DatabaseArgs, LogFormat, ServeArgs};
use usergraph::repo::{Scope, SystemClock};
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

    /// How log lines are written to stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "USERGRAPH_LOG_FORMAT",
        default_value_t
    )]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Print the OpenAPI document of the REST routes.
    Openapi,
    /// Add deterministic demo users; prints each new user id on its own line.
    Seed {
        /// How many users to add.
        #[arg(long, default_value_t = 10)]
        users: usize,
        /// The environment to fill (default: the default environment).
        #[arg(long)]
        environment: Option<uuid::Uuid>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Manage environments (tenants).
    #[command(subcommand)]
    Environment(EnvironmentCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum EnvironmentCommand {
    /// Create an environment; prints its id on the last line.
    Create {
        /// A name to recognise the environment by.
        #[arg(long)]
        name: String,
        /// User fields (GraphQL names, comma-separated) this environment
        /// requires; `User.missingFields` lists those a user lacks.
        #[arg(long, value_delimiter = ',')]
        require: Vec<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token; prints it on the last line (it is shown only once).
    Create {
        /// The environment the token acts in (default: the default environment).
        #[arg(long)]
        environment: Option<uuid::Uuid>,
        /// A label to recognise the token by.
        #[arg(long, default_value = "api")]
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke an API token, given the token itself or its id.
    Revoke {
        /// The token (`ugt_…`) or the id `token create` printed with it.
        token: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

fn scope(environment: Option<uuid::Uuid>) -> Scope {
    environment.map_or_else(default_scope, Scope::of_environment)
}

async fn open(database: &DatabaseArgs) -> anyhow::Result<App> {
    App::open(database, Arc::new(SystemClock)).await
}

/// A progress line on stderr while seeding, when stderr is a terminal
/// (stdout carries the ids, for scripts).
fn seed_progress(total: usize) -> impl Fn(usize) + Send + Sync {
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    move |done| {
        if terminal {
            let percent = done * 100 / total.max(1);
            eprint!("\rseeding: {done}/{total} users ({percent}%)");
            if done >= total {
                eprintln!();
            }
        }
    }
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let serve = match &cli.command {
        None => Some(&cli.serve),
        Some(Command::Serve(args)) => Some(args),
        Some(_) => None,
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(args) = serve {
        // On PostgreSQL the shards serve (`shards.rs`), and these threads
        // only start up and do background work; on SQLite they serve.
        runtime.worker_threads(args.threads());
    }
    runtime.enable_all().build()?.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "usergraph=info,warn".into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        // Spans' fields (the request id) on every line, flattened.
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let mut out = std::io::stdout();
    match cli.command {
        None => usergraph::serve(cli.serve).await?,
        Some(Command::Serve(args)) => usergraph::serve(args).await?,
        Some(Command::Migrate(args)) => {
            usergraph::db::migrate(&args.url()).await?;
            writeln!(out, "migrations applied")?;
        }
        Some(Command::Schema) => write!(out, "{}", usergraph::graphql::sdl())?,
        Some(Command::Openapi) => write!(out, "{}", usergraph::http::openapi::document_text())?,
        Some(Command::Seed {
            users,
            environment,
            database,
        }) => {
            let app = open(&database).await?;
            let ids = app
                .repo
                .seed_users_reporting(scope(environment), users, &seed_progress(users))
                .await?;
            let mut out = std::io::BufWriter::new(out.lock());
            for id in ids {
                writeln!(out, "{id}")?;
            }
        }
        Some(Command::Environment(EnvironmentCommand::Create {
            name,
            require,
            database,
        })) => {
            let app = open(&database).await?;
            let id = app.repo.create_environment(&name, &require).await?;
            writeln!(out, "created environment {name:?}:\n{id}")?;
        }
        Some(Command::Token(TokenCommand::Create {
            environment,
            name,
            database,
        })) => {
            let app = open(&database).await?;
            let environment = scope(environment).environment_id;
            let token = app.repo.create_token(environment, &name).await?;
            writeln!(
                out,
                "created token {} for environment {environment}; it is shown only this once:\n{}",
                token.id, token.token
            )?;
        }
        Some(Command::Token(TokenCommand::Revoke { token, database })) => {
            let app = open(&database).await?;
            if !app.repo.revoke_token(&token).await? {
                anyhow::bail!("no active token matches");
            }
            writeln!(out, "token revoked")?;
        }
    }
    Ok(())
}
