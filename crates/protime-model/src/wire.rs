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
        // An absent version (a clocking listed without one) is omitted, never written as
        // an empty string, so the output reads back as absent.
        if !self.change_version.is_absent() {
            map.serialize_entry("changeVersion", &self.change_version)?;
        }
        map.serialize_entry("id", &self.id.get())?;
        if let Some(person) = &self.person {
            map.serialize_entry(
                "person",
                &RefOut {
                    id: person.id.get(),
                    external_references: person.external_references.as_ref(),
                },
            )?;
        }
        if let Some(date) = &self.date {
            map.serialize_entry("date", date)?;
        }
        if let Some(minute) = &self.time_of_day {
            map.serialize_entry("timeOfDayInMinutes", minute)?;
        }
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
        if let Some(kind) = &self.kind {
            map.serialize_entry("kind", kind.name())?;
        }
        match &self.kind {
            Some(ClockingKind::Reason { reason, is_open }) => {
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
            Some(ClockingKind::Activity { levels }) => {
                map.serialize_entry("activityLevels", levels.as_slice())?;
            }
            Some(ClockingKind::InOut | ClockingKind::ActivityEnd) | None => {}
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
    /// Deserializes through [`crate::parse_change_value`] (the default
    /// [`crate::Profile::Documented`], which accepts whatever the strict profile accepts, so
    /// a change serialized under either reads back): the same rules, with every
    /// violation in the error message. A key given twice in one object is refused (R28), as
    /// by [`crate::parse_delivery`]; the exact spelling of numbers (R29) is not seen here —
    /// use `parse_delivery` on the bytes for that. Like `parse_change_value`, it requires
    /// `changeVersion`: a serialized `InsertOrUpdate` of a clocking listed without one (its
    /// version [absent](crate::ChangeVersion::absent)) reads back with
    /// [`crate::parse_stored_change`] instead.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let UniqueKeys(value) = UniqueKeys::deserialize(deserializer)?;
        crate::parse_change_value(&value).map_err(serde::de::Error::custom)
    }
}

/// A `serde_json::Value` read from any serde format, refusing a key given twice in one object
/// (a plain `Value` silently keeps the last one).
struct UniqueKeys(serde_json::Value);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error as _, MapAccess, SeqAccess, Visitor};
        use serde_json::Value;

        struct UniqueVisitor;
        impl<'de> Visitor<'de> for UniqueVisitor {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys(Value::Bool(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys(Value::from(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys(Value::from(v)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys(Value::from(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys(Value::from(v)))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys(Value::String(v)))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys(Value::Null))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys(Value::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<UniqueKeys, D::Error> {
                UniqueKeys::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
                let mut items = Vec::new();
                while let Some(UniqueKeys(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(UniqueKeys(Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
                let mut object = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if object.contains_key(&key) {
                        return Err(A::Error::custom(format_args!(
                            "json.duplicate_key: the key `{key}` appears more than once in one object"
                        )));
                    }
                    let UniqueKeys(value) = map.next_value()?;
                    object.insert(key, value);
                }
                Ok(UniqueKeys(Value::Object(object)))
            }
        }
        deserializer.deserialize_any(UniqueVisitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn serde_users_get_duplicate_keys_refused_too() {
        let ok = br#"{"changeType":"Delete","data":{"changeVersion":"1","id":5,"x":[{"a":1}]}}"#;
        assert_eq!(
            serde_json::from_slice::<ClockingChange>(ok)
                .unwrap()
                .id()
                .get(),
            5
        );
        let twice =
            br#"{"changeType":"Delete","data":{"changeVersion":"1","id":5,"x":[{"a":1,"a":2}]}}"#;
        let error = serde_json::from_slice::<ClockingChange>(twice).unwrap_err();
        assert!(error.to_string().contains("json.duplicate_key"), "{error}");
    }
}
