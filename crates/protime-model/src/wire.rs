//! Serialization of the model back to Protime's wire format, and `Deserialize` through the
//! validator, so serde users get the same rules as [`crate::parse_delivery`].

use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::{
    ActivityDefinitionRef, ActivityLevel, CalendarDate, ChangeVersion, Clocking, ClockingChange,
    ClockingKind, ExternalReferences, Geolocation, MinuteOfDay,
};

/// `{id, externalReferences?}` on the wire.
#[derive(Serialize)]
struct RefOut<'a, Id: Serialize> {
    id: Id,
    #[serde(rename = "externalReferences", skip_serializing_if = "Option::is_none")]
    external_references: Option<&'a ExternalReferences>,
}

impl Serialize for ChangeVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Serialize for MinuteOfDay {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i16(self.get())
    }
}

impl Serialize for CalendarDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Serialize for Geolocation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("longitude", &self.longitude.get())?;
        map.serialize_entry("latitude", &self.latitude.get())?;
        map.end()
    }
}

impl Serialize for ActivityDefinitionRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RefOut {
            id: self.id.as_str(),
            external_references: self.external_references.as_ref(),
        }
        .serialize(serializer)
    }
}

impl Serialize for ActivityLevel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("level", &self.level.get())?;
        map.serialize_entry("activityDefinition", &self.activity_definition)?;
        map.end()
    }
}

impl Serialize for Clocking {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("changeVersion", &self.change_version)?;
        map.serialize_entry("id", &self.id.get())?;
        map.serialize_entry(
            "person",
            &RefOut {
                id: self.person.id.get(),
                external_references: self.person.external_references.as_ref(),
            },
        )?;
        map.serialize_entry("date", &self.date)?;
        map.serialize_entry("timeOfDayInMinutes", &self.time_of_day)?;
        if let Some(minute) = self.original_time_of_day {
            map.serialize_entry("originalTimeOfDayInMinutes", &minute)?;
        }
        if let Some(minute) = self.calculated_time_of_day {
            map.serialize_entry("calculatedTimeOfDayInMinutes", &minute)?;
        }
        if let Some(generated) = self.is_generated {
            map.serialize_entry("isGenerated", &generated)?;
        }
        if let Some(terminal) = &self.terminal {
            map.serialize_entry(
                "terminal",
                &RefOut {
                    id: terminal.id.get(),
                    external_references: terminal.external_references.as_ref(),
                },
            )?;
        }
        if let Some(geolocation) = &self.geolocation {
            map.serialize_entry("geolocation", geolocation)?;
        }
        map.serialize_entry("kind", self.kind.name())?;
        match &self.kind {
            ClockingKind::Reason { reason, is_open } => {
                map.serialize_entry(
                    "reason",
                    &RefOut {
                        id: reason.id.get(),
                        external_references: reason.external_references.as_ref(),
                    },
                )?;
                if let Some(open) = is_open {
                    map.serialize_entry("isOpen", open)?;
                }
            }
            ClockingKind::Activity { levels } => {
                map.serialize_entry("activityLevels", levels.as_slice())?;
            }
            ClockingKind::InOut | ClockingKind::ActivityEnd => {}
        }
        if let Some(status) = self.status {
            map.serialize_entry("status", status.name())?;
        }
        map.end()
    }
}

/// `data` of a `Delete` change.
#[derive(Serialize)]
struct DeletionOut<'a> {
    #[serde(rename = "changeVersion")]
    change_version: &'a ChangeVersion,
    id: i64,
}

impl Serialize for ClockingChange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("changeType", self.change_type().name())?;
        match self {
            Self::InsertOrUpdate(clocking) => map.serialize_entry("data", clocking)?,
            Self::Delete { id, change_version } => map.serialize_entry(
                "data",
                &DeletionOut {
                    change_version,
                    id: id.get(),
                },
            )?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ClockingChange {
    /// Deserializes through [`crate::parse_change_value`]: the same rules, with every
    /// violation in the error message.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        crate::parse_change_value(&value).map_err(serde::de::Error::custom)
    }
}
