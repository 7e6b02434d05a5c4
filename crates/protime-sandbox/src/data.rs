//! The sandbox's reference data (people, terminals, reasons, activity definitions) and the
//! deterministic generation of realistic clockings.

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroU64};

use chrono::{Datelike as _, NaiveDate, Weekday};
use protime_raw::types::{
    ActivityDefinitionRef, ActivityLevel, Clocking, ClockingKind, ClockingStatus,
    ExternalReferences, Geolocation, PersonRef, ReasonRef, TerminalRef,
};

use crate::rng::SeededRng;

/// Smallest minute a clocking may carry: the model's rule, not a copy of it.
pub(crate) const MINUTE_MIN: i32 = protime_model::MinuteOfDay::MIN as i32;
/// Largest minute a clocking may carry.
pub(crate) const MINUTE_MAX: i32 = protime_model::MinuteOfDay::MAX as i32;

/// How a person's working day is laid out, in minutes relative to the clocking date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shift {
    /// A day shift with a lunch break.
    Day { start: i32, end: i32 },
    /// A night shift attributed to the day it starts: it ends after midnight, so the out
    /// clocking carries a minute above 1439 (e.g. 1800 = 06:00 the next day).
    NightForward { start: i32, end: i32 },
    /// A night shift attributed to the day it ends: it starts before midnight, so the in
    /// clocking carries a negative minute (e.g. -120 = 22:00 the previous day).
    NightBackward { start: i32, end: i32 },
}

impl Shift {
    fn bounds(self) -> (i32, i32) {
        match self {
            Self::Day { start, end }
            | Self::NightForward { start, end }
            | Self::NightBackward { start, end } => (start, end),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub(crate) id: u64,
    pub(crate) badge_number: String,
    pub(crate) employee_number: String,
    pub(crate) hrm_id: String,
    pub(crate) shift: Shift,
    pub(crate) home_terminal: usize,
    pub(crate) mobile_share: f64,
    pub(crate) activity_worker: bool,
    pub(crate) works_weekends: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Terminal {
    pub(crate) id: u64,
    pub(crate) external_code: String,
    pub(crate) latitude: f64,
    pub(crate) longitude: f64,
}

/// An absence definition usable as the reason of a `Reason` clocking.
#[derive(Debug, Clone)]
pub(crate) struct Reason {
    pub(crate) id: u64,
    pub(crate) absence_code: String,
}

#[derive(Debug, Clone)]
pub(crate) struct ActivityDefinition {
    pub(crate) id: String,
    pub(crate) data_entry_code: String,
    pub(crate) external_reference: String,
    pub(crate) children: Vec<usize>,
}

/// Everything clockings point at.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    pub(crate) people: Vec<Person>,
    pub(crate) terminals: Vec<Terminal>,
    pub(crate) reasons: Vec<Reason>,
    pub(crate) activities: Vec<ActivityDefinition>,
    /// Indexes of the level-1 activity definitions (projects).
    pub(crate) projects: Vec<usize>,
}

impl Catalog {
    pub(crate) fn generate(rng: &mut SeededRng, people: u32) -> Self {
        let terminals: Vec<Terminal> = (0..4_u64)
            .map(|i| {
                let id = 765 + i * 7;
                Terminal {
                    id,
                    external_code: format!("TERM-{id}"),
                    // Around Brussels and Antwerp.
                    latitude: 50.85 + rng.unit() * 0.4,
                    longitude: 4.35 + rng.unit() * 0.1,
                }
            })
            .collect();

        let reasons = [(12, "DOC"), (13, "OFF"), (14, "MED"), (15, "TRN")]
            .into_iter()
            .map(|(id, code)| Reason {
                id,
                absence_code: code.to_owned(),
            })
            .collect();

        let mut activities = Vec::new();
        let mut projects = Vec::new();
        for p in 1..=3 {
            let project = activities.len();
            projects.push(project);
            activities.push(definition(rng, format!("P{p}")));
            for t in 1..=2 {
                let task = activities.len();
                activities.push(definition(rng, format!("P{p}.T{t}")));
                if let Some(parent) = activities.get_mut(project) {
                    parent.children.push(task);
                }
                if t == 1 {
                    for s in 1..=2 {
                        let sub = activities.len();
                        activities.push(definition(rng, format!("P{p}.T{t}.S{s}")));
                        if let Some(parent) = activities.get_mut(task) {
                            parent.children.push(sub);
                        }
                    }
                }
            }
        }

        let mut next_person = 1000_u64;
        let people = (0..people)
            .map(|_| {
                next_person += 1 + rng.below(4);
                let id = next_person;
                let shift = match rng.below(10) {
                    0..=6 => {
                        let start = *rng.pick(&[450, 480, 510, 540]).unwrap_or(&480);
                        Shift::Day {
                            start,
                            end: start + 510,
                        }
                    }
                    7 | 8 => {
                        let start = *rng.pick(&[1290, 1320, 1350]).unwrap_or(&1320);
                        Shift::NightForward {
                            start,
                            end: start + 480,
                        }
                    }
                    _ => {
                        let start = *rng.pick(&[-150, -120, -90]).unwrap_or(&-120);
                        Shift::NightBackward {
                            start,
                            end: start + 480,
                        }
                    }
                };
                Person {
                    id,
                    badge_number: format!("{:07}", 6_700_000 + id * 13),
                    employee_number: format!("E{id:05}"),
                    hrm_id: format!("HRM-{}", 40_000 + id),
                    shift,
                    home_terminal: rng.index(terminals.len()),
                    mobile_share: if rng.chance(0.3) { 0.6 } else { 0.05 },
                    activity_worker: rng.chance(0.35),
                    works_weekends: rng.chance(0.2),
                }
            })
            .collect();

        Self {
            people,
            terminals,
            reasons,
            activities,
            projects,
        }
    }

    pub(crate) fn person(&self, id: u64) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }

    pub(crate) fn terminal(&self, id: u64) -> Option<&Terminal> {
        self.terminals.iter().find(|t| t.id == id)
    }

    pub(crate) fn reason(&self, id: u64) -> Option<&Reason> {
        self.reasons.iter().find(|r| r.id == id)
    }

    fn activity(&self, id: &str) -> Option<&ActivityDefinition> {
        self.activities.iter().find(|a| a.id == id)
    }

    /// A random path down the activity hierarchy, 1 to 3 levels deep.
    pub(crate) fn activity_levels(&self, rng: &mut SeededRng) -> Vec<ActivityLevel> {
        let mut levels = Vec::new();
        let mut current = rng.pick(&self.projects).copied();
        let depth = 1 + rng.below(3);
        let mut level = 1_u32;
        while let Some(index) = current {
            let Some(definition) = self.activities.get(index) else {
                break;
            };
            if let Some(number) = NonZeroU32::new(level) {
                levels.push(ActivityLevel {
                    level: number,
                    activity_definition: ActivityDefinitionRef {
                        id: definition.id.clone(),
                        external_references: None,
                    },
                });
            }
            if u64::from(level) >= depth {
                break;
            }
            current = rng.pick(&definition.children).copied();
            level += 1;
        }
        levels
    }

    /// A copy of `clocking` whose related objects carry the requested external references.
    pub(crate) fn decorate(&self, clocking: &Clocking, refs: &ExternalRefRequest) -> Clocking {
        let mut out = clocking.clone();
        if refs.is_empty() {
            return out;
        }
        let person = self.person(out.person.id.get());
        out.person.external_references = collect_refs(refs, "people", |name| {
            let person = person?;
            match name {
                "@badge-number" => Some(person.badge_number.clone()),
                "@employee-number" => Some(person.employee_number.clone()),
                "HRMID" => Some(person.hrm_id.clone()),
                _ => None,
            }
        });
        if let Some(terminal) = out.terminal.as_mut() {
            let known = self.terminal(terminal.id.get());
            terminal.external_references = collect_refs(refs, "terminals", |name| match name {
                "@external-code" => known.map(|t| t.external_code.clone()),
                _ => None,
            });
        }
        if let Some(reason) = out.reason.as_mut() {
            let known = self.reason(reason.id.get());
            reason.external_references =
                collect_refs(refs, "absence-definitions", |name| match name {
                    "@absence-code" => known.map(|r| r.absence_code.clone()),
                    _ => None,
                });
        }
        for level in &mut out.activity_levels {
            let known = self.activity(&level.activity_definition.id);
            level.activity_definition.external_references =
                collect_refs(refs, "activity-definitions", |name| {
                    let known = known?;
                    match name {
                        "@data-entry-code" => Some(known.data_entry_code.clone()),
                        "@external-reference" => Some(known.external_reference.clone()),
                        _ => None,
                    }
                });
        }
        out
    }
}

fn definition(rng: &mut SeededRng, code: String) -> ActivityDefinition {
    ActivityDefinition {
        id: rng.guid(),
        external_reference: format!("EXT-{code}"),
        data_entry_code: code,
        children: Vec::new(),
    }
}

fn collect_refs(
    refs: &ExternalRefRequest,
    collection: &str,
    value: impl Fn(&str) -> Option<String>,
) -> Option<ExternalReferences> {
    let map: HashMap<String, String> = refs
        .references(collection)
        .filter_map(|name| value(name).map(|v| (name.to_owned(), v)))
        .collect();
    (!map.is_empty()).then_some(ExternalReferences(map))
}

/// The external references a request (or a webhook) asked for with
/// `?externalReferences=(collection,reference)(…)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ExternalRefRequest {
    pairs: Vec<(String, String)>,
}

/// References the sandbox can fill in, per collection.
const KNOWN_REFERENCES: &[(&str, &[&str])] = &[
    ("people", &["@badge-number", "@employee-number", "HRMID"]),
    ("terminals", &["@external-code"]),
    (
        "activity-definitions",
        &["@data-entry-code", "@external-reference"],
    ),
    ("absence-definitions", &["@absence-code"]),
];

impl ExternalRefRequest {
    /// Parses `(people,@badge-number)(terminals,@external-code)`. An empty value is refused:
    /// the documented syntax (the spec's `x-pattern`) has at least one pair, and a client that
    /// wants none leaves the parameter out.
    pub(crate) fn parse(text: &str) -> Result<Self, Vec<String>> {
        let mut pairs = Vec::new();
        let mut rest = text.trim();
        let mut reasons = Vec::new();
        if rest.is_empty() {
            return Err(vec![
                "externalReferences is empty: leave it out, or give (collection,reference) pairs"
                    .to_owned(),
            ]);
        }
        while !rest.is_empty() {
            let Some(after_open) = rest.strip_prefix('(') else {
                reasons.push(format!(
                    "externalReferences must look like (collection,reference)(…), found {rest:?}"
                ));
                break;
            };
            let Some((inner, after)) = after_open.split_once(')') else {
                reasons.push("externalReferences: missing ')'".to_owned());
                break;
            };
            rest = after.trim_start();
            let Some((collection, reference)) = inner.split_once(',') else {
                reasons.push(format!(
                    "externalReferences: ({inner}) is not (collection,reference)"
                ));
                continue;
            };
            let (collection, reference) = (collection.trim(), reference.trim());
            match KNOWN_REFERENCES.iter().find(|(c, _)| *c == collection) {
                None => reasons.push(format!(
                    "externalReferences: collection '{collection}' has no external references on clockings (known: people, terminals, activity-definitions, absence-definitions)"
                )),
                Some((_, names)) if !names.contains(&reference) => reasons.push(format!(
                    "externalReferences: unknown reference '{reference}' for '{collection}' (known: {})",
                    names.join(", ")
                )),
                Some(_) => {
                    let pair = (collection.to_owned(), reference.to_owned());
                    if !pairs.contains(&pair) {
                        pairs.push(pair);
                    }
                }
            }
        }
        if reasons.is_empty() {
            Ok(Self { pairs })
        } else {
            Err(reasons)
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    fn references<'a>(&'a self, collection: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(c, _)| c == collection)
            .map(|(_, r)| r.as_str())
    }

    /// The webhook's `externalReferences` property: collection → reference name (an array
    /// when one collection has several). Protime does not document this shape.
    pub(crate) fn to_json_map(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        for (collection, reference) in &self.pairs {
            let value = serde_json::Value::String(reference.clone());
            match map.get_mut(collection) {
                None => {
                    map.insert(collection.clone(), value);
                }
                Some(serde_json::Value::Array(items)) => items.push(value),
                Some(existing) => {
                    let first = existing.take();
                    *existing = serde_json::Value::Array(vec![first, value]);
                }
            }
        }
        map
    }
}

/// A clocking before it gets an id and a change version.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub(crate) person: u64,
    pub(crate) date: NaiveDate,
    pub(crate) minute: i32,
    pub(crate) original: Option<i32>,
    pub(crate) calculated: Option<i32>,
    pub(crate) is_generated: bool,
    pub(crate) terminal: Option<u64>,
    pub(crate) geolocation: Option<(f64, f64)>,
    pub(crate) kind: DraftKind,
    pub(crate) deleted: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum DraftKind {
    InOut,
    Reason { reason: u64, is_open: bool },
    Activity { levels: Vec<ActivityLevel> },
    ActivityEnd,
}

impl Draft {
    /// The wire clocking, with this id and version. `None` only if an id is 0 (never for
    /// drafts built here).
    pub(crate) fn into_clocking(self, id: u64, change_version: String) -> Option<Clocking> {
        let (kind, reason, is_open, activity_levels) = match self.kind {
            DraftKind::InOut => (ClockingKind::InOut, None, None, Vec::new()),
            DraftKind::Reason { reason, is_open } => (
                ClockingKind::Reason,
                Some(ReasonRef {
                    id: NonZeroU64::new(reason)?,
                    external_references: None,
                }),
                Some(is_open),
                Vec::new(),
            ),
            DraftKind::Activity { levels } => (ClockingKind::Activity, None, None, levels),
            DraftKind::ActivityEnd => (ClockingKind::ActivityEnd, None, None, Vec::new()),
        };
        let terminal = match self.terminal {
            Some(t) => Some(TerminalRef {
                id: NonZeroU64::new(t)?,
                external_references: None,
            }),
            None => None,
        };
        Some(Clocking {
            activity_levels,
            calculated_time_of_day_in_minutes: self.calculated,
            change_version: Some(change_version),
            date: self.date,
            geolocation: self.geolocation.map(|(latitude, longitude)| Geolocation {
                latitude,
                longitude,
            }),
            id: NonZeroU64::new(id)?,
            is_generated: Some(self.is_generated),
            is_open,
            kind,
            original_time_of_day_in_minutes: self.original,
            person: PersonRef {
                id: NonZeroU64::new(self.person)?,
                external_references: None,
            },
            reason,
            status: Some(if self.deleted {
                ClockingStatus::Deleted
            } else {
                ClockingStatus::Active
            }),
            terminal,
            time_of_day_in_minutes: self.minute,
        })
    }
}

pub(crate) fn clamp_minute(minute: i32) -> i32 {
    minute.clamp(MINUTE_MIN, MINUTE_MAX)
}

fn round_to(minute: i32, step: i32, up: bool) -> i32 {
    let down = minute.div_euclid(step) * step;
    let rounded = if up && down != minute {
        down + step
    } else {
        down
    };
    clamp_minute(rounded)
}

/// Where a clocking was made: the person's terminal (sometimes another one), or a phone's
/// geolocation near it.
fn place(
    rng: &mut SeededRng,
    catalog: &Catalog,
    person: &Person,
) -> (Option<u64>, Option<(f64, f64)>) {
    let home = catalog
        .terminals
        .get(person.home_terminal)
        .or_else(|| catalog.terminals.first());
    if rng.chance(person.mobile_share) {
        let (lat, lon) = home.map_or((51.0, 4.4), |t| (t.latitude, t.longitude));
        let lat = (lat + (rng.unit() - 0.5) * 0.02).clamp(-90.0, 90.0);
        let lon = (lon + (rng.unit() - 0.5) * 0.02).clamp(-180.0, 180.0);
        // Six decimals, as phones report.
        let round6 = |v: f64| (v * 1e6).round() / 1e6;
        (None, Some((round6(lat), round6(lon))))
    } else if rng.chance(0.1) {
        (rng.pick(&catalog.terminals).map(|t| t.id), None)
    } else {
        (home.map(|t| t.id), None)
    }
}

/// One person's clockings of one day, in time order.
pub(crate) fn day_of(
    rng: &mut SeededRng,
    catalog: &Catalog,
    person: &Person,
    date: NaiveDate,
) -> Vec<Draft> {
    let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
    let works = if weekend {
        person.works_weekends && rng.chance(0.5)
    } else {
        rng.chance(0.93)
    };
    if !works {
        return Vec::new();
    }
    let (start, end) = person.shift.bounds();
    let t_in = start + rng.between(-12, 8);
    let t_out = end + rng.between(-5, 20);

    let mut drafts: Vec<Draft> = Vec::new();
    let push = |rng: &mut SeededRng, minute: i32, kind: DraftKind, drafts: &mut Vec<Draft>| {
        let (terminal, geolocation) = place(rng, catalog, person);
        drafts.push(Draft {
            person: person.id,
            date,
            minute: clamp_minute(minute),
            original: None,
            calculated: Some(clamp_minute(minute)),
            is_generated: false,
            terminal,
            geolocation,
            kind,
            deleted: false,
        });
    };

    push(rng, t_in, DraftKind::InOut, &mut drafts);
    if let Some(first) = drafts.first_mut() {
        // Clocking in early counts from the shift start; late, from the next 5 minutes.
        first.calculated = Some(if t_in < start {
            start
        } else {
            round_to(t_in, 5, true)
        });
    }
    if rng.chance(0.02) {
        // A double badge, removed by a supervisor: a soft-deleted clocking.
        push(rng, t_in + 1, DraftKind::InOut, &mut drafts);
        if let Some(last) = drafts.last_mut() {
            last.deleted = true;
        }
    }
    if person.activity_worker {
        let levels = catalog.activity_levels(rng);
        if !levels.is_empty() {
            let minute = t_in + rng.between(1, 4);
            push(rng, minute, DraftKind::Activity { levels }, &mut drafts);
        }
        if rng.chance(0.5) {
            let levels = catalog.activity_levels(rng);
            if !levels.is_empty() {
                let minute = start + rng.between(150, 200);
                push(rng, minute, DraftKind::Activity { levels }, &mut drafts);
            }
        }
    }
    if matches!(person.shift, Shift::Day { .. }) && rng.chance(0.7) {
        let lunch_out = start + 240 + rng.between(-10, 20);
        push(rng, lunch_out, DraftKind::InOut, &mut drafts);
        let lunch_in = lunch_out + 30 + rng.between(-3, 10);
        push(rng, lunch_in, DraftKind::InOut, &mut drafts);
    }
    if rng.chance(0.08)
        && let Some(reason) = rng.pick(&catalog.reasons).map(|r| r.id)
    {
        let is_open = rng.chance(0.5);
        let minute = start + rng.between(300, 420);
        push(
            rng,
            minute,
            DraftKind::Reason { reason, is_open },
            &mut drafts,
        );
    }
    if person.activity_worker {
        let minute = t_out - rng.between(1, 4);
        push(rng, minute, DraftKind::ActivityEnd, &mut drafts);
    }
    if rng.chance(0.03) {
        // Forgot to clock out: the system generates the out clocking at the shift end.
        drafts.push(Draft {
            person: person.id,
            date,
            minute: end,
            original: None,
            calculated: Some(end),
            is_generated: true,
            terminal: None,
            geolocation: None,
            kind: DraftKind::InOut,
            deleted: false,
        });
    } else {
        push(rng, t_out, DraftKind::InOut, &mut drafts);
        if let Some(last) = drafts.last_mut() {
            last.calculated = Some(if t_out > end {
                end
            } else {
                round_to(t_out, 5, false)
            });
        }
    }

    // A few in/out clockings were corrected by hand: the registered time is kept in
    // originalTimeOfDayInMinutes.
    for draft in &mut drafts {
        if matches!(draft.kind, DraftKind::InOut) && !draft.is_generated && rng.chance(0.06) {
            let corrected = if draft.minute < (start + end) / 2 {
                start
            } else {
                end
            };
            let corrected = if corrected == draft.minute {
                draft.minute + 5
            } else {
                corrected
            };
            draft.original = Some(draft.minute);
            draft.minute = clamp_minute(corrected);
            draft.calculated = Some(clamp_minute(corrected));
        }
    }
    drafts.sort_by_key(|d| d.minute);
    drafts
}

/// A clocking made "now" by the activity generator: any person, a day of the seeded range.
pub(crate) fn random_draft(
    rng: &mut SeededRng,
    catalog: &Catalog,
    first_day: NaiveDate,
    days: u32,
) -> Option<Draft> {
    let person = rng.pick(&catalog.people)?.clone();
    // Mostly the last days of the range, as if people were clocking today.
    let span = u64::from(days.max(1));
    let back = if rng.chance(0.7) {
        rng.below(span.min(2))
    } else {
        rng.below(span)
    };
    let date = first_day.checked_add_days(chrono::Days::new(span - 1 - back))?;
    let minute = if rng.chance(0.05) {
        if rng.chance(0.5) {
            rng.between(1440, 1900)
        } else {
            rng.between(-200, -1)
        }
    } else {
        rng.between(0, 1439)
    };
    let kind = match rng.below(20) {
        0..=11 => DraftKind::InOut,
        12..=14 => {
            let reason = rng.pick(&catalog.reasons)?.id;
            DraftKind::Reason {
                reason,
                is_open: rng.chance(0.5),
            }
        }
        15..=17 => {
            let levels = catalog.activity_levels(rng);
            if levels.is_empty() {
                DraftKind::InOut
            } else {
                DraftKind::Activity { levels }
            }
        }
        _ => DraftKind::ActivityEnd,
    };
    let (terminal, geolocation) = place(rng, catalog, &person);
    Some(Draft {
        person: person.id,
        date,
        minute,
        original: None,
        calculated: Some(round_to(minute, 5, false)),
        is_generated: false,
        terminal,
        geolocation,
        kind,
        deleted: false,
    })
}

/// An edit of `clocking` by a supervisor: a new time, the registered one kept as
/// `originalTimeOfDayInMinutes`.
pub(crate) fn edit(rng: &mut SeededRng, clocking: &mut Clocking) {
    let before = clocking.time_of_day_in_minutes;
    let mut delta = rng.between(-20, 20);
    if delta == 0 {
        delta = 5;
    }
    let mut after = clamp_minute(before + delta);
    if after == before {
        after = clamp_minute(before - delta);
    }
    if clocking.original_time_of_day_in_minutes.is_none() {
        clocking.original_time_of_day_in_minutes = Some(before);
    }
    clocking.time_of_day_in_minutes = after;
    clocking.calculated_time_of_day_in_minutes = Some(round_to(after, 5, false));
}
