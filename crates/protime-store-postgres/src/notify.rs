//! Commit notifications (`LISTEN`/`NOTIFY`): a follower of the change feed waits for the
//! next commit instead of polling.

use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::{PgStoreConfig, StoreError};

/// Notifications of commits that added feed entries or dead letters, from any replica
/// writing the same database and schema. Made by [`crate::PgStore::notifications`].
///
/// A notification says "something new may be there": read the feed after your cursor. They
/// coalesce (many commits may wake you once), so never count them.
#[derive(Debug)]
pub struct ChangeNotifications {
    received: mpsc::Receiver<()>,
    // Keeps the LISTEN session open.
    _client: tokio_postgres::Client,
    driver: JoinHandle<()>,
}

impl Drop for ChangeNotifications {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl ChangeNotifications {
    pub(crate) async fn listen(config: &PgStoreConfig) -> Result<Self, StoreError> {
        let (client, mut connection) = crate::connect(config, NoTls).await?;
        // One pending wake-up is enough: further ones coalesce into it.
        let (sender, received) = mpsc::channel(1);
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(_)) => {
                        let _ = sender.try_send(());
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(error = %crate::error::describe(&error), "the LISTEN connection failed");
                        break;
                    }
                }
            }
            // Dropping the sender tells the waiter that the session is gone.
        });
        // The channel name is made of a checked identifier: quoted, as LISTEN takes an
        // identifier, not a string.
        client
            .batch_execute(&format!("LISTEN \"{}\"", config.channel()))
            .await?;
        Ok(Self {
            received,
            _client: client,
            driver,
        })
    }

    /// Waits up to `timeout` for a commit: `Ok(true)` when one came, `Ok(false)` when the
    /// time ran out, an error when the session to the server is lost (reconnect with
    /// [`crate::PgStore::notifications`]; poll the feed meanwhile).
    pub async fn wait(&mut self, timeout: Duration) -> Result<bool, StoreError> {
        match tokio::time::timeout(timeout, self.received.recv()).await {
            Ok(Some(())) => Ok(true),
            Ok(None) => Err(StoreError::Closed),
            Err(_) => Ok(false),
        }
    }
}
