//! The one store argument of every command that keeps clockings: a SQLite file (a plain
//! path or `sqlite:PATH`) or a PostgreSQL database (`postgres://…` / `postgresql://…`,
//! completed from the `PG*` environment variables), opened behind one type.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context as _;
use protime_model::{Clocking, ClockingId};
use protime_store_postgres::{PgStore, PgStoreConfig};
use protime_store_sqlite::{Durability, SqliteStore};
use protime_webhooks::sink::{
    BatchFuture, ClockingState, Delivery, DeliverySink, FeedCursor, FeedPage, Receipt, SinkError,
    SinkFuture, SinkRead,
};

/// Where the store is, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum StoreLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (kept whole: it may carry a password).
    Postgres(String),
}

impl FromStr for StoreLocation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            // Parsed now so that a malformed URL is a usage error, not a failure later.
            PgStoreConfig::from_url_and_env(text, |name| (name == "PGUSER").then(|| "-".into()))
                .map_err(|e| e.to_string())?;
            Ok(Self::Postgres(text.to_owned()))
        } else if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("sqlite: needs a file path, e.g. sqlite:clockings.sqlite".into());
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else if [
            "host=",
            "dbname=",
            "user=",
            "port=",
            "password=",
            "sslmode=",
        ]
        .iter()
        .any(|key| text.starts_with(key))
        {
            // libpq's key/value form would otherwise be taken for a file name.
            Err("give PostgreSQL as a URL: postgres://user@host:port/database".into())
        } else if text.contains("://") {
            Err(format!(
                "unknown store URL scheme in {:?}: use a file path, sqlite:PATH or postgres://…",
                text.split("://").next().unwrap_or_default()
            ))
        } else if text.is_empty() {
            Err("the store is empty: use a file path, sqlite:PATH or postgres://…".into())
        } else {
            Ok(Self::Sqlite(PathBuf::from(text)))
        }
    }
}

impl fmt::Display for StoreLocation {
    /// For messages: the file, or the database without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => match PgStoreConfig::from_url(url) {
                Ok(config) => write!(f, "postgres {}", config.target()),
                Err(_) => f.write_str("postgres (invalid URL)"),
            },
        }
    }
}

/// The `--store` of the commands that read a store someone else fills (`clockings`,
/// `dead-letters`).
#[derive(Debug, clap::Args)]
pub(crate) struct StoreArg {
    /// The store: an SQLite file (a path or `sqlite:PATH`) or `postgres://…` (see
    /// `protime receive --help`).
    #[arg(
        long,
        env = "PROTIME_STORE",
        default_value = "protime.sqlite",
        value_name = "STORE"
    )]
    store: StoreLocation,
}

impl StoreArg {
    /// Opens the store, refusing an SQLite file that does not exist: a reading command
    /// given a wrong path must say so instead of creating an empty store and showing
    /// nothing.
    pub(crate) async fn open_existing(&self) -> anyhow::Result<Store> {
        if let StoreLocation::Sqlite(path) = &self.store {
            anyhow::ensure!(
                path.exists(),
                "there is no store at {}: give --store (or PROTIME_STORE) the file that `protime receive` or `protime serve` writes",
                path.display()
            );
        }
        self.store.open(None).await
    }
}

impl StoreLocation {
    /// Opens the store: creates or migrates its schema, and fails with one line naming the
    /// store (never a password) when it cannot.
    pub(crate) async fn open(&self, durability: Option<Durability>) -> anyhow::Result<Store> {
        match self {
            Self::Sqlite(path) => {
                let path = path.clone();
                let durability = durability.unwrap_or_default();
                let store =
                    tokio::task::spawn_blocking(move || SqliteStore::open_with(path, durability))
                        .await
                        .context("the store could not be opened")?
                        .with_context(|| format!("cannot open the store {self}"))?;
                Ok(Store::Sqlite(store))
            }
            Self::Postgres(url) => {
                if durability.is_some_and(|d| d != Durability::PowerLoss) {
                    anyhow::bail!(
                        "--durability applies to SQLite stores only (PostgreSQL commits with synchronous_commit=on)"
                    );
                }
                let store = PgStore::connect(url)
                    .await
                    .with_context(|| format!("cannot open the store {self}"))?;
                Ok(Store::Postgres(store))
            }
        }
    }
}

/// An open store of either kind.
#[derive(Debug, Clone)]
pub(crate) enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// A claim on a store's subscription (see [`Store::try_claim_owner`]).
#[derive(Debug)]
pub(crate) enum Owner {
    /// The locked `<file>.owner` of an SQLite store.
    File {
        /// Released when closed.
        _held: std::fs::File,
    },
    /// The advisory lock of a PostgreSQL store.
    Postgres {
        /// Released when dropped.
        _held: protime_store_postgres::OwnerLock,
    },
}

/// A dead letter, whatever the store's kind.
#[derive(Debug, Clone)]
pub(crate) struct StoredDeadLetter {
    /// Its id in the store (`seq` in SQLite, `id` in PostgreSQL): increasing in arrival order.
    pub(crate) id: i64,
    /// When it was received, RFC 3339 in UTC.
    pub(crate) received_at: String,
    /// The body exactly as received.
    pub(crate) raw_body: Vec<u8>,
    /// The violations as stored: a JSON array of `{pointer, code, message, …}`.
    pub(crate) errors_json: String,
    /// Fingerprint of the key that verified it, when recorded.
    pub(crate) key_fingerprint: Option<String>,
    /// When it was replayed, RFC 3339 in UTC.
    pub(crate) replayed_at: Option<String>,
    /// What the store answered to the replay.
    pub(crate) replay_outcome: Option<String>,
}

/// A store timestamp as the CLI prints it: RFC 3339 in UTC, microseconds.
pub(crate) fn rfc3339(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl From<protime_store_sqlite::DeadLetter> for StoredDeadLetter {
    fn from(letter: protime_store_sqlite::DeadLetter) -> Self {
        Self {
            id: letter.seq,
            received_at: letter.received_at,
            raw_body: letter.raw_body,
            errors_json: letter.errors_json,
            key_fingerprint: letter.key_fingerprint,
            replayed_at: letter.replayed_at,
            replay_outcome: letter.replay_outcome,
        }
    }
}

impl From<protime_store_postgres::DeadLetter> for StoredDeadLetter {
    fn from(letter: protime_store_postgres::DeadLetter) -> Self {
        Self {
            id: letter.id,
            received_at: rfc3339(letter.received_at),
            raw_body: letter.raw_body,
            errors_json: letter.errors_json,
            key_fingerprint: letter.key_fingerprint,
            replayed_at: letter.replayed_at.map(rfc3339),
            replay_outcome: letter.replay_outcome,
        }
    }
}

/// What a store holds, whatever its kind.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StoreSummary {
    pub(crate) applied: u64,
    pub(crate) duplicates: u64,
    pub(crate) stale: u64,
    pub(crate) dead_letters: u64,
    pub(crate) change_log: u64,
}

impl Store {
    /// The store as the receiver's sink.
    pub(crate) fn sink(&self) -> Arc<dyn DeliverySink> {
        match self {
            Self::Sqlite(store) => Arc::new(store.clone()),
            Self::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// Every clocking that currently exists, by id.
    pub(crate) async fn clockings(&self) -> anyhow::Result<Vec<Clocking>> {
        Ok(match self {
            Self::Sqlite(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.clockings()).await??
            }
            Self::Postgres(store) => store.clockings().await?,
        })
    }

    /// Every dead letter, in arrival order.
    pub(crate) async fn dead_letters(&self) -> anyhow::Result<Vec<StoredDeadLetter>> {
        Ok(match self {
            Self::Sqlite(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.dead_letters())
                    .await??
                    .into_iter()
                    .map(StoredDeadLetter::from)
                    .collect()
            }
            Self::Postgres(store) => store
                .dead_letters()
                .await?
                .into_iter()
                .map(StoredDeadLetter::from)
                .collect(),
        })
    }

    /// The dead letter `id`, if there is one.
    pub(crate) async fn dead_letter(&self, id: i64) -> anyhow::Result<Option<StoredDeadLetter>> {
        Ok(match self {
            Self::Sqlite(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.dead_letter(id))
                    .await??
                    .map(StoredDeadLetter::from)
            }
            Self::Postgres(store) => store.dead_letter(id).await?.map(StoredDeadLetter::from),
        })
    }

    /// Marks the dead letter `id` as replayed with `receipt`; false when there is none.
    pub(crate) async fn mark_replayed(&self, id: i64, receipt: Receipt) -> anyhow::Result<bool> {
        Ok(match self {
            Self::Sqlite(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.mark_dead_letter_replayed(id, receipt))
                    .await??
            }
            Self::Postgres(store) => store.mark_dead_letter_replayed(id, receipt).await?,
        })
    }

    /// Counts of the log and the dead letters.
    pub(crate) async fn summary(&self) -> anyhow::Result<StoreSummary> {
        Ok(match self {
            Self::Sqlite(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || {
                    let stats = store.stats()?;
                    Ok::<_, protime_store_sqlite::StoreError>(StoreSummary {
                        applied: stats.applied,
                        duplicates: stats.duplicates,
                        stale: stats.stale,
                        dead_letters: stats.dead_letters,
                        change_log: store.change_log_len()?,
                    })
                })
                .await??
            }
            Self::Postgres(store) => {
                let stats = store.stats().await?;
                StoreSummary {
                    applied: stats.applied,
                    duplicates: stats.duplicates,
                    stale: stats.stale,
                    dead_letters: stats.dead_letters,
                    change_log: store.change_log_len().await?,
                }
            }
        })
    }

    /// Whether the store can take writes now: an SQLite store that is open and whose path
    /// still names the file it writes to, writable (a write into a deleted or replaced file
    /// would be lost), a PostgreSQL store whose server answers.
    pub(crate) async fn ready(&self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(store) => {
                anyhow::ensure!(!store.is_closed(), "the store is closed");
                Ok(store.check_file()?)
            }
            Self::Postgres(store) => {
                store.schema_version().await?;
                Ok(())
            }
        }
    }

    /// Claims this store's subscription for this process (released when the returned value
    /// is dropped, or the process dies): an exclusive lock on `<file>.owner` beside an SQLite
    /// store, a session advisory lock on PostgreSQL. `Ok(None)` when another process — a
    /// running `protime serve` — holds it.
    pub(crate) async fn try_claim_owner(&self) -> anyhow::Result<Option<Owner>> {
        match self {
            Self::Sqlite(store) => {
                let mut path = store.path().as_os_str().to_owned();
                path.push(".owner");
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .with_context(|| format!("cannot open {}", PathBuf::from(&path).display()))?;
                match file.try_lock() {
                    Ok(()) => Ok(Some(Owner::File { _held: file })),
                    Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                    Err(std::fs::TryLockError::Error(error)) => Err(error)
                        .with_context(|| format!("cannot lock {}", PathBuf::from(&path).display())),
                }
            }
            Self::Postgres(store) => Ok(store
                .try_claim_owner()
                .await?
                .map(|held| Owner::Postgres { _held: held })),
        }
    }

    /// Commits what is queued and stops the writers.
    pub(crate) async fn close(self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(store) => tokio::task::spawn_blocking(move || store.close()).await??,
            Self::Postgres(store) => store.close().await,
        }
        Ok(())
    }
}

/// The cutoffs of one purge: what was received before each goes (`None`: kept).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PurgeCutoffs {
    pub(crate) raw_bodies: Option<chrono::DateTime<chrono::Utc>>,
    pub(crate) change_log: Option<chrono::DateTime<chrono::Utc>>,
    pub(crate) dead_letters: Option<chrono::DateTime<chrono::Utc>>,
}

/// Rows a purge or an erasure removed (or, dry, would remove), whatever the store's kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RemovedRows {
    pub(crate) raw_bodies: u64,
    pub(crate) change_log_entries: u64,
    pub(crate) dead_letters: u64,
    /// Erased clockings (an erasure only).
    pub(crate) clockings: u64,
}

/// Retention and erasure (`protime purge`, `protime forget`, `serve`'s retention job).
impl Store {
    /// Applies retention by `cutoffs` (see the stores' `purge`).
    pub(crate) async fn purge(
        &self,
        cutoffs: PurgeCutoffs,
        dry_run: bool,
    ) -> anyhow::Result<RemovedRows> {
        let mut purge = protime_webhooks::sink::Purge::new().dry_run(dry_run);
        purge.raw_bodies_before = cutoffs.raw_bodies;
        purge.change_log_before = cutoffs.change_log;
        purge.dead_letters_before = cutoffs.dead_letters;
        let counts = match self {
            Self::Sqlite(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.purge(&purge)).await??
            }
            Self::Postgres(store) => store.purge(&purge).await?,
        };
        Ok(RemovedRows {
            raw_bodies: counts.raw_bodies,
            change_log_entries: counts.change_log_entries,
            dead_letters: counts.dead_letters,
            clockings: 0,
        })
    }

    /// Erases a person (see the stores' `forget_person`).
    pub(crate) async fn forget_person(
        &self,
        person: i64,
        dry_run: bool,
    ) -> anyhow::Result<RemovedRows> {
        let counts = match self {
            Self::Sqlite(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.forget_person(person, dry_run)).await??
            }
            Self::Postgres(store) => store.forget_person(person, dry_run).await?,
        };
        Ok(RemovedRows {
            raw_bodies: 0,
            change_log_entries: counts.change_log_entries,
            dead_letters: counts.dead_letters,
            clockings: counts.clockings,
        })
    }
}

impl DeliverySink for Store {
    fn record(&self, delivery: Delivery) -> SinkFuture<'_, Result<Receipt, SinkError>> {
        match self {
            Self::Sqlite(store) => DeliverySink::record(store, delivery),
            Self::Postgres(store) => DeliverySink::record(store, delivery),
        }
    }

    fn record_batch(&self, deliveries: Vec<Delivery>) -> BatchFuture<'_> {
        match self {
            Self::Sqlite(store) => DeliverySink::record_batch(store, deliveries),
            Self::Postgres(store) => DeliverySink::record_batch(store, deliveries),
        }
    }
}

impl SinkRead for Store {
    fn clocking(&self, id: ClockingId) -> SinkFuture<'_, Result<Option<Clocking>, SinkError>> {
        match self {
            Self::Sqlite(store) => SinkRead::clocking(store, id),
            Self::Postgres(store) => SinkRead::clocking(store, id),
        }
    }

    fn state(&self, id: ClockingId) -> SinkFuture<'_, Result<Option<ClockingState>, SinkError>> {
        match self {
            Self::Sqlite(store) => SinkRead::state(store, id),
            Self::Postgres(store) => SinkRead::state(store, id),
        }
    }

    fn list(
        &self,
        after: Option<ClockingId>,
        limit: usize,
    ) -> SinkFuture<'_, Result<Vec<Clocking>, SinkError>> {
        match self {
            Self::Sqlite(store) => SinkRead::list(store, after, limit),
            Self::Postgres(store) => SinkRead::list(store, after, limit),
        }
    }

    fn changes(
        &self,
        after: FeedCursor,
        limit: usize,
    ) -> SinkFuture<'_, Result<FeedPage, SinkError>> {
        match self {
            Self::Sqlite(store) => SinkRead::changes(store, after, limit),
            Self::Postgres(store) => SinkRead::changes(store, after, limit),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_argument_names_either_store() {
        let parse = |text: &str| text.parse::<StoreLocation>();
        assert_eq!(
            parse("clockings.sqlite").unwrap(),
            StoreLocation::Sqlite("clockings.sqlite".into())
        );
        assert_eq!(
            parse("sqlite:/var/lib/p.db").unwrap(),
            StoreLocation::Sqlite("/var/lib/p.db".into())
        );
        assert_eq!(
            parse("sqlite:///var/lib/p.db").unwrap(),
            StoreLocation::Sqlite("/var/lib/p.db".into())
        );
        assert!(matches!(
            parse("postgresql://u:pw@db/x?schema=t1").unwrap(),
            StoreLocation::Postgres(_)
        ));
        assert!(parse("mysql://db/x").unwrap_err().contains("mysql"));
        assert!(parse("postgres://u@db:port/x").is_err());
        assert!(parse("sqlite:").is_err());
        assert!(parse("host=db user=app dbname=x").is_err());
    }

    #[test]
    fn messages_never_show_the_password() {
        let location: StoreLocation = "postgres://app:s3cret@db.internal/payroll".parse().unwrap();
        let shown = location.to_string();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.internal"), "{shown}");
    }
}
