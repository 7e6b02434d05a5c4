//! `protime`: consume Protime clockings webhooks from the terminal.
//!
//! - `protime demo` — sandbox + receiver + SQLite store in one process, a stream of signed
//!   changes with duplicates and reordering, and a check that the store equals the sandbox.
//! - `protime sandbox` — the local Protime stand-in alone.
//! - `protime receive` — the production webhook receiver.
//! - `protime webhooks create|list|get|delete`, `protime sync` — talk to a tenant (or sandbox).
//! - `protime changes` — the store's change feed as JSON lines (`--follow` to keep waiting).
//! - `protime purge`, `protime forget` — retention by age and erasure of a person.
//!
//! Every command that keeps clockings takes one `--store`: an SQLite file (a path or
//! `sqlite:PATH`) or a PostgreSQL database (`postgres://…`).
//! - `protime validate FILE…` — check delivery bodies against the validation rules.
//! - `protime schema` — write the JSON Schemas.

mod admin;
mod alerts;
mod api;
mod capture;
mod changes;
mod clockings;
mod dead_letters;
mod demo;
mod doctor;
mod keyfile;
mod limits;
mod receive;
mod retention;
mod sandbox;
mod schema;
mod serve;
mod signals;
mod signature_settings;
mod store;
mod trigger;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Consume Protime clockings webhooks safely: verify, validate, order, store.
#[derive(Debug, Parser)]
#[command(name = "protime", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `protime_webhooks=debug`.
    /// Default: `warn`, and for `receive` also one line per delivery
    /// (`warn,protime::delivery=info`; `receive --quiet` leaves it out).
    #[arg(long, global = true, env = "PROTIME_LOG")]
    log: Option<String>,
    /// Log lines as text or as JSON objects (one per line, for log collectors). Colours only
    /// when standard error is a terminal and `NO_COLOR` is not set.
    #[arg(long, global = true, env = "PROTIME_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run sandbox, receiver and store (SQLite by default) together and check the result end to end.
    Demo(demo::DemoArgs),
    /// Run the local Protime sandbox (token endpoint, webhooks, clockings, signed deliveries).
    Sandbox(sandbox::SandboxArgs),
    /// Run the receiver and keep the subscription alive (renewals, keys, orphans) in one
    /// long-running process.
    Serve(Box<serve::ServeArgs>),
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
    /// Show the clockings the store holds (list, or one by id).
    #[command(subcommand)]
    Clockings(clockings::ClockingsCommand),
    /// Show the dead letters (authentic deliveries that failed validation) and replay them
    /// after a fix.
    #[command(subcommand)]
    DeadLetters(dead_letters::DeadLettersCommand),
    /// Apply retention: remove raw bodies, change-log entries, dead letters and capture
    /// files older than the limits given (`--dry-run` counts only). Never the current state.
    Purge(retention::PurgeArgs),
    /// Erase a person: their clockings, change-log entries and dead letters (GDPR erasure);
    /// each clocking stays as an erased tombstone and the change feed carries the erasure.
    Forget(retention::ForgetArgs),
    /// Make one change in a running `protime sandbox` (insert, update, delete, a partial or
    /// an invalid event) and deliver it to its webhooks.
    Trigger(trigger::TriggerArgs),
    /// Validate delivery bodies (files, or `-` for standard input).
    Validate(validate::ValidateArgs),
    /// Write the JSON Schemas of deliveries and clockings.
    Schema(schema::SchemaArgs),
    /// Diagnose an integration (e.g. find the signature scheme of captured deliveries).
    #[command(subcommand)]
    Doctor(doctor::DoctorCommand),
    /// Print a shell completion script, e.g. `protime completions bash >
    /// ~/.local/share/bash-completion/completions/protime`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Formats of the log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How a command ended, when it did not fail.
pub(crate) enum Outcome {
    /// Everything as expected: exit 0.
    Success,
    /// The command ran, and its answer is "no" (invalid files, a demo mismatch): exit 1.
    Negative,
    /// The command ran, but could not judge some of its inputs (unreadable files): exit 2.
    Incomplete,
}

fn init_tracing(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("invalid --log filter {filter:?}: {e}"))?;
    // Colour codes only for a person at a terminal: never into files, pipes or collectors.
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot initialize logging: {e}"))
}

/// The log filter when `--log` is not given.
fn default_filter(command: &Command) -> &'static str {
    match command {
        Command::Receive(args) if !args.quiet() => "warn,protime::delivery=info",
        Command::Serve(args) if !args.quiet() => "warn,protime::delivery=info",
        _ => "warn",
    }
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Sandbox(args) => sandbox::run(args).await,
        Command::Receive(args) => receive::run(args).await,
        Command::Serve(args) => serve::run(*args).await,
        Command::Webhooks(command) => api::run_webhooks(command).await,
        Command::Sync(args) => api::run_sync(args).await,
        Command::Changes(args) => changes::run(args).await,
        Command::Clockings(command) => clockings::run(command).await,
        Command::DeadLetters(command) => dead_letters::run(command).await,
        Command::Purge(args) => retention::run_purge(args).await,
        Command::Forget(args) => retention::run_forget(args).await,
        Command::Trigger(args) => trigger::run(args).await,
        Command::Validate(args) => validate::run(&args),
        Command::Schema(args) => schema::run(&args),
        Command::Doctor(command) => doctor::run(command),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            use std::io::Write as _;
            // Generated into memory: clap_complete panics when its writer fails (a closed
            // pipe), and this way a closed pipe is an ordinary error.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "protime", &mut script);
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(&script).and_then(|()| stdout.flush()) {
                Ok(()) => Ok(Outcome::Success),
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                    Ok(Outcome::Success)
                }
                Err(error) => {
                    Err(anyhow::Error::new(error).context("cannot write the completion script"))
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = cli
        .log
        .clone()
        .unwrap_or_else(|| default_filter(&cli.command).to_owned());
    if let Err(error) = init_tracing(&filter, cli.log_format) {
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
        Ok(Outcome::Incomplete) => ExitCode::from(2),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
