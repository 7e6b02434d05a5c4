//! What a retention purge and an erasure are asked to do and report, whatever the backend:
//! the stores' `purge` and `forget_person` take and return these.

use chrono::{DateTime, Utc};

/// What to purge: everything received before each cutoff (`None`: keep that kind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Purge {
    /// Webhook bodies of change-log entries received before this time (the entry stays).
    pub raw_bodies_before: Option<DateTime<Utc>>,
    /// Change-log entries received before this time.
    pub change_log_before: Option<DateTime<Utc>>,
    /// Dead letters received before this time.
    pub dead_letters_before: Option<DateTime<Utc>>,
    /// Count only; remove nothing.
    pub dry_run: bool,
}

impl PurgeCounts {
    /// Counts of webhook bodies, change-log entries and dead letters.
    ///
    /// ```
    /// let counts = protime_webhooks::sink::PurgeCounts::new(1, 2, 3);
    /// assert_eq!((counts.raw_bodies, counts.change_log_entries, counts.dead_letters), (1, 2, 3));
    /// ```
    pub fn new(raw_bodies: u64, change_log_entries: u64, dead_letters: u64) -> Self {
        Self {
            raw_bodies,
            change_log_entries,
            dead_letters,
        }
    }
}

impl ErasureCounts {
    /// Counts of erased clockings, change-log entries and dead letters.
    ///
    /// ```
    /// let counts = protime_webhooks::sink::ErasureCounts::new(1, 2, 3);
    /// assert_eq!((counts.clockings, counts.change_log_entries, counts.dead_letters), (1, 2, 3));
    /// ```
    pub fn new(clockings: u64, change_log_entries: u64, dead_letters: u64) -> Self {
        Self {
            clockings,
            change_log_entries,
            dead_letters,
        }
    }
}

impl Purge {
    /// Nothing to purge yet.
    ///
    /// ```
    /// use protime_webhooks::sink::Purge;
    /// let cutoff = chrono::Utc::now() - chrono::TimeDelta::days(30);
    /// let purge = Purge::new().change_log_before(cutoff).dry_run(true);
    /// assert_eq!(purge.change_log_before, Some(cutoff));
    /// assert!(purge.dry_run && purge.raw_bodies_before.is_none());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Purge webhook bodies received before `cutoff`.
    #[must_use]
    pub fn raw_bodies_before(mut self, cutoff: DateTime<Utc>) -> Self {
        self.raw_bodies_before = Some(cutoff);
        self
    }

    /// Remove change-log entries received before `cutoff`.
    #[must_use]
    pub fn change_log_before(mut self, cutoff: DateTime<Utc>) -> Self {
        self.change_log_before = Some(cutoff);
        self
    }

    /// Remove dead letters received before `cutoff`.
    #[must_use]
    pub fn dead_letters_before(mut self, cutoff: DateTime<Utc>) -> Self {
        self.dead_letters_before = Some(cutoff);
        self
    }

    /// Count only.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// What a purge removed (or, dry, would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeCounts {
    /// Webhook bodies purged (their entries kept).
    pub raw_bodies: u64,
    /// Change-log entries removed.
    pub change_log_entries: u64,
    /// Dead letters removed.
    pub dead_letters: u64,
}

/// What an erasure removed (or, dry, would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErasureCounts {
    /// Clockings erased (each left as an erased tombstone: id and version only).
    pub clockings: u64,
    /// Change-log entries removed.
    pub change_log_entries: u64,
    /// Dead letters removed.
    pub dead_letters: u64,
}
