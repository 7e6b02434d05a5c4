//! Reading a store's change feed: every applied change once, in commit order, page by page,
//! resumable from the last cursor you processed — how a downstream system (a warehouse
//! loader, a payroll export) follows the clockings without its own webhook.
//!
//! ```sh
//! cargo run -p protime-examples --example change_feed
//! ```
//!
//! The store is a fresh SQLite file in the temporary directory, removed at the end; with
//! PostgreSQL (`protime_store_postgres::PgStore`) the feed is read the same way, through
//! `SinkRead::changes`.

use protime_store_sqlite::SqliteStore;
use protime_webhooks::sink::{Delivery, FeedCursor, SinkRead, WebhookOrigin};

/// Records one delivery body as the receiver would after verifying its signature.
async fn deliver(
    store: &SqliteStore,
    body: &'static str,
) -> Result<(), Box<dyn std::error::Error>> {
    let change = protime_model::parse_delivery(body.as_bytes())?;
    let what = format!(
        "clocking {} version {}",
        change.id(),
        change.change_version()
    );
    let origin = WebhookOrigin::new(bytes::Bytes::from_static(body.as_bytes()), "example-key");
    let receipt = store.record(Delivery::webhook(change, origin)).await?;
    println!("  {what}: {}", receipt.name());
    Ok(())
}

/// Reads every feed entry after `cursor`, `page_size` at a time; returns the cursor to resume
/// from. Store it with whatever you did with the entries, in the same transaction.
async fn follow(
    store: &SqliteStore,
    mut cursor: FeedCursor,
    page_size: usize,
) -> Result<FeedCursor, Box<dyn std::error::Error>> {
    loop {
        let page = store.changes(cursor, page_size).await?;
        if page.entries.is_empty() {
            return Ok(cursor);
        }
        for entry in &page.entries {
            // The change as JSON (the wire format), whatever fields it carries.
            println!(
                "  feed {:>3}  {:<7} {}",
                entry.cursor.0,
                entry.origin,
                serde_json::to_string(&entry.change)?
            );
        }
        cursor = page.next;
    }
}

const INSERT_19250: &str = r#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0000090200004BD0000A","id":19250,"person":{"id":1},"date":"2026-01-15","timeOfDayInMinutes":510,"kind":"InOut"}}"#;
const INSERT_19251: &str = r#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0000090200004BD0000B","id":19251,"person":{"id":1},"date":"2026-01-15","timeOfDayInMinutes":1020,"kind":"InOut"}}"#;
const UPDATE_19250: &str = r#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0000090200004BD0000C","id":19250,"person":{"id":1},"date":"2026-01-15","timeOfDayInMinutes":515,"kind":"InOut"}}"#;
const DELETE_19251: &str =
    r#"{"changeType":"Delete","data":{"changeVersion":"0000090200004BD0000D","id":19251}}"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let directory = std::env::temp_dir().join(format!("protime-feed-{}", std::process::id()));
    std::fs::create_dir_all(&directory)?;
    let store = SqliteStore::open(directory.join("clockings.sqlite"))?;

    println!("deliveries, as a receiver records them (a redelivery and a late one included):");
    deliver(&store, INSERT_19250).await?;
    deliver(&store, INSERT_19251).await?;
    deliver(&store, UPDATE_19250).await?;
    deliver(&store, INSERT_19250).await?; // older than the update: stale, not in the feed
    deliver(&store, UPDATE_19250).await?; // the same version again: duplicate, not in the feed

    println!("the feed from the start, two entries per page:");
    let cursor = follow(&store, FeedCursor::START, 2).await?;
    println!("caught up at cursor {}", cursor.0);

    println!("later:");
    deliver(&store, DELETE_19251).await?;
    println!(
        "the feed after cursor {} (nothing is seen twice):",
        cursor.0
    );
    let resumed = follow(&store, cursor, 2).await?;

    let first = store.changes(FeedCursor::START, 100).await?.entries.len();
    tokio::task::spawn_blocking(move || store.close()).await??;
    std::fs::remove_dir_all(&directory)?;
    if first == 4 && resumed > cursor {
        println!(
            "4 applied changes in the feed, resumed from {} to {}",
            cursor.0, resumed.0
        );
        Ok(())
    } else {
        Err(format!("expected 4 feed entries, found {first}").into())
    }
}
