//! `protime changes`: the store's change feed as JSON lines, for any language to consume;
//! `--follow` keeps waiting for new changes (LISTEN/NOTIFY on PostgreSQL, polling on SQLite).

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use protime_webhooks::sink::{FeedCursor, FeedEntry, SinkRead as _};

use crate::Outcome;
use crate::signals::shutdown_signal;
use crate::store::{Store, StoreLocation};

/// Entries read per query.
const PAGE: usize = 1000;
/// How often SQLite is polled, and how long a PostgreSQL follower waits for a notification
/// before looking anyway (a notification can be lost with its connection).
const SQLITE_POLL: Duration = Duration::from_millis(200);
const NOTIFICATION_WAIT: Duration = Duration::from_secs(1);

/// Arguments of `protime changes`.
#[derive(Debug, clap::Args)]
pub(crate) struct ChangesArgs {
    /// The store (an SQLite file, `sqlite:PATH` or `postgres://…`; see `protime receive --help`).
    #[arg(
        long,
        env = "PROTIME_STORE",
        default_value = "protime.sqlite",
        value_name = "STORE"
    )]
    store: StoreLocation,
    /// Print the changes after this cursor (the `cursor` of the last line you processed);
    /// 0, the default, is the beginning.
    #[arg(long, default_value_t = 0, value_name = "CURSOR")]
    since: u64,
    /// Keep running and print new changes as they are committed, until SIGINT or SIGTERM
    /// (exit 0).
    #[arg(long)]
    follow: bool,
}

/// One output line:
/// `{"cursor":N,"origin":"webhook"|"sync"|"erasure","received_at":"…","change":{…}}`,
/// `change` in the delivery format (`changeType` and `data`; an `erasure` is a Delete).
fn line(entry: &FeedEntry) -> anyhow::Result<String> {
    let value = serde_json::json!({
        "cursor": entry.cursor.0,
        "origin": entry.origin,
        "received_at": crate::store::rfc3339(entry.received_at),
        "change": entry.change,
    });
    Ok(serde_json::to_string(&value)?)
}

/// Prints every entry after `cursor`; returns the new cursor. `Ok(None)`: standard output
/// was closed (e.g. `| head`), which ends the command quietly.
async fn drain(store: &Store, mut cursor: FeedCursor) -> anyhow::Result<Option<FeedCursor>> {
    let stdout = std::io::stdout();
    loop {
        let page = store
            .changes(cursor, PAGE)
            .await
            .context("cannot read the change feed")?;
        let mut out = stdout.lock();
        for entry in &page.entries {
            let text = line(entry)?;
            if writeln!(out, "{text}").is_err() {
                return Ok(None);
            }
        }
        if out.flush().is_err() {
            return Ok(None);
        }
        cursor = page.next;
        if page.entries.len() < PAGE {
            return Ok(Some(cursor));
        }
    }
}

pub(crate) async fn run(args: ChangesArgs) -> anyhow::Result<Outcome> {
    // Only a follower handles the signals (to exit 0); a plain read keeps their default.
    let stop = args.follow.then(shutdown_signal);
    let store = args.store.open(None).await?;
    // Listening starts before the first read, so that a commit between the two is never
    // left waiting for the next poll.
    let mut notifications = match (&store, args.follow) {
        (Store::Postgres(postgres), true) => Some(postgres.notifications().await?),
        _ => None,
    };
    let mut cursor = FeedCursor(args.since);
    let Some(next) = drain(&store, cursor).await? else {
        return Ok(Outcome::Success);
    };
    cursor = next;
    let Some(stop) = stop else {
        store.close().await?;
        return Ok(Outcome::Success);
    };
    tokio::pin!(stop);
    loop {
        let wait = async {
            match (&store, notifications.as_mut()) {
                (Store::Postgres(postgres), Some(listening)) => {
                    if listening.wait(NOTIFICATION_WAIT).await.is_err() {
                        // The LISTEN session is gone: poll until a new one is up.
                        tracing::warn!("notifications lost; reconnecting");
                        tokio::time::sleep(NOTIFICATION_WAIT).await;
                        notifications = postgres.notifications().await.ok();
                    }
                }
                (Store::Postgres(postgres), None) => {
                    tokio::time::sleep(NOTIFICATION_WAIT).await;
                    notifications = postgres.notifications().await.ok();
                }
                (Store::Sqlite(_), _) => tokio::time::sleep(SQLITE_POLL).await,
            }
        };
        tokio::select! {
            () = &mut stop => break,
            () = wait => {}
        }
        match drain(&store, cursor).await? {
            Some(next) => cursor = next,
            None => break,
        }
    }
    store.close().await?;
    Ok(Outcome::Success)
}
