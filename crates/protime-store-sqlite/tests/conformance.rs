//! The sink conformance suite against the SQLite store (a fresh file per check), with both
//! durability settings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use protime_store_sqlite::{Durability, SqliteStore};
use protime_webhooks::sink::conformance;

mod common;
use common::TempDir;

async fn run(durability: Durability, name: &str) {
    // Kept until the run ends, then removed.
    let mut dirs = Vec::new();
    let result = conformance::run(|| {
        let dir = TempDir::new(name);
        let path = dir.db();
        dirs.push(dir);
        async move { Arc::new(SqliteStore::open_with(path, durability).unwrap()) }
    })
    .await;
    drop(dirs);
    if let Err(failures) = result {
        panic!("{failures}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_store_conforms() {
    run(Durability::PowerLoss, "full").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_store_conforms_with_process_crash_durability() {
    run(Durability::ProcessCrash, "normal").await;
}
