//! Validation profiles: which fields of an `InsertOrUpdate` a body must carry.

/// Which rules a delivery body (or a listed clocking) must pass. Rules and their profiles:
/// `docs/validation-rules.md`.
///
/// - [`Profile::Documented`] (the default) requires only what the public Protime docs
///   require, which is what ordering needs: `changeType`, `data.id` and
///   `data.changeVersion`. Every other field is optional, and every documented constraint
///   still applies whenever its field is present (minute ranges, strict dates, enums,
///   coordinates, the kind-conditional fields). The docs' own delta example
///   `{"changeVersion":…,"id":1050,"date":"2024-12-02"}` is a valid `InsertOrUpdate`.
///   A clocking as the API lists it (a list page item, a get response:
///   [`crate::parse_clocking_with`]) may also lack `changeVersion`, as the docs' list and
///   get examples do; its version is then [`crate::ChangeVersion::absent`].
/// - [`Profile::Strict`] also requires `person`, `date`, `timeOfDayInMinutes` and `kind` on
///   every `InsertOrUpdate` (rules R7, R8, R9, R14 "required"), and `changeVersion` on a
///   listed clocking: a project decision, opt-in.
///
/// Whatever `Strict` accepts, `Documented` accepts with the same value.
///
/// ```
/// use protime_model::{parse_delivery_with, Profile};
///
/// let partial = br#"{"changeType":"InsertOrUpdate",
///     "data":{"changeVersion":"0000090200004BD0000B","id":1050,"date":"2024-12-02"}}"#;
/// assert_eq!(Profile::default(), Profile::Documented);
/// let change = parse_delivery_with(partial, Profile::Documented).unwrap();
/// assert_eq!(change.id().get(), 1050);
/// let errors = parse_delivery_with(partial, Profile::Strict).unwrap_err();
/// assert!(errors.has_pointer("/data/person"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Profile {
    /// Only what the public docs require: `changeType`, `data.id`, `data.changeVersion`.
    #[default]
    Documented,
    /// Today's project rules: `person`, `date`, `timeOfDayInMinutes` and `kind` are also
    /// required on every `InsertOrUpdate`.
    Strict,
}

impl Profile {
    /// Every profile, `Documented` first.
    pub const ALL: [Profile; 2] = [Profile::Documented, Profile::Strict];

    /// The profile's name, as in configuration and reports: `documented` or `strict`.
    ///
    /// ```
    /// assert_eq!(protime_model::Profile::Strict.name(), "strict");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Self::Documented => "documented",
            Self::Strict => "strict",
        }
    }

    /// Whether `person`, `date`, `timeOfDayInMinutes` and `kind` are required.
    pub(crate) fn requires_clocking_fields(self) -> bool {
        matches!(self, Self::Strict)
    }

    /// Whether a listed clocking (a list page, a get response) must carry `changeVersion`.
    /// A delivery or a delta change always must (ordering needs it); the docs' list and get
    /// examples carry none, so only Strict requires it of a listed clocking.
    pub(crate) fn requires_listed_change_version(self) -> bool {
        matches!(self, Self::Strict)
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
