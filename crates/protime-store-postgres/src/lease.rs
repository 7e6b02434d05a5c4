//! Who renews the subscription: a session-level advisory lock per store (per schema), held
//! on a connection of its own, so that exactly one process renews at a time and a holder
//! that dies — its session ends — releases it at once for another replica to take over.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_postgres::NoTls;

use crate::{PgStore, StoreError, connect};

/// How often a held lease's session is asked whether it is still alive (a connection cut
/// without a FIN, e.g. by a network partition, is otherwise noticed only by TCP's timeouts).
const LIVENESS_INTERVAL: Duration = Duration::from_secs(5);

/// Longest wait for the liveness answer before the lease is taken as lost.
const LIVENESS_TIMEOUT: Duration = Duration::from_secs(10);

/// Exclusive ownership of a store's subscription by one process (see
/// [`PgStore::try_claim_owner`] and [`PgStore::try_claim_lease`]): held while this value
/// lives, released when it is dropped or its session ends (a crashed owner releases it too).
#[derive(Debug)]
pub struct OwnerLock {
    client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
    ended: watch::Receiver<bool>,
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl OwnerLock {
    /// Returns once the lock can no longer be trusted to be held: its session ended, or did
    /// not answer within 10 s (asked every 5 s). A holder must stop acting on the lease
    /// then: another process may take it over.
    pub async fn lost(&self) {
        let mut ended = self.ended.clone();
        loop {
            if *ended.borrow() {
                return;
            }
            tokio::select! {
                changed = ended.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep(LIVENESS_INTERVAL) => {
                    let answer = tokio::time::timeout(LIVENESS_TIMEOUT, self.client.simple_query("SELECT 1")).await;
                    if !matches!(answer, Ok(Ok(_))) {
                        return;
                    }
                }
            }
        }
    }

    /// Whether the lock's session still answers (a quick check before acting on the lease).
    pub async fn is_held(&self) -> bool {
        !*self.ended.borrow()
            && matches!(
                tokio::time::timeout(LIVENESS_TIMEOUT, self.client.simple_query("SELECT 1")).await,
                Ok(Ok(_))
            )
    }
}

/// Who holds — or last held — a store's renewal lease (see [`PgStore::lease_holder`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseHolder {
    /// The name the holder gave when it took the lease.
    pub holder: String,
    /// When it took it.
    pub since: DateTime<Utc>,
    /// Whether it holds it now (false: it is gone and nobody has taken over yet).
    pub held: bool,
}

/// The last holder of the lease, and whether the advisory lock named `$1` is held now by
/// any session of this database (one statement, one snapshot).
const LEASE_HOLDER: &str = "SELECT holder, since, EXISTS (
         SELECT 1 FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND objsubid = 1
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND ((classid::int8 << 32) | objid::int8) = hashtext($1)::int8)
     FROM renewal_lease";

impl PgStore {
    fn lock_name(&self) -> String {
        format!("protime owner {}", self.inner.config.channel())
    }

    /// Claims the store's subscription for this process: a session-level advisory lock
    /// named after the store's schema, on a connection of its own. `Ok(None)` when another
    /// process holds it (e.g. a running `protime serve`).
    pub async fn try_claim_owner(&self) -> Result<Option<OwnerLock>, StoreError> {
        self.try_lock(None).await
    }

    /// [`Self::try_claim_owner`] for a replica of a long-running service: on success it also
    /// records `holder` (a name for humans, e.g. host and process id) as the lease's holder,
    /// for [`Self::lease_holder`].
    ///
    /// ```no_run
    /// # async fn run(store: protime_store_postgres::PgStore) -> Result<(), protime_store_postgres::StoreError> {
    /// if let Some(lease) = store.try_claim_lease("web-1:4242").await? {
    ///     tokio::select! {
    ///         () = lease.lost() => { /* stop renewing: another replica may take over */ }
    ///         () = async { /* renew while held */ } => {}
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn try_claim_lease(&self, holder: &str) -> Result<Option<OwnerLock>, StoreError> {
        self.try_lock(Some(holder)).await
    }

    async fn try_lock(&self, holder: Option<&str>) -> Result<Option<OwnerLock>, StoreError> {
        let (client, connection) = connect(&self.inner.config, NoTls).await?;
        let (ended_sender, ended) = watch::channel(false);
        let connection = tokio::spawn(async move {
            let _ = connection.await;
            let _ = ended_sender.send(true);
        });
        let limit = self.inner.config.statement_timeout + Duration::from_secs(5);
        let claim = async {
            let claimed: bool = client
                .query_one(
                    "SELECT pg_try_advisory_lock(hashtext($1))",
                    &[&self.lock_name()],
                )
                .await?
                .try_get(0)?;
            if claimed && let Some(holder) = holder {
                client
                    .execute(
                        "INSERT INTO renewal_lease (holder, since) VALUES ($1, now())
                         ON CONFLICT (singleton) DO UPDATE SET holder = excluded.holder, since = excluded.since",
                        &[&holder],
                    )
                    .await?;
            }
            Ok::<_, StoreError>(claimed)
        };
        let claimed =
            tokio::time::timeout(limit, claim)
                .await
                .map_err(|_| StoreError::Timeout {
                    what: "claiming the subscription",
                    after: limit,
                })??;
        if claimed {
            Ok(Some(OwnerLock {
                client,
                connection,
                ended,
            }))
        } else {
            connection.abort();
            Ok(None)
        }
    }

    /// Who holds the renewal lease, or held it last; `None` when nobody ever took it.
    pub async fn lease_holder(&self) -> Result<Option<LeaseHolder>, StoreError> {
        let name = self.lock_name();
        self.query(LEASE_HOLDER, &[&name], |rows| match rows.first() {
            Some(row) => Ok(Some(LeaseHolder {
                holder: row.try_get(0)?,
                since: row.try_get(1)?,
                held: row.try_get(2)?,
            })),
            None => Ok(None),
        })
        .await
    }
}
