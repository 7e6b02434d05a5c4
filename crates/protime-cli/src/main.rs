//! `protime`: consume Protime clockings webhooks from the terminal.
//!
//! - `protime demo` — sandbox + receiver + SQLite store in one process, a stream of signed
//!   changes with duplicates and reordering, and a check that the store equals the sandbox.
//! - `protime sandbox` — the local Protime stand-in alone.
//! - `protime receive` — the production webhook receiver.
//! - `protime webhooks create|list|get|delete`, `protime sync` — talk to a tenant (or sandbox).
//! - `protime changes` — the store's change feed as JSON lines (`--follow` to keep waiting).
//!
//! Every command that keeps clockings takes one `--store`: an SQLite file (a path or
//! `sqlite:PATH`) or a PostgreSQL database (`postgres://…`).
//! - `protime validate FILE…` — check delivery bodies against the validation rules.
//! - `protime schema` — write the JSON Schemas.

mod api;
mod changes;
mod demo;
mod receive;
mod sandbox;
mod schema;
mod store;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Consume Protime clockings webhooks safely: verify, validate, order, store.
#[derive(Debug, Parser)]
#[command(name = "protime", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `protime_webhooks=debug`.
    #[arg(long, global = true, env = "PROTIME_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run sandbox, receiver and store (SQLite by default) together and check the result end to end.
    Demo(demo::DemoArgs),
    /// Run the local Protime sandbox (token endpoint, webhooks, clockings, signed deliveries).
    Sandbox(sandbox::SandboxArgs),
    /// Run the webhook receiver with a store (SQLite file or PostgreSQL).
    Receive(receive::ReceiveArgs),
    /// Manage webhook subscriptions.
    #[command(subcommand)]
    Webhooks(api::WebhooksCommand),
    /// Initial sync of clockings into the store, then subscribe (a full re-initialization).
    Sync(api::SyncArgs),
    /// Print the store's change feed as JSON lines (resumable with --since; --follow waits
    /// for new changes).
    Changes(changes::ChangesArgs),
    /// Validate delivery bodies (files, or `-` for standard input).
    Validate(validate::ValidateArgs),
    /// Write the JSON Schemas of deliveries and clockings.
    Schema(schema::SchemaArgs),
}

/// How a command ended, when it did not fail.
pub(crate) enum Outcome {
    /// Everything as expected: exit 0.
    Success,
    /// The command ran, and its answer is "no" (invalid files, a demo mismatch): exit 1.
    Negative,
}

fn init_tracing(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("invalid --log filter {filter:?}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot initialize logging: {e}"))
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Sandbox(args) => sandbox::run(args).await,
        Command::Receive(args) => receive::run(args).await,
        Command::Webhooks(command) => api::run_webhooks(command).await,
        Command::Sync(args) => api::run_sync(args).await,
        Command::Changes(args) => changes::run(args).await,
        Command::Validate(args) => validate::run(&args),
        Command::Schema(args) => schema::run(&args),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = init_tracing(&cli.log) {
        eprintln!("error: {error:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Negative) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
