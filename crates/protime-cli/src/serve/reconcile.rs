//! Reconciliation: a Protime delta kept open behind the webhooks.
//!
//! Webhooks alone cannot promise completeness: a delivery lost during an outage longer than
//! Protime's retry window is never sent again. A delta returns every change since its last
//! call, so applying what it returns through the same sink closes that gap; `changeVersion`
//! ordering makes the overlap with webhook deliveries harmless (a change both delivered and
//! returned is a `Duplicate` the second time). A change that the delta brings and the store
//! did not have — `Applied` — is one the webhooks missed: counted, logged with its id.
//!
//! An initial load lists current clockings only, so a deletion whose webhook was lost while
//! no delta was open (before the first load, or after an expiry) shows as an absence: a
//! clocking the store held before the load, dated within the range, that the load does not
//! list is removed (see `removals`).
//!
//! The changes a delta returned wait `grace` before they are applied, so that webhooks
//! still in flight arrive first and are not counted as missed. A delta expires 72 hours
//! after its last use (`410 Gone`): the interval stays well within that, and an expired
//! delta is answered by a new initial load, applied the same way, so there is no gap. The
//! token lives in memory only: after a restart the first round is an initial load.
//!
//! Only whoever renews the subscription reconciles (the lease holder among replicas):
//! Protime allows one active delta per collection.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use protime_client::{DeltaFilter, DeltaToken, Error as ClientError};
use protime_model::{ApplyOutcome, ChangeVersion, Clocking, ClockingChange};
use protime_webhooks::sink::{Delivery, Origin, Receipt, SyncOrigin};

use protime_webhooks::subscription::Subscription;

use super::lifecycle::Lifecycle;

/// The most changes written in one batch (one transaction).
const BATCH: usize = 5_000;

/// The most ids a log line about recovered changes names.
const IDS_IN_A_LINE: usize = 50;

/// Longest pause after a failed round, when the interval is longer.
const MAX_RETRY: Duration = Duration::from_secs(300);

/// How one subscription reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    interval: Duration,
    grace: Duration,
}

impl Settings {
    /// From the interval and the grace period, in seconds.
    pub(crate) fn new(interval_seconds: u64, grace_seconds: u64) -> Self {
        Self {
            interval: Duration::from_secs(interval_seconds),
            grace: Duration::from_secs(grace_seconds),
        }
    }

    /// Refuses an interval that would let the delta expire between two calls, or none.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        // Protime's delta expires 72 hours after its last use; a day between calls leaves
        // two days for failures and restarts.
        const LONGEST: Duration = Duration::from_secs(24 * 3600);
        anyhow::ensure!(
            !self.interval.is_zero() && self.interval <= LONGEST,
            "reconcile_interval_seconds must be between 1 and 86400 (the delta expires 72 hours after its last use), got {}",
            self.interval.as_secs()
        );
        anyhow::ensure!(
            self.grace < self.interval,
            "reconcile_grace_seconds ({}) must be shorter than reconcile_interval_seconds ({})",
            self.grace.as_secs(),
            self.interval.as_secs()
        );
        Ok(())
    }
}

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "every {} s, grace {} s",
            self.interval.as_secs(),
            self.grace.as_secs()
        )
    }
}

/// What one round read and did.
struct Round {
    /// `"initial load"` or `"delta"`.
    kind: &'static str,
    read: usize,
    invalid: usize,
    /// Ids whose change the store did not have: the webhooks had not delivered it.
    recovered: Vec<i64>,
    next: DeltaToken,
}

/// Reconciles `life`'s subscription for as long as it is polled; never returns (without
/// settings it only waits).
pub(super) async fn run(life: &Lifecycle, subscription: &Subscription) {
    let Some(settings) = life.reconcile else {
        return std::future::pending().await;
    };
    // Not before the first subscription: its full sync is the baseline, and what an initial
    // load read before it would count as missed.
    while subscription.state().is_none() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let name = life.name.as_str();
    let filter = DeltaFilter::since(life.filter.from()).until(life.filter.to());
    let mut token: Option<DeltaToken> = None;
    let mut rounds = 0_u64;
    let mut retry = Duration::from_secs(1);
    loop {
        rounds += 1;
        match round(life, &filter, token.as_ref(), settings.grace, rounds).await {
            Ok(done) => {
                retry = Duration::from_secs(1);
                metrics::counter!("protime_reconciliations_total", "subscription" => name.to_owned(), "result" => "ok")
                    .increment(1);
                metrics::counter!("protime_reconciliation_recovered_total", "subscription" => name.to_owned())
                    .increment(done.recovered.len() as u64);
                metrics::gauge!("protime_reconciliation_last_success_seconds", "subscription" => name.to_owned())
                    .set(chrono::Utc::now().timestamp() as f64);
                if done.recovered.is_empty() {
                    life.alerts
                        .resolve(name, crate::alerts::Kind::MissedChanges);
                    tracing::info!(subscription = %name, kind = done.kind, read = done.read, invalid = done.invalid, "reconciliation: nothing missed");
                } else {
                    let shown: Vec<String> = done
                        .recovered
                        .iter()
                        .take(IDS_IN_A_LINE)
                        .map(ToString::to_string)
                        .collect();
                    let more = done.recovered.len().saturating_sub(IDS_IN_A_LINE);
                    tracing::warn!(
                        subscription = %name,
                        kind = done.kind,
                        recovered = done.recovered.len(),
                        ids = %format!("{}{}", shown.join(","), if more > 0 { format!(" and {more} more") } else { String::new() }),
                        "reconciliation recovered changes the webhooks had not delivered"
                    );
                    life.alerts.raise(
                        name,
                        crate::alerts::Kind::MissedChanges,
                        format!(
                            "reconciliation found {} change(s) the webhooks had not delivered, now applied (ids {}{})",
                            done.recovered.len(),
                            shown.join(","),
                            if more > 0 { format!(" and {more} more") } else { String::new() }
                        ),
                        serde_json::json!({"recovered": done.recovered.len(), "ids": done.recovered.iter().take(IDS_IN_A_LINE).collect::<Vec<_>>()}),
                    );
                }
                token = Some(done.next);
                tokio::time::sleep(settings.interval).await;
            }
            Err(RoundError::Expired) => {
                metrics::counter!("protime_delta_reloads_total", "subscription" => name.to_owned())
                    .increment(1);
                tracing::warn!(subscription = %name, "the delta expired (410): a new initial load follows at once");
                token = None;
            }
            Err(RoundError::Failed(error)) => {
                metrics::counter!("protime_reconciliations_total", "subscription" => name.to_owned(), "result" => "failed")
                    .increment(1);
                // The token is kept: the same changes are asked for again.
                tracing::warn!(subscription = %name, error = %format!("{error:#}"), ?retry, "reconciliation failed; trying again");
                tokio::time::sleep(retry.min(settings.interval)).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

enum RoundError {
    /// The delta is gone: start over with an initial load.
    Expired,
    Failed(anyhow::Error),
}

impl From<ClientError> for RoundError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::DeltaExpired => Self::Expired,
            other => Self::Failed(anyhow::Error::new(other)),
        }
    }
}

/// One round: read (an initial load without a token), wait the grace period, apply.
async fn round(
    life: &Lifecycle,
    filter: &DeltaFilter,
    token: Option<&DeltaToken>,
    grace: Duration,
    number: u64,
) -> Result<Round, RoundError> {
    let (kind, changes, invalid, next) = match token {
        None => {
            // What the store held before the load: a clocking among these that the load
            // does not list was deleted at Protime (or moved out of the range) meanwhile.
            let before = life
                .store
                .clockings()
                .await
                .map_err(|error| RoundError::Failed(error.context("reading the store")))?;
            let snapshot = life
                .client
                .delta_initial_load_with_references(filter, &[])
                .await?;
            let mut listed: HashSet<i64> = snapshot.clockings.iter().map(|c| c.id.get()).collect();
            // An item that failed validation is still there at Protime.
            listed.extend(
                snapshot
                    .invalid
                    .iter()
                    .filter_map(|(item, _)| item.get("id")?.as_i64()),
            );
            let removals = removals(&before, &listed, filter);
            let mut changes: Vec<ClockingChange> = snapshot
                .clockings
                .into_iter()
                .map(ClockingChange::InsertOrUpdate)
                .collect();
            changes.extend(removals);
            (
                "initial load",
                changes,
                snapshot.invalid.len(),
                snapshot.token,
            )
        }
        Some(token) => {
            let delta = life.client.delta(token).await?;
            ("delta", delta.changes, delta.invalid.len(), delta.next)
        }
    };
    if invalid > 0 {
        tracing::warn!(subscription = %life.name, invalid, kind, "reconciliation skipped changes that failed validation");
    }
    tokio::time::sleep(grace).await;
    let read = changes.len();
    let run: std::sync::Arc<str> = format!("reconciliation {number} ({kind})").into();
    let sink = life.store.sink();
    let mut recovered = Vec::new();
    let mut changes = changes.into_iter().peekable();
    let mut page = 0_u64;
    while changes.peek().is_some() {
        let batch: Vec<ClockingChange> = changes.by_ref().take(BATCH).collect();
        let ids: Vec<i64> = batch.iter().map(|change| change.id().get()).collect();
        let deliveries = batch
            .into_iter()
            .map(|change| Delivery::Change {
                change,
                origin: Origin::Sync(SyncOrigin::new(std::sync::Arc::clone(&run), page)),
            })
            .collect();
        for (id, result) in ids.into_iter().zip(sink.record_batch(deliveries).await) {
            match result {
                Ok(Receipt::Applied(ApplyOutcome::Applied)) => recovered.push(id),
                Ok(_) => {}
                Err(error) => {
                    return Err(RoundError::Failed(
                        anyhow::Error::new(error)
                            .context("the store did not take the reconciliation's changes"),
                    ));
                }
            }
        }
        page += 1;
    }
    Ok(Round {
        kind,
        read,
        invalid,
        recovered,
        next,
    })
}

/// The removals an initial load implies: each clocking the store held before the load,
/// dated within the filter's range, that the load does not list. An initial load lists only
/// current clockings, so a deletion made while no delta was open (it expired, or the process
/// was down) and whose webhook was lost shows only as an absence.
///
/// Such a removal has no version from Protime. It gets the stored version followed by a
/// space: byte order puts that right after the version it removes and before every later
/// version Protime can send (a later version of the same length is greater at a position
/// where the two differ), so it removes exactly the state the store held before the load —
/// a change stored meanwhile is newer and makes the removal `Stale` — and any later change
/// of the clocking still wins. Clockings without a date are left alone: they cannot be
/// placed in the range.
fn removals(
    before: &[Clocking],
    listed: &HashSet<i64>,
    filter: &DeltaFilter,
) -> Vec<ClockingChange> {
    before
        .iter()
        .filter(|clocking| !listed.contains(&clocking.id.get()))
        .filter(|clocking| {
            clocking.date.is_some_and(|date| {
                let day = date.get();
                day >= filter.from() && filter.to().is_none_or(|to| day <= to)
            })
        })
        .filter_map(|clocking| {
            let version = ChangeVersion::new(format!("{} ", clocking.change_version)).ok()?;
            Some(ClockingChange::Delete {
                id: clocking.id,
                change_version: version,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use protime_model::{CalendarDate, ClockingId};

    fn clocking(id: i64, version: &str, date: Option<&str>) -> Clocking {
        let mut text = format!(r#"{{"changeVersion":"{version}","id":{id}"#);
        if let Some(date) = date {
            text.push_str(&format!(r#","date":"{date}""#));
        }
        text.push('}');
        protime_model::parse_clocking(text.as_bytes()).unwrap()
    }

    #[test]
    fn an_initial_load_removes_only_absent_clockings_dated_in_its_range() {
        let day = |text| CalendarDate::parse(text).unwrap().get();
        let filter = DeltaFilter::since(day("2026-01-01")).until(day("2026-01-31"));
        let before = [
            clocking(1, "0A", Some("2026-01-10")), // listed: kept
            clocking(2, "0B", Some("2026-01-10")), // absent, in range: removed
            clocking(3, "0C", Some("2025-12-31")), // absent, before the range
            clocking(4, "0D", Some("2026-02-01")), // absent, after the range
            clocking(5, "0E", None),               // absent, no date: cannot be placed
            clocking(6, "0F", Some("2026-01-31")), // absent, last day: removed
        ];
        let listed: HashSet<i64> = [1].into();
        let removed = removals(&before, &listed, &filter);
        let expected: Vec<ClockingChange> = [(2, "0B "), (6, "0F ")]
            .into_iter()
            .map(|(id, version)| ClockingChange::Delete {
                id: ClockingId::new(id).unwrap(),
                change_version: ChangeVersion::new(version).unwrap(),
            })
            .collect();
        assert_eq!(removed, expected);
        // Right after the version it removes, before any later one.
        let removal = ChangeVersion::new("0000090200004BD0000C ").unwrap();
        assert!(removal > ChangeVersion::new("0000090200004BD0000C").unwrap());
        assert!(removal < ChangeVersion::new("0000090200004BD0000D").unwrap());
        assert!(removal < ChangeVersion::new("0000090200004BD00010").unwrap());
    }

    #[test]
    fn settings_keep_the_delta_alive_and_the_grace_shorter_than_the_interval() {
        assert!(Settings::new(3600, 60).check().is_ok());
        assert!(Settings::new(86_400, 0).check().is_ok());
        assert!(Settings::new(0, 0).check().is_err());
        assert!(Settings::new(86_401, 60).check().is_err());
        assert!(Settings::new(60, 60).check().is_err());
        assert_eq!(
            Settings::new(3600, 60).to_string(),
            "every 3600 s, grace 60 s"
        );
    }
}
