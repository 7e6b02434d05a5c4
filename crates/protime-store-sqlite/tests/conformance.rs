//! The sink conformance suite against the SQLite store (a fresh file per check), with both
//! durability settings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use protime_store_sqlite::{Durability, SqliteStore};
use protime_webhooks::sink::conformance;

fn fresh_file(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "protime-conformance-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("store.sqlite3")
}

async fn run(durability: Durability, name: &str) {
    let mut dirs = Vec::new();
    let result = conformance::run(|| {
        let path = fresh_file(name);
        dirs.push(path.parent().unwrap().to_path_buf());
        async move { Arc::new(SqliteStore::open_with(path, durability).unwrap()) }
    })
    .await;
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
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
