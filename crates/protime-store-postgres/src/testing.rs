//! Test support (feature `testing`): a fresh schema per test on a real server, so tests run
//! in parallel and never see each other's rows.
//!
//! The server is named by `DATABASE_URL`, or by the `PG*` variables. When neither is set,
//! or the server cannot be reached, [`TestDatabase::create`] says so loudly on standard
//! error and returns `None` (the caller returns early: the test is skipped) — unless
//! `PROTIME_REQUIRE_POSTGRES=1`, which makes that a panic, so that CI cannot pass with the
//! PostgreSQL tests skipped.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio_postgres::NoTls;

use crate::PgStoreConfig;

/// Set to `1` to make a missing server a test failure instead of a skip.
pub const REQUIRE_VARIABLE: &str = "PROTIME_REQUIRE_POSTGRES";

/// A schema of its own on the test server, dropped by [`TestDatabase::cleanup`].
#[derive(Debug, Clone)]
pub struct TestDatabase {
    base_url: String,
    schema: String,
    config: PgStoreConfig,
}

fn required() -> bool {
    std::env::var(REQUIRE_VARIABLE).is_ok_and(|value| value == "1")
}

fn unavailable(test: &str, why: &str) -> Option<TestDatabase> {
    assert!(
        !required(),
        "{test}: PostgreSQL is required ({REQUIRE_VARIABLE}=1) but {why}"
    );
    eprintln!(
        "\n*** SKIPPED {test}: {why}. Start PostgreSQL and set DATABASE_URL (see README, \"PostgreSQL\"). ***\n"
    );
    None
}

impl TestDatabase {
    /// A fresh schema for `test` (its name goes into the schema's), or `None` when no server
    /// is configured or reachable (see the [module documentation](self)).
    pub async fn create(test: &str) -> Option<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base_url = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::vars().any(|(name, _)| name == "PGHOST" || name == "PGUSER") => {
                String::new()
            }
            _ => return unavailable(test, "neither DATABASE_URL nor PGHOST/PGUSER is set"),
        };
        let tag: String = test
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(24)
            .collect::<String>()
            .to_ascii_lowercase();
        let schema = format!(
            "t_{tag}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let config = match PgStoreConfig::from_url(&base_url).and_then(|c| c.with_schema(&schema)) {
            Ok(config) => config.with_max_connections(4),
            Err(error) => return unavailable(test, &format!("the settings are invalid: {error}")),
        };
        match crate::connect(&config, NoTls).await {
            Ok((client, connection)) => {
                drop(client);
                let _ = connection.await;
            }
            Err(error) => return unavailable(test, &error.to_string()),
        }
        Some(Self {
            base_url,
            schema,
            config,
        })
    }

    /// The store settings for this schema.
    pub fn config(&self) -> PgStoreConfig {
        self.config.clone()
    }

    /// A URL naming this schema (`…?schema=NAME`), for processes started by the test.
    pub fn url(&self) -> String {
        let separator = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let base = if self.base_url.is_empty() {
            "postgres://"
        } else {
            &self.base_url
        };
        format!("{base}{separator}schema={}", self.schema)
    }

    /// The schema's name.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// A plain session on the test database (for checks the store's API does not offer).
    pub async fn session(&self) -> Result<tokio_postgres::Client, crate::StoreError> {
        let (client, connection) = crate::connect(&self.config, NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// Drops the schema and everything in it.
    pub async fn cleanup(self) {
        if let Ok(client) = self.session().await {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                .await;
        }
    }
}
