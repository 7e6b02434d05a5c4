//! The store's error type and how it maps onto the sink contract's [`SinkError`].

use std::sync::Arc;

use protime_webhooks::sink::SinkError;

/// Error of the store. A delivery whose `record` call returned an error was not
/// acknowledged as stored; the receiver answers 503 and Protime retries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("SQLite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The transaction of the batch this delivery belonged to failed (to begin or to
    /// commit): nothing of the batch was stored.
    #[error("the batch was not committed: {0}")]
    Batch(#[source] Arc<rusqlite::Error>),
    /// The store was closed ([`crate::SqliteStore::close`]), or its writer thread is gone.
    #[error("the store is closed")]
    Closed,
    /// The file holds data this store cannot have written.
    #[error("the store is corrupt: {what}")]
    Corrupt {
        /// What is wrong.
        what: String,
    },
    /// The file cannot be used as a store: a newer schema version, a schema history whose
    /// migrations differ from this code's, or WAL mode unavailable.
    #[error("the database cannot be used as a store: {what}")]
    Unsupported {
        /// Why.
        what: String,
    },
    /// Migrating the schema failed: a migration, or recording it in the schema history,
    /// failed (nothing of that run is kept), or the schema kept changing while the store
    /// was opened.
    #[error("the schema migration failed: {what}")]
    Migration {
        /// What failed.
        what: String,
        /// The error of the migration tool (refinery), if it reported one.
        #[source]
        source: Option<refinery::Error>,
    },
    /// The operating system failed (e.g. the writer thread could not be started).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A value could not be serialized to JSON.
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
    /// The store's file was deleted, replaced by another file or made read-only while the
    /// store was open: nothing is acknowledged any more (a commit would land in a file
    /// nobody opens again). Restart on the intended file.
    #[error("the store file {} is no longer usable: {what}; nothing more is acknowledged — restart the process on the intended file", path.display())]
    FileGone {
        /// The store's path.
        path: std::path::PathBuf,
        /// What happened to it.
        what: String,
    },
    /// The store's file can only be read (permissions, a read-only mount).
    #[error("the store file {} is read-only: a store must be writable (check its permissions and the mount)", path.display())]
    ReadOnly {
        /// The store's path.
        path: std::path::PathBuf,
    },
    /// The writer thread panicked (reported by [`crate::SqliteStore::close`]).
    #[error("the writer thread panicked")]
    WriterPanicked,
}

impl StoreError {
    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Self::Corrupt { what: what.into() }
    }
}

impl From<StoreError> for SinkError {
    /// Everything is retryable except what the same input would hit again: a value that
    /// cannot be serialized, or data the store cannot read back.
    fn from(error: StoreError) -> Self {
        let message = error.to_string();
        let sink_error = match &error {
            StoreError::Json(_) | StoreError::Corrupt { .. } | StoreError::Unsupported { .. } => {
                SinkError::rejected(message)
            }
            _ => SinkError::unavailable(message),
        };
        sink_error.with_source(error)
    }
}
