//! The fast path of [`crate::parse_delivery`]: typed serde deserialization straight from the
//! body bytes, without building a `serde_json::Value`, for the common case of a valid
//! delivery.
//!
//! It only ever *accepts*. It is stricter than the rules (an integer-valued float such as
//! `510.0`, a duplicate key or any type surprise makes it give up), and whenever it gives up,
//! the full walk in `parse.rs` decides and reports every violation. So the fast path changes
//! speed, never verdicts; `tests/tests/agreement.rs` checks that both paths agree.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::model::{
    ActivityDefinitionId, ActivityDefinitionRef, ActivityLevel, ActivityLevelNumber,
    ActivityLevels, CalendarDate, ChangeVersion, Clocking, ClockingChange, ClockingId,
    ClockingKind, ClockingStatus, Geolocation, Latitude, Longitude, MinuteOfDay, PersonId,
    PersonRef, ReasonId, ReasonRef, TerminalId, TerminalRef,
};

/// A struct that must come from a JSON object. Derived struct deserializers also take a
/// JSON array (`[lat, lon]` as a `Coordinates`), which the rules reject.
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = ObjectOnly<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(ObjectOnly)
            }
        }
        deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "changeType", borrow)]
    change_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<ObjectOnly<Data<'a>>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "changeVersion", borrow)]
    change_version: Option<Cow<'a, str>>,
    id: Option<i64>,
    person: Option<ObjectOnly<NumberedRef>>,
    #[serde(borrow)]
    date: Option<Cow<'a, str>>,
    #[serde(rename = "timeOfDayInMinutes")]
    time_of_day: Option<i64>,
    #[serde(rename = "originalTimeOfDayInMinutes")]
    original_time_of_day: Option<i64>,
    #[serde(rename = "calculatedTimeOfDayInMinutes")]
    calculated_time_of_day: Option<i64>,
    #[serde(rename = "isGenerated")]
    is_generated: Option<bool>,
    terminal: Option<ObjectOnly<NumberedRef>>,
    geolocation: Option<ObjectOnly<Coordinates>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    reason: Option<ObjectOnly<NumberedRef>>,
    #[serde(rename = "isOpen")]
    is_open: Option<bool>,
    #[serde(rename = "activityLevels", borrow)]
    activity_levels: Option<Vec<ObjectOnly<Level<'a>>>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct NumberedRef {
    id: Option<i64>,
    #[serde(rename = "externalReferences")]
    external_references: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Coordinates {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

#[derive(Deserialize)]
struct Level<'a> {
    level: Option<i64>,
    #[serde(rename = "activityDefinition", borrow)]
    activity_definition: Option<ObjectOnly<Definition<'a>>>,
}

#[derive(Deserialize)]
struct Definition<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "externalReferences")]
    external_references: Option<BTreeMap<String, String>>,
}

/// The change, if the body is a valid delivery that the fast path understands; `None`
/// means "let the full walk decide", not "invalid".
pub(crate) fn parse(body: &[u8]) -> Option<ClockingChange> {
    let ObjectOnly(envelope) = serde_json::from_slice::<ObjectOnly<Envelope<'_>>>(body).ok()?;
    let ObjectOnly(mut data) = envelope.data?;
    let change_version = ChangeVersion::new(data.change_version.take()?.into_owned()).ok()?;
    let id = ClockingId::new(data.id?).ok()?;
    match envelope.change_type?.as_ref() {
        "Delete" => Some(ClockingChange::Delete { id, change_version }),
        "InsertOrUpdate" => clocking(change_version, id, data).map(ClockingChange::InsertOrUpdate),
        _ => None,
    }
}

/// The clocking, if `item` is a valid clocking object (the `data` of an `InsertOrUpdate`, as
/// a list page or a get response carries it) that the fast path understands; `None` means
/// "let the full walk decide".
pub(crate) fn parse_clocking(item: &[u8]) -> Option<Clocking> {
    let ObjectOnly(mut data) = serde_json::from_slice::<ObjectOnly<Data<'_>>>(item).ok()?;
    let change_version = ChangeVersion::new(data.change_version.take()?.into_owned()).ok()?;
    let id = ClockingId::new(data.id?).ok()?;
    clocking(change_version, id, data)
}

fn optional_minute(value: Option<i64>) -> Option<Option<MinuteOfDay>> {
    match value {
        None => Some(None),
        Some(m) => MinuteOfDay::new(m).ok().map(Some),
    }
}

fn kind(data: &mut Data<'_>) -> Option<ClockingKind> {
    let name = data.kind.take()?;
    let reason = data.reason.take();
    let is_open = data.is_open.take();
    let levels = data.activity_levels.take();
    match name.as_ref() {
        "Reason" if levels.is_none() => {
            let ObjectOnly(reason) = reason?;
            Some(ClockingKind::Reason {
                reason: ReasonRef {
                    id: ReasonId::new(reason.id?).ok()?,
                    external_references: reason.external_references,
                },
                is_open,
            })
        }
        "Activity" if reason.is_none() && is_open.is_none() => {
            let mut out = Vec::new();
            for ObjectOnly(level) in levels? {
                let ObjectOnly(definition) = level.activity_definition?;
                out.push(ActivityLevel {
                    level: ActivityLevelNumber::new(level.level?).ok()?,
                    activity_definition: ActivityDefinitionRef {
                        id: ActivityDefinitionId::new(definition.id?.into_owned()).ok()?,
                        external_references: definition.external_references,
                    },
                });
            }
            Some(ClockingKind::Activity {
                levels: ActivityLevels::new(out)?,
            })
        }
        "InOut" | "ActivityEnd" if reason.is_none() && is_open.is_none() && levels.is_none() => {
            Some(if name == "InOut" {
                ClockingKind::InOut
            } else {
                ClockingKind::ActivityEnd
            })
        }
        _ => None,
    }
}

fn clocking(change_version: ChangeVersion, id: ClockingId, mut data: Data<'_>) -> Option<Clocking> {
    let kind = kind(&mut data)?;
    let ObjectOnly(person) = data.person?;
    let terminal = match data.terminal {
        None => None,
        Some(ObjectOnly(terminal)) => Some(TerminalRef {
            id: TerminalId::new(terminal.id?).ok()?,
            external_references: terminal.external_references,
        }),
    };
    let geolocation = match data.geolocation {
        None => None,
        Some(ObjectOnly(coordinates)) => Some(Geolocation {
            latitude: Latitude::new(coordinates.latitude?).ok()?,
            longitude: Longitude::new(coordinates.longitude?).ok()?,
        }),
    };
    let status = match data.status {
        None => None,
        Some(name) => Some(ClockingStatus::from_name(&name)?),
    };
    Some(Clocking {
        change_version,
        id,
        person: PersonRef {
            id: PersonId::new(person.id?).ok()?,
            external_references: person.external_references,
        },
        date: CalendarDate::parse(&data.date?)?,
        time_of_day: MinuteOfDay::new(data.time_of_day?).ok()?,
        original_time_of_day: optional_minute(data.original_time_of_day)?,
        calculated_time_of_day: optional_minute(data.calculated_time_of_day)?,
        is_generated: data.is_generated,
        terminal,
        geolocation,
        kind,
        status,
    })
}
