//! The store's error type and how it maps onto the sink contract's [`SinkError`].

use std::sync::Arc;
use std::time::Duration;

use protime_webhooks::sink::SinkError;

/// Error of the store. A delivery whose `record` call returned an error was not
/// acknowledged as stored; the receiver answers 503 and Protime retries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The connection settings are invalid (a malformed URL, a bad schema name, …).
    #[error("invalid PostgreSQL settings: {what}")]
    Config {
        /// What is wrong.
        what: String,
    },
    /// The server could not be reached or refused the login.
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    Connect {
        /// Where (host, port, database, user; never the password).
        target: String,
        /// Why, as the driver or the server said it.
        reason: String,
    },
    /// A statement failed.
    #[error("PostgreSQL error: {}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection could be taken from the pool in time.
    #[error("no PostgreSQL connection available: {0}")]
    Pool(String),
    /// The transaction of the batch this delivery belonged to failed (to begin, to apply or
    /// to commit): nothing of the batch was acknowledged.
    #[error("the batch was not committed: {}", describe(.0))]
    Batch(#[source] Arc<tokio_postgres::Error>),
    /// A wait ran out of time.
    #[error("{what} took longer than {after:?}")]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The store was closed, or its writer tasks are gone.
    #[error("the store is closed")]
    Closed,
    /// The database holds data this store cannot have written.
    #[error("the store is corrupt: {what}")]
    Corrupt {
        /// What is wrong.
        what: String,
    },
    /// The database or the delivery cannot be used: a newer schema version, a value
    /// PostgreSQL cannot store.
    #[error("cannot be stored: {what}")]
    Unsupported {
        /// Why.
        what: String,
    },
    /// A schema migration failed.
    #[error("schema migration failed: {0}")]
    Migration(#[from] refinery::Error),
    /// A value could not be serialized to JSON.
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
}

impl StoreError {
    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Self::Corrupt { what: what.into() }
    }

    pub(crate) fn unsupported(what: impl Into<String>) -> Self {
        Self::Unsupported { what: what.into() }
    }

    /// The server's SQLSTATE code, when the server answered with an error.
    pub fn sql_state(&self) -> Option<&str> {
        match self {
            Self::Postgres(error) => error.code().map(tokio_postgres::error::SqlState::code),
            Self::Batch(error) => error.code().map(tokio_postgres::error::SqlState::code),
            _ => None,
        }
    }
}

/// The driver's error with the server's message and SQLSTATE when there is one (the
/// driver's own `Display` says only "db error").
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Backend(error) => Self::Postgres(error),
            other => Self::Pool(other.to_string()),
        }
    }
}

impl From<StoreError> for SinkError {
    /// Everything is retryable except what the same input would hit again: a value that
    /// cannot be serialized or stored, or data the store cannot read back.
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
