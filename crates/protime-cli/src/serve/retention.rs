//! `serve`'s background retention: per subscription, every `interval` (default 1 h), the
//! purge `protime purge` does, with the subscription's limits (`[subscription.retention]`
//! in the configuration file, or the `--retention-*` flags for the subscription of the
//! flags); and, with `--capture DIR` and `--retention-captures AGE`, the old capture files.
//! Off unless a limit is given. Each run logs its counts; a failed run is retried at the
//! next interval. The jobs are aborted on shutdown, before the stores close (what a run
//! removed before that stays removed: every batch is its own transaction).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinHandle;

use crate::retention::{Limits, parse_age, purge_once};
use crate::store::Store;

/// How often the purge runs when no interval is given.
pub(super) const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);

/// The `--retention-*` flags of `serve`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RetentionFlags {
    /// Purge webhook bodies older than this (e.g. `30d`) every `--retention-interval`; for
    /// the subscription of the flags (with `--config`: `[subscription.retention]`).
    #[arg(long, value_name = "AGE", value_parser = parse_age, conflicts_with = "config")]
    retention_raw_bodies: Option<Duration>,
    /// Remove change-log entries older than this (e.g. `180d`), never the current state.
    #[arg(long, value_name = "AGE", value_parser = parse_age, conflicts_with = "config")]
    retention_change_log: Option<Duration>,
    /// Remove dead letters older than this (e.g. `90d`).
    #[arg(long, value_name = "AGE", value_parser = parse_age, conflicts_with = "config")]
    retention_dead_letters: Option<Duration>,
    /// Delete the `--capture` directory's files older than this (e.g. `7d`).
    #[arg(long, value_name = "AGE", value_parser = parse_age, requires = "capture")]
    retention_captures: Option<Duration>,
    /// How often retention runs (default 1h; at least 1s).
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    retention_interval: Option<Duration>,
}

impl RetentionFlags {
    /// The limits and interval of the subscription of the flags.
    pub(super) fn plan(&self) -> (Limits, Duration) {
        (
            Limits {
                raw_bodies: self.retention_raw_bodies,
                change_log: self.retention_change_log,
                dead_letters: self.retention_dead_letters,
                captures: None,
            },
            self.retention_interval.unwrap_or(DEFAULT_INTERVAL),
        )
    }

    /// The process's capture retention: the directory and the age.
    pub(super) fn captures(&self, dir: Option<&PathBuf>) -> Option<(PathBuf, Duration)> {
        dir.cloned().zip(self.retention_captures)
    }

    /// The interval of the process-wide jobs (the captures').
    pub(super) fn interval(&self) -> Duration {
        self.retention_interval.unwrap_or(DEFAULT_INTERVAL)
    }
}

/// `[subscription.retention]` of the configuration file: ages as strings (`"30d"`).
/// `PROTIME_SUBSCRIPTION_<NAME>_RETENTION_<KEY>` overrides one key.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RetentionConfig {
    raw_bodies: Option<String>,
    change_log: Option<String>,
    dead_letters: Option<String>,
    interval: Option<String>,
}

impl RetentionConfig {
    /// The limits and interval, the ages checked.
    pub(super) fn plan(&self, subscription: &str) -> anyhow::Result<(Limits, Duration)> {
        let age = |key: &str, text: &Option<String>| {
            text.as_deref()
                .map(parse_age)
                .transpose()
                .map_err(|e| anyhow::anyhow!(e))
                .with_context(|| format!("subscription {subscription}: retention.{key}"))
        };
        Ok((
            Limits {
                raw_bodies: age("raw_bodies", &self.raw_bodies)?,
                change_log: age("change_log", &self.change_log)?,
                dead_letters: age("dead_letters", &self.dead_letters)?,
                captures: None,
            },
            age("interval", &self.interval)?.unwrap_or(DEFAULT_INTERVAL),
        ))
    }
}

fn age_text(age: Option<Duration>) -> String {
    age.map_or_else(|| "kept".to_owned(), |age| format!("{}s", age.as_secs()))
}

/// `retention every 3600s: raw bodies 2592000s, change log kept, …`, for the logs and
/// `--check-config`.
pub(super) fn describe(limits: &Limits, interval: Duration) -> String {
    format!(
        "retention every {}s: raw bodies {}, change log {}, dead letters {}, captures {}",
        interval.max(Duration::from_secs(1)).as_secs(),
        age_text(limits.raw_bodies),
        age_text(limits.change_log),
        age_text(limits.dead_letters),
        age_text(limits.captures.as_ref().map(|(_, age)| *age)),
    )
}

/// Starts the retention job of one subscription (`store`) or of the capture directory
/// (`store` `None`); `None` when `limits` are off.
pub(super) fn spawn(
    name: String,
    store: Option<Store>,
    limits: Limits,
    interval: Duration,
) -> Option<JoinHandle<()>> {
    if limits.is_off() {
        return None;
    }
    let interval = interval.max(Duration::from_secs(1));
    eprintln!("[{name}] {}", describe(&limits, interval));
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match purge_once(store.as_ref(), &limits, false).await {
                Ok(removed) => eprintln!(
                    "[{name}] retention: removed {} raw bodies, {} change-log entries, {} dead letters, {} capture files",
                    removed.raw_bodies,
                    removed.change_log_entries,
                    removed.dead_letters,
                    removed.captures
                ),
                Err(error) => eprintln!(
                    "[{name}] retention failed (tried again in {}s): {error:#}",
                    interval.as_secs()
                ),
            }
        }
    }))
}
