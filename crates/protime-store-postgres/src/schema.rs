//! Schema migrations (refinery, SQL files in `migrations/`), applied when a store connects:
//! one replica at a time, a database newer than this code refused.

use std::time::Duration;

use tokio_postgres::NoTls;

use crate::{PgStoreConfig, StoreError};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The table refinery keeps the applied migrations in (in the store's schema).
const HISTORY_TABLE: &str = "protime_schema_history";

/// Key of the advisory lock that makes migrating exclusive across replicas (any constant
/// that other applications are unlikely to use: "protime" in ASCII).
const MIGRATION_LOCK: i64 = 0x0070_726f_7469_6d65;

/// Longest a replica waits for another one's migration.
const MIGRATION_WAIT: Duration = Duration::from_secs(120);

/// The newest schema version this code knows.
pub(crate) fn latest_version() -> i64 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|migration| i64::from(migration.version()))
        .max()
        .unwrap_or(0)
}

/// Creates the schema if needed and applies the missing migrations, holding an advisory
/// lock so that replicas starting together migrate one after the other; refuses a database
/// whose schema is newer than this code.
pub(crate) async fn migrate(config: &PgStoreConfig) -> Result<(), StoreError> {
    let (mut client, connection) = crate::connect(config, NoTls).await?;
    let driver = tokio::spawn(connection);
    let result = tokio::time::timeout(MIGRATION_WAIT, migrate_on(&mut client, config))
        .await
        .unwrap_or(Err(StoreError::Timeout {
            what: "waiting for the schema migration",
            after: MIGRATION_WAIT,
        }));
    // Closing the session releases the advisory lock, whatever happened.
    drop(client);
    let _ = driver.await;
    result
}

async fn migrate_on(
    client: &mut tokio_postgres::Client,
    config: &PgStoreConfig,
) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    if let Some(schema) = config.schema() {
        // The name was checked to be a plain lower-case identifier.
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await?;
    }
    let applied = applied_version(client).await?;
    let latest = latest_version();
    if applied > latest {
        return Err(StoreError::unsupported(format!(
            "the database's store schema is version {applied}, newer than this protime-store-postgres, which knows up to {latest}: upgrade protime"
        )));
    }
    let mut runner = embedded::migrations::runner();
    runner.set_migration_table_name(HISTORY_TABLE);
    let report = runner.run_async(client).await?;
    for migration in report.applied_migrations() {
        tracing::info!(
            version = migration.version(),
            name = migration.name(),
            "store schema migrated"
        );
    }
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    Ok(())
}

/// The newest applied migration's version; 0 for a database without the store.
pub(crate) async fn applied_version(client: &tokio_postgres::Client) -> Result<i64, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&HISTORY_TABLE])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let version: Option<i32> = client
        .query_one(&format!("SELECT max(version) FROM {HISTORY_TABLE}"), &[])
        .await?
        .get(0);
    Ok(version.map_or(0, i64::from))
}
