//! A receiver process for tests and benchmarks.
//!
//! `protime-test-receiver --mode sqlite|memory|bare --key KEY [--db FILE] [--port N]`
//! serves `POST /` on 127.0.0.1 and prints `listening on 127.0.0.1:PORT` once ready:
//! - `sqlite`: the real receiver (verification + validation) with the SQLite store;
//! - `sqlite-normal`: the same with `Durability::ProcessCrash` (`synchronous=NORMAL`);
//! - `memory`: the real receiver with the in-memory sink;
//! - `bare`: an axum handler that answers 200 and does nothing (the benchmark's baseline).
//!
//! The crash test kills it with SIGKILL in the middle of a stream of deliveries.

use std::process::ExitCode;
use std::sync::Arc;

use protime_webhooks::receiver::{ReceiverConfig, router};
use protime_webhooks::signature::{SignatureScheme, Verifier, WebhookKey};
use protime_webhooks::{DeliverySink, InMemorySink};

struct Args {
    mode: String,
    key: String,
    db: Option<String>,
    port: u16,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut mode, mut key, mut db, mut port) = (None, None, None, 0_u16);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--mode" => mode = Some(value),
            "--key" => key = Some(value),
            "--db" => db = Some(value),
            "--port" => port = value.parse().map_err(|_| format!("bad port {value}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(Args {
        mode: mode.ok_or("--mode is required")?,
        key: key.ok_or("--key is required")?,
        db,
        port,
    })
}

async fn bare_handler() -> &'static str {
    "{\"outcome\":\"applied\"}"
}

async fn serve(args: Args) -> Result<(), String> {
    let app = if args.mode == "bare" {
        axum::Router::new().route("/", axum::routing::post(bare_handler))
    } else {
        let key = WebhookKey::new(args.key).map_err(|e| e.to_string())?;
        let verifier =
            Verifier::new(SignatureScheme::default(), [key]).map_err(|e| e.to_string())?;
        let sink: Arc<dyn DeliverySink> = match args.mode.as_str() {
            "memory" => Arc::new(InMemorySink::default()),
            "sqlite" | "sqlite-normal" => {
                let db = args.db.ok_or("--db is required for the sqlite modes")?;
                let durability = if args.mode == "sqlite" {
                    protime_webhooks::store::Durability::PowerLoss
                } else {
                    protime_webhooks::store::Durability::ProcessCrash
                };
                Arc::new(
                    protime_webhooks::store::SqliteStore::open_with(db, durability)
                        .map_err(|e| e.to_string())?,
                )
            }
            other => return Err(format!("unknown mode {other}")),
        };
        router(verifier, ReceiverConfig::default(), sink)
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {address}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
