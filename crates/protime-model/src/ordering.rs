//! Ordering and deduplication by `changeVersion`: last writer wins per clocking id, whatever
//! order deliveries arrive in.
//!
//! Protime documents that `changeVersion` values compare as plain strings and that a change
//! older than the last one seen for the same id must be ignored. A change with an equal
//! version is a redelivery (a no-op). Deletions (`Delete`, and `InsertOrUpdate` with
//! `status: Deleted`) leave a tombstone that keeps their version, so an older update that
//! arrives after the deletion cannot resurrect the clocking.

use std::collections::BTreeMap;

use crate::model::{ChangeVersion, Clocking, ClockingChange, ClockingId};

/// What applying one change did. A closed set (newer, equal, older), so it is not
/// `#[non_exhaustive]`: match it exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApplyOutcome {
    /// The change was newer than anything seen for its id and is now the current state.
    Applied,
    /// A change with the same id and the same version was applied before (a redelivery).
    Duplicate,
    /// A newer change for the same id was applied before; this one is ignored.
    Stale,
}

/// The last change applied for one clocking id.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedVersion {
    /// Version of the last applied change.
    pub change_version: ChangeVersion,
    /// The clocking as of that change; `None` when that change removed it.
    pub clocking: Option<Clocking>,
}

/// Decides whether `incoming` replaces what is known for its id (`current`).
pub fn decide(current: Option<&ChangeVersion>, incoming: &ChangeVersion) -> ApplyOutcome {
    match current {
        None => ApplyOutcome::Applied,
        Some(known) if incoming > known => ApplyOutcome::Applied,
        Some(known) if incoming == known => ApplyOutcome::Duplicate,
        Some(_) => ApplyOutcome::Stale,
    }
}

/// Current state of clockings, kept in memory; last writer wins by `changeVersion`.
///
/// ```
/// use protime_model::{parse_delivery, ApplyOutcome, InMemoryTracker};
///
/// let newer = parse_delivery(br#"{"changeType":"Delete","data":{"changeVersion":"B","id":7}}"#).unwrap();
/// let older = parse_delivery(br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"A","id":7,
///     "person":{"id":1},"date":"2026-01-15","timeOfDayInMinutes":480,"kind":"InOut"}}"#).unwrap();
/// let mut tracker = InMemoryTracker::default();
/// assert_eq!(tracker.apply(&newer), ApplyOutcome::Applied);
/// assert_eq!(tracker.apply(&older), ApplyOutcome::Stale); // arrived late: ignored
/// assert_eq!(tracker.apply(&newer), ApplyOutcome::Duplicate);
/// assert!(tracker.current().next().is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InMemoryTracker {
    entries: BTreeMap<ClockingId, TrackedVersion>,
}

impl InMemoryTracker {
    /// Applies one change; see [`ApplyOutcome`].
    pub fn apply(&mut self, change: &ClockingChange) -> ApplyOutcome {
        let id = change.id();
        let outcome = decide(
            self.entries.get(&id).map(|e| &e.change_version),
            change.change_version(),
        );
        if outcome == ApplyOutcome::Applied {
            let clocking = match change {
                ClockingChange::InsertOrUpdate(clocking) if !clocking.is_deleted() => {
                    Some(clocking.clone())
                }
                _ => None,
            };
            self.entries.insert(
                id,
                TrackedVersion {
                    change_version: change.change_version().clone(),
                    clocking,
                },
            );
        }
        outcome
    }

    /// The clocking with this id, if it currently exists.
    pub fn get(&self, id: ClockingId) -> Option<&Clocking> {
        self.entries.get(&id).and_then(|e| e.clocking.as_ref())
    }

    /// What is tracked for this id (its last version, and the clocking unless deleted).
    pub fn tracked(&self, id: ClockingId) -> Option<&TrackedVersion> {
        self.entries.get(&id)
    }

    /// The last applied version for this id, including deletions.
    pub fn version(&self, id: ClockingId) -> Option<&ChangeVersion> {
        self.entries.get(&id).map(|e| &e.change_version)
    }

    /// Every existing clocking, by id.
    pub fn current(&self) -> impl Iterator<Item = &Clocking> {
        self.entries.values().filter_map(|e| e.clocking.as_ref())
    }

    /// Every tracked id with its last version and state (tombstones included), by id.
    pub fn entries(&self) -> impl Iterator<Item = (ClockingId, &TrackedVersion)> {
        self.entries.iter().map(|(id, e)| (*id, e))
    }
}
