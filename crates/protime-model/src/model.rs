//! The validated clockings model: every value here satisfies the rules in
//! `docs/validation-rules.md`, so code that holds one needs no further checks.
//!
//! Values are built by [`crate::parse_delivery`] (or the `TryFrom` conversions from
//! `protime-raw`), or by the checked constructors below.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike as _, NaiveDate, NaiveDateTime, NaiveTime};

/// Error of a checked constructor: the value is outside what the model allows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{what} {value} is out of range ({allowed})")]
#[non_exhaustive]
pub struct OutOfRange {
    /// Which kind of value was rejected, e.g. `minute of day`.
    pub what: &'static str,
    /// The rejected value, as text.
    pub value: String,
    /// What would have been allowed, e.g. `-1440..=2880`.
    pub allowed: &'static str,
}

/// Orders changes to the same object. Protime documents plain string comparison: a change
/// whose version is lower than the last one applied for the same id is stale, an equal one is
/// a redelivery. A clocking listed without a `changeVersion` has the
/// [absent](ChangeVersion::absent) version, which orders before every real one.
///
/// ```
/// use protime_model::ChangeVersion;
/// let older = ChangeVersion::new("0000090200004BD0000A").unwrap();
/// let newer = ChangeVersion::new("0000090200004BD0000B").unwrap();
/// assert!(older < newer);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChangeVersion(String);

impl ChangeVersion {
    /// A change version; any non-empty string (Protime documents it as opaque).
    pub fn new(value: impl Into<String>) -> Result<Self, OutOfRange> {
        let value = value.into();
        if value.is_empty() {
            return Err(OutOfRange {
                what: "change version",
                value: "\"\"".into(),
                allowed: "a non-empty string",
            });
        }
        Ok(Self(value))
    }

    /// The absent version: the API listed this clocking (a list page, a get response)
    /// without a `changeVersion`, as the docs' own list and get examples do. It orders
    /// before every real version, so any versioned change supersedes it, it never
    /// supersedes a real version, and a second absent version for the same id is a
    /// duplicate. Only [`crate::parse_clocking_with`] under [`crate::Profile::Documented`]
    /// yields it; a delivery or a delta change always carries a real version. Its
    /// [`as_str`](Self::as_str) is the empty string (a real version is never empty), which
    /// is how stores keep it; a serialized [`Clocking`] omits `changeVersion` when it is
    /// absent.
    ///
    /// ```
    /// use protime_model::{ChangeVersion, decide, ApplyOutcome};
    /// let absent = ChangeVersion::absent();
    /// let real = ChangeVersion::new("0000090200004BD0000A").unwrap();
    /// assert!(absent.is_absent() && !real.is_absent());
    /// assert!(absent < real);
    /// assert_eq!(decide(Some(&absent), &real), ApplyOutcome::Applied);
    /// assert_eq!(decide(Some(&real), &absent), ApplyOutcome::Stale);
    /// assert_eq!(decide(Some(&absent), &absent), ApplyOutcome::Duplicate);
    /// ```
    pub const fn absent() -> Self {
        Self(String::new())
    }

    /// Whether this is [`ChangeVersion::absent`]: the clocking was listed without a
    /// `changeVersion`.
    pub fn is_absent(&self) -> bool {
        self.0.is_empty()
    }

    /// A version as a store keeps it: the empty string is [`ChangeVersion::absent`],
    /// anything else a real version (see [`ChangeVersion::new`]).
    ///
    /// ```
    /// use protime_model::ChangeVersion;
    /// assert!(ChangeVersion::from_stored("").is_absent());
    /// assert_eq!(ChangeVersion::from_stored("0A").as_str(), "0A");
    /// ```
    pub fn from_stored(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The version as received; the empty string when it is [absent](Self::absent).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChangeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! positive_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(i64);

        impl $name {
            /// Smallest allowed id.
            pub const MIN: i64 = 1;
            /// Largest allowed id.
            pub const MAX: i64 = i64::MAX;

            /// The id, if it is at least 1.
            pub fn new(value: i64) -> Result<Self, OutOfRange> {
                if value >= Self::MIN {
                    Ok(Self(value))
                } else {
                    Err(OutOfRange { what: $what, value: value.to_string(), allowed: "1..=9223372036854775807" })
                }
            }

            /// The numeric id.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

positive_id!(
    /// Id of a clocking (an integer of at least 1).
    ClockingId,
    "clocking id"
);
positive_id!(
    /// Internal id of a person (an integer of at least 1).
    PersonId,
    "person id"
);
positive_id!(
    /// Internal id of a terminal (an integer of at least 1).
    TerminalId,
    "terminal id"
);
positive_id!(
    /// Internal id of the reason of a `Reason` clocking (an integer of at least 1).
    ReasonId,
    "reason id"
);

/// Minutes relative to midnight of a clocking's date: -1440..=-1 is the previous day,
/// 0..=1439 the date itself, 1440..=2880 the next day (2880 being 24:00 of the next day,
/// which is 00:00 two days after the date). Used for `timeOfDayInMinutes`,
/// `originalTimeOfDayInMinutes` and `calculatedTimeOfDayInMinutes`.
///
/// [`Self::day_offset`] and [`Self::wall_clock`] always satisfy
/// `on(date) == date + day_offset days + wall_clock`; for 2880 that is offset 2 at 00:00.
///
/// ```
/// use protime_model::MinuteOfDay;
/// let late = MinuteOfDay::new(1800).unwrap(); // 06:00 on the next day
/// assert_eq!(late.day_offset(), 1);
/// assert_eq!(late.wall_clock().to_string(), "06:00:00");
/// assert!(MinuteOfDay::new(2881).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MinuteOfDay(i16);

impl MinuteOfDay {
    /// Smallest allowed value: 00:00 on the previous day.
    pub const MIN: i16 = -1440;
    /// Largest allowed value: 24:00 on the next day.
    pub const MAX: i16 = 2880;

    /// The minute, if it lies in `-1440..=2880`.
    pub fn new(value: i64) -> Result<Self, OutOfRange> {
        match i16::try_from(value) {
            Ok(v) if (Self::MIN..=Self::MAX).contains(&v) => Ok(Self(v)),
            _ => Err(OutOfRange {
                what: "minute of day",
                value: value.to_string(),
                allowed: "-1440..=2880",
            }),
        }
    }

    /// The minute as sent on the wire.
    pub fn get(self) -> i16 {
        self.0
    }

    /// Whole days from the clocking's date: -1 (previous day), 0, 1 (next day), or 2 for
    /// exactly 2880 (midnight at the end of the next day).
    pub fn day_offset(self) -> i8 {
        // div_euclid of a value in -1440..=2880 by 1440 is in -1..=2.
        match i16::div_euclid(self.0, 1440) {
            -1 => -1,
            0 => 0,
            1 => 1,
            _ => 2,
        }
    }

    /// The wall-clock time of day, on the day given by [`Self::day_offset`].
    pub fn wall_clock(self) -> NaiveTime {
        let minutes = u32::from(i16::rem_euclid(self.0, 1440).unsigned_abs());
        NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap_or(NaiveTime::MIN)
    }

    /// The local date and time this minute denotes relative to `date`.
    pub fn on(self, date: CalendarDate) -> NaiveDateTime {
        date.get().and_time(NaiveTime::MIN) + chrono::TimeDelta::minutes(i64::from(self.0))
    }
}

impl fmt::Display for MinuteOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A calendar date that was sent in strict `YYYY-MM-DD` form (chrono alone also accepts
/// `2024-2-3`). Years 0001..=9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CalendarDate(NaiveDate);

impl CalendarDate {
    /// Parses exactly `YYYY-MM-DD` (ASCII digits) naming a real date in years 1..=9999.
    ///
    /// ```
    /// use protime_model::CalendarDate;
    /// assert!(CalendarDate::parse("2024-02-29").is_some());
    /// assert!(CalendarDate::parse("2024-2-3").is_none());
    /// assert!(CalendarDate::parse("2023-02-29").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
            return None;
        }
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = bytes.get(range)?;
            part.iter().try_fold(0u32, |acc, b| {
                b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
            })
        };
        let year = i32::try_from(digits(0..4)?).ok()?;
        let month = digits(5..7)?;
        let day = digits(8..10)?;
        if year < 1 {
            return None;
        }
        NaiveDate::from_ymd_opt(year, month, day).map(Self)
    }

    /// A date in years 1..=9999.
    pub fn new(date: NaiveDate) -> Result<Self, OutOfRange> {
        if (1..=9999).contains(&date.year()) {
            Ok(Self(date))
        } else {
            Err(OutOfRange {
                what: "date",
                value: date.to_string(),
                allowed: "years 0001..=9999",
            })
        }
    }

    /// The date.
    pub fn get(self) -> NaiveDate {
        self.0
    }
}

impl fmt::Display for CalendarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// Latitude in degrees, -90..=90.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Latitude(f64);

/// Longitude in degrees, -180..=180.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Longitude(f64);

macro_rules! degrees {
    ($name:ident, $limit:literal, $what:literal, $allowed:literal) => {
        impl $name {
            /// Smallest allowed value.
            pub const MIN: f64 = -$limit;
            /// Largest allowed value.
            pub const MAX: f64 = $limit;

            /// The value, if it lies in the allowed range (NaN never does).
            pub fn new(value: f64) -> Result<Self, OutOfRange> {
                if (Self::MIN..=Self::MAX).contains(&value) {
                    Ok(Self(value))
                } else {
                    Err(OutOfRange {
                        what: $what,
                        value: value.to_string(),
                        allowed: $allowed,
                    })
                }
            }

            /// Degrees.
            pub fn get(self) -> f64 {
                self.0
            }
        }
    };
}
degrees!(Latitude, 90.0, "latitude", "-90..=90");
degrees!(Longitude, 180.0, "longitude", "-180..=180");

/// Where a clocking was made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geolocation {
    /// Latitude in degrees.
    pub latitude: Latitude,
    /// Longitude in degrees.
    pub longitude: Longitude,
}

/// External references of a related object, keyed by reference name: predefined ones start
/// with `@` (`@badge-number`), custom ones do not (`HRMID`). Present only when the webhook
/// or request asked for them with `?externalReferences=`.
pub type ExternalReferences = BTreeMap<String, String>;

/// The person who clocked.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonRef {
    /// Internal id.
    pub id: PersonId,
    /// External references, when requested.
    pub external_references: Option<ExternalReferences>,
}

/// The terminal where a clocking was made.
#[derive(Debug, Clone, PartialEq)]
pub struct TerminalRef {
    /// Internal id.
    pub id: TerminalId,
    /// External references, when requested.
    pub external_references: Option<ExternalReferences>,
}

/// The reason of a `Reason` clocking.
#[derive(Debug, Clone, PartialEq)]
pub struct ReasonRef {
    /// Internal id.
    pub id: ReasonId,
    /// External references, when requested.
    pub external_references: Option<ExternalReferences>,
}

/// Id of an activity definition: a non-empty string (a GUID in practice).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActivityDefinitionId(String);

impl ActivityDefinitionId {
    /// The id, if it is not empty.
    pub fn new(value: impl Into<String>) -> Result<Self, OutOfRange> {
        let value = value.into();
        if value.is_empty() {
            return Err(OutOfRange {
                what: "activity definition id",
                value: "\"\"".into(),
                allowed: "a non-empty string",
            });
        }
        Ok(Self(value))
    }

    /// The id as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An activity definition referenced by an `Activity` clocking.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityDefinitionRef {
    /// Id (a GUID string).
    pub id: ActivityDefinitionId,
    /// External references, when requested.
    pub external_references: Option<ExternalReferences>,
}

/// Level in the activity hierarchy, 1..=2147483647.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActivityLevelNumber(i32);

impl ActivityLevelNumber {
    /// Smallest allowed level.
    pub const MIN: i32 = 1;
    /// Largest allowed level.
    pub const MAX: i32 = i32::MAX;

    /// The level, if it is at least 1 and fits in 32 bits.
    pub fn new(value: i64) -> Result<Self, OutOfRange> {
        match i32::try_from(value) {
            Ok(v) if v >= Self::MIN => Ok(Self(v)),
            _ => Err(OutOfRange {
                what: "activity level",
                value: value.to_string(),
                allowed: "1..=2147483647",
            }),
        }
    }

    /// The level.
    pub fn get(self) -> i32 {
        self.0
    }
}

/// One level of an `Activity` clocking.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityLevel {
    /// Level in the hierarchy.
    pub level: ActivityLevelNumber,
    /// The activity at that level.
    pub activity_definition: ActivityDefinitionRef,
}

/// The levels of an `Activity` clocking: never empty.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityLevels(Vec<ActivityLevel>);

impl ActivityLevels {
    /// The levels, if there is at least one.
    pub fn new(levels: Vec<ActivityLevel>) -> Option<Self> {
        (!levels.is_empty()).then_some(Self(levels))
    }

    /// The levels, in the order received.
    pub fn as_slice(&self) -> &[ActivityLevel] {
        &self.0
    }

    /// The first level (there always is one).
    pub fn first(&self) -> Option<&ActivityLevel> {
        self.0.first()
    }
}

impl<'a> IntoIterator for &'a ActivityLevels {
    type Item = &'a ActivityLevel;
    type IntoIter = std::slice::Iter<'a, ActivityLevel>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// What a clocking records, with the data only that kind carries: a `Reason` clocking
/// always has a reason, an `Activity` clocking always has at least one level, and no other
/// kind can hold either.
#[derive(Debug, Clone, PartialEq)]
pub enum ClockingKind {
    /// A plain in/out clocking.
    InOut,
    /// A clocking with a reason (an absence definition).
    Reason {
        /// The reason.
        reason: ReasonRef,
        /// Whether the reason clocking is open (documented on GET/list; optional in events).
        is_open: Option<bool>,
    },
    /// The start of an activity.
    Activity {
        /// The activity hierarchy.
        levels: ActivityLevels,
    },
    /// The end of an activity.
    ActivityEnd,
}

impl ClockingKind {
    /// The allowed wire names of `kind`.
    pub const NAMES: &'static [&'static str] = &["InOut", "Reason", "Activity", "ActivityEnd"];

    /// The wire name, e.g. `InOut`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::InOut => "InOut",
            Self::Reason { .. } => "Reason",
            Self::Activity { .. } => "Activity",
            Self::ActivityEnd => "ActivityEnd",
        }
    }
}

/// Lifecycle status of a clocking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockingStatus {
    /// Not known.
    Unknown,
    /// A live clocking.
    Active,
    /// Soft-deleted in Protime: treat as a deletion even under `InsertOrUpdate`.
    Deleted,
}

impl ClockingStatus {
    /// The allowed wire names of `status`.
    pub const NAMES: &'static [&'static str] = &["Unknown", "Active", "Deleted"];

    /// The wire name, e.g. `Active`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "Unknown",
            Self::Active => "Active",
            Self::Deleted => "Deleted",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "Unknown" => Some(Self::Unknown),
            "Active" => Some(Self::Active),
            "Deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// A validated clocking. Only `change_version` and `id` are always there: the public docs
/// require nothing else (their delta example carries only `changeVersion`, `id` and `date`),
/// so a field the body did not carry is `None` rather than an invented value.
/// [`crate::Profile::Strict`] guarantees `person`, `date`, `time_of_day` and `kind`. A
/// clocking listed (list page, get) without a `changeVersion` under
/// [`crate::Profile::Documented`] has [`ChangeVersion::absent`]; one from a delivery or a
/// delta change never does.
///
/// ```
/// use protime_model::{parse_clocking, Profile, parse_clocking_with};
/// let item = br#"{"changeVersion":"0A","id":7,"date":"2024-12-02"}"#;
/// let clocking = parse_clocking(item).unwrap();
/// assert_eq!(clocking.date.unwrap().to_string(), "2024-12-02");
/// assert!(clocking.person.is_none() && clocking.kind.is_none());
/// assert!(parse_clocking_with(item, Profile::Strict).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Clocking {
    /// Ordering token of this version of the clocking; [`ChangeVersion::absent`] when the
    /// API listed it without one.
    pub change_version: ChangeVersion,
    /// Clocking id.
    pub id: ClockingId,
    /// Who clocked; `None` when the body did not carry `person` (allowed under
    /// [`crate::Profile::Documented`], never under [`crate::Profile::Strict`]).
    pub person: Option<PersonRef>,
    /// The date the clocking belongs to; `None` when the body did not carry one (allowed
    /// under [`crate::Profile::Documented`] only).
    pub date: Option<CalendarDate>,
    /// `timeOfDayInMinutes`; `None` when the body did not carry it (allowed under
    /// [`crate::Profile::Documented`] only).
    pub time_of_day: Option<MinuteOfDay>,
    /// `originalTimeOfDayInMinutes`: the time as registered; present only for edited clockings.
    pub original_time_of_day: Option<MinuteOfDay>,
    /// `calculatedTimeOfDayInMinutes`: the time after corrections and calculations.
    pub calculated_time_of_day: Option<MinuteOfDay>,
    /// Whether the system generated the clocking.
    pub is_generated: Option<bool>,
    /// Where the clocking was made.
    pub terminal: Option<TerminalRef>,
    /// Geolocation of the clocking.
    pub geolocation: Option<Geolocation>,
    /// The kind, with its kind-specific data; `None` when the body did not carry `kind`
    /// (allowed under [`crate::Profile::Documented`] only). A clocking without a kind has
    /// no `reason`, `isOpen` or `activityLevels`: the docs allow those only for a given kind.
    pub kind: Option<ClockingKind>,
    /// Lifecycle status; `None` when the event did not carry one.
    pub status: Option<ClockingStatus>,
}

impl Clocking {
    /// Whether the clocking is soft-deleted (`status: Deleted`): handle it like a deletion.
    pub fn is_deleted(&self) -> bool {
        self.status == Some(ClockingStatus::Deleted)
    }
}

/// Kind of change, as in `changeType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeType {
    /// `InsertOrUpdate`.
    InsertOrUpdate,
    /// `Delete`.
    Delete,
}

impl ChangeType {
    /// The allowed wire names of `changeType`.
    pub const NAMES: &'static [&'static str] = &["InsertOrUpdate", "Delete"];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::InsertOrUpdate => "InsertOrUpdate",
            Self::Delete => "Delete",
        }
    }
}

/// One webhook delivery (or delta item) for the `clockings` collection: the envelope
/// `{"changeType": …, "data": …}`.
#[derive(Debug, Clone, PartialEq)]
pub enum ClockingChange {
    /// A clocking was created or changed (possibly soft-deleted: see [`Clocking::is_deleted`]).
    InsertOrUpdate(Clocking),
    /// A clocking was deleted.
    Delete {
        /// The deleted clocking.
        id: ClockingId,
        /// Ordering token of the deletion.
        change_version: ChangeVersion,
    },
}

impl ClockingChange {
    /// Id of the clocking the change is about.
    pub fn id(&self) -> ClockingId {
        match self {
            Self::InsertOrUpdate(clocking) => clocking.id,
            Self::Delete { id, .. } => *id,
        }
    }

    /// Ordering token of the change.
    pub fn change_version(&self) -> &ChangeVersion {
        match self {
            Self::InsertOrUpdate(clocking) => &clocking.change_version,
            Self::Delete { change_version, .. } => change_version,
        }
    }

    /// `changeType` of the change.
    pub fn change_type(&self) -> ChangeType {
        match self {
            Self::InsertOrUpdate(_) => ChangeType::InsertOrUpdate,
            Self::Delete { .. } => ChangeType::Delete,
        }
    }

    /// Whether, after this change, the clocking no longer exists: a `Delete`, or an
    /// `InsertOrUpdate` with `status: Deleted` (a soft delete).
    pub fn removes_clocking(&self) -> bool {
        match self {
            Self::InsertOrUpdate(clocking) => clocking.is_deleted(),
            Self::Delete { .. } => true,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn minutes_of_day_place_themselves_on_the_calendar() {
        let day = CalendarDate::parse("2026-01-15").unwrap();
        let at = |minute: i64| MinuteOfDay::new(minute).unwrap();
        for (minute, offset, clock, on) in [
            (-1440, -1, "00:00", "2026-01-14 00:00"),
            (-1, -1, "23:59", "2026-01-14 23:59"),
            (0, 0, "00:00", "2026-01-15 00:00"),
            (510, 0, "08:30", "2026-01-15 08:30"),
            (1439, 0, "23:59", "2026-01-15 23:59"),
            (1440, 1, "00:00", "2026-01-16 00:00"),
            (2879, 1, "23:59", "2026-01-16 23:59"),
            (2880, 2, "00:00", "2026-01-17 00:00"),
        ] {
            let minute = at(minute);
            assert_eq!(minute.day_offset(), offset, "{minute}");
            assert_eq!(
                minute.wall_clock().format("%H:%M").to_string(),
                clock,
                "{minute}"
            );
            assert_eq!(
                minute.on(day).format("%Y-%m-%d %H:%M").to_string(),
                on,
                "{minute}"
            );
        }
        assert_eq!(at(-90).to_string(), "-90");
        assert!(MinuteOfDay::new(2881).is_err() && MinuteOfDay::new(-1441).is_err());
    }

    #[test]
    fn dates_are_exactly_yyyy_mm_dd() {
        assert!(CalendarDate::parse("2024-02-29").is_some());
        for text in [
            "2024x02x29",
            "2024-02x29",
            "2024x02-29",
            "2024-2-29",
            "2023-02-29",
            "0000-01-01",
        ] {
            assert!(CalendarDate::parse(text).is_none(), "{text}");
        }
    }

    #[test]
    fn a_change_version_shows_as_received() {
        let version = ChangeVersion::new("0000090200004BD0000C").unwrap();
        assert_eq!(version.to_string(), "0000090200004BD0000C");
        assert_eq!(format!("{version}"), version.as_str());
    }
}
