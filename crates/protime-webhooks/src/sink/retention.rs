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

/// Rows a backend handles per purge or erasure transaction: a window of this many
/// consecutive row ids (see [`retention_windows`]), so that no transaction holds its locks
/// for long and deliveries queued meanwhile wait for one window at most.
pub const RETENTION_BATCH: i64 = 10_000;

/// [`RETENTION_BATCH`] as a step through a range of row ids.
const WINDOW_STEP: usize = RETENTION_BATCH as usize;

/// The windows `(low, high]` of [`RETENTION_BATCH`] row ids that together cover the ids
/// `1..=last`, in order; none when `last` is 0 or less (an empty table). A backend reads the
/// largest id once, then handles one window per transaction (`WHERE id > low AND id <= high`).
///
/// ```
/// use protime_webhooks::sink::{RETENTION_BATCH, retention_windows};
///
/// assert_eq!(retention_windows(0).count(), 0);
/// assert_eq!(retention_windows(1).collect::<Vec<_>>(), [(0, RETENTION_BATCH)]);
/// assert_eq!(
///     retention_windows(RETENTION_BATCH + 1).collect::<Vec<_>>(),
///     [(0, RETENTION_BATCH), (RETENTION_BATCH, 2 * RETENTION_BATCH)],
/// );
/// ```
pub fn retention_windows(last: i64) -> impl Iterator<Item = (i64, i64)> {
    // The lower bounds are exactly the steps through 0..last: no loop condition to get wrong.
    (0..last)
        .step_by(WINDOW_STEP)
        .map(|low| (low, low.saturating_add(RETENTION_BATCH)))
}

/// Whether a stored body (a delivery as received, or a change serialized in the delivery
/// format) names `person` as `data.person.id`: the test an erasure applies to every
/// change-log entry and dead letter. A number is compared exactly; a string (a dead letter
/// may hold one) is compared with surrounding whitespace trimmed. Anything unreadable names
/// nobody.
///
/// ```
/// use protime_webhooks::sink::names_person;
///
/// assert!(names_person(br#"{"data":{"id":1,"person":{"id":7}}}"#, 7));
/// assert!(names_person(br#"{"data":{"person":{"id":" 7 "}}}"#, 7));
/// assert!(!names_person(br#"{"data":{"person":{"id":8}}}"#, 7));
/// assert!(!names_person(b"\xff not json", 7));
/// ```
pub fn names_person(body: &[u8], person: i64) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    match value.pointer("/data/person/id") {
        Some(serde_json::Value::Number(id)) => id.as_i64() == Some(person),
        Some(serde_json::Value::String(id)) => id.trim() == person.to_string(),
        _ => false,
    }
}

/// The body of the change-feed entry an erasure writes for clocking `id`: a `Delete` at the
/// stored `version`, in the delivery format, carrying no personal data.
///
/// ```
/// use protime_model::{ClockingChange, parse_delivery};
/// use protime_webhooks::sink::erasure_change;
///
/// let body = erasure_change(42, "AAA1");
/// assert!(matches!(parse_delivery(body.as_bytes()), Ok(ClockingChange::Delete { .. })));
/// assert!(!body.contains("person"));
/// ```
pub fn erasure_change(id: i64, version: &str) -> String {
    serde_json::json!({
        "changeType": "Delete",
        "data": { "changeVersion": version, "id": id },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_every_id_once_and_nothing_past_the_last_window() {
        for last in [
            1,
            2,
            RETENTION_BATCH - 1,
            RETENTION_BATCH,
            RETENTION_BATCH + 1,
            3 * RETENTION_BATCH + 7,
        ] {
            let windows: Vec<_> = retention_windows(last).collect();
            assert_eq!(windows.first().map(|w| w.0), Some(0), "last {last}");
            assert!(
                windows.windows(2).all(|pair| pair[0].1 == pair[1].0),
                "last {last}"
            );
            assert!(
                windows
                    .iter()
                    .all(|(low, high)| high - low == RETENTION_BATCH)
            );
            let top = windows.last().map(|w| w.1).unwrap_or(0);
            assert!(
                top >= last && top - last < RETENTION_BATCH,
                "last {last}: top {top}"
            );
        }
        assert_eq!(retention_windows(-5).count(), 0);
    }

    #[test]
    fn a_person_is_named_by_number_or_string_and_nothing_else() {
        let named = |body: &str, person| names_person(body.as_bytes(), person);
        assert!(named(r#"{"data":{"person":{"id":7}}}"#, 7));
        assert!(named(r#"{"data":{"person":{"id":"7"}}}"#, 7));
        assert!(named(r#"{"data":{"person":{"id":"\t7 "}}}"#, 7));
        assert!(!named(r#"{"data":{"person":{"id":"8"}}}"#, 7));
        assert!(!named(r#"{"data":{"person":{"id":"07x"}}}"#, 7));
        assert!(!named(r#"{"data":{"person":{"id":7.5}}}"#, 7));
        assert!(!named(r#"{"data":{"person":{"id":[7]}}}"#, 7));
        assert!(!named(r#"{"data":{"person":7}}"#, 7));
        assert!(!named(r#"{"data":{"id":7}}"#, 7));
        assert!(!named("", 7));
    }

    #[test]
    fn an_erasure_change_is_a_delete_of_the_id_at_the_version() {
        let body: serde_json::Value = serde_json::from_str(&erasure_change(42, "v 1")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"changeType": "Delete", "data": {"changeVersion": "v 1", "id": 42}})
        );
    }
}
