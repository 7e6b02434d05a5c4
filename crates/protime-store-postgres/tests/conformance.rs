//! The sink conformance suite against the PostgreSQL store, a fresh schema per check.
//! Needs a server (DATABASE_URL or PG*); skipped loudly without one, unless
//! PROTIME_REQUIRE_POSTGRES=1 (as in CI), which makes a missing server a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use protime_store_postgres::PgStore;
use protime_store_postgres::testing::TestDatabase;
use protime_webhooks::sink::conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_conforms() {
    if TestDatabase::create("conformance").await.is_none() {
        return;
    }
    // Kept until the run ends, then dropped.
    let databases = Arc::new(std::sync::Mutex::new(Vec::new()));
    let result = conformance::run(|| {
        let databases = Arc::clone(&databases);
        async move {
            let database = TestDatabase::create("conformance").await.unwrap();
            let store = PgStore::connect_with(database.config()).await.unwrap();
            databases.lock().unwrap().push(database);
            Arc::new(store)
        }
    })
    .await;
    let databases = std::mem::take(&mut *databases.lock().unwrap());
    for database in databases {
        database.cleanup().await;
    }
    if let Err(failures) = result {
        panic!("{failures}");
    }
}
