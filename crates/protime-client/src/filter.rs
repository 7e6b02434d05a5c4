//! Typed builders for Protime's `filter` grammar (`identifier op value`, joined by `and`).

use chrono::{Datelike as _, Months, NaiveDate};
use protime_raw::types::{ClockingKind, CollectionName, WebhookStatus};

use crate::error::Error;

/// Filter of `GET /webhooks`: by status and/or collection.
///
/// The collection is filtered as `collection-name eq '…'`: the set-up guide
/// (<https://documentation.myprotime.eu/protimeapi/how-to/set-up-webhooks/>) says the list
/// can be filtered by collection name (the pages write it "collection name" and
/// "collection-name") but shows no example for it: `collection-name` is the one spelling
/// the docs give. The property's own name, `collectionName`, stays selectable with
/// [`Self::collection_identifier`].
///
/// ```
/// use protime_client::WebhookFilter;
/// use protime_raw::types::{CollectionName, WebhookStatus};
/// let filter = WebhookFilter::default().status(WebhookStatus::Disabled).collection(CollectionName::Clockings);
/// assert_eq!(filter.expression().as_deref(), Some("status eq 'Disabled' and collection-name eq 'clockings'"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use]
pub struct WebhookFilter {
    status: Option<WebhookStatus>,
    collection: Option<CollectionName>,
    collection_identifier: Option<String>,
}

impl WebhookFilter {
    /// The identifier of the collection-name filter unless
    /// [`Self::collection_identifier`] says otherwise.
    pub const DEFAULT_COLLECTION_IDENTIFIER: &'static str = "collection-name";

    /// Only webhooks with this status.
    ///
    /// ```
    /// use protime_raw::types::WebhookStatus;
    /// use protime_client::WebhookFilter;
    /// let filter = WebhookFilter::default().status(WebhookStatus::Enabled);
    /// assert_eq!(filter.expression().as_deref(), Some("status eq 'Enabled'"));
    /// ```
    pub fn status(mut self, status: WebhookStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only webhooks of this collection.
    ///
    /// ```
    /// use protime_raw::types::CollectionName;
    /// use protime_client::WebhookFilter;
    /// let filter = WebhookFilter::default().collection(CollectionName::Clockings);
    /// assert_eq!(filter.expression().as_deref(), Some("collection-name eq 'clockings'"));
    /// ```
    pub fn collection(mut self, collection: CollectionName) -> Self {
        self.collection = Some(collection);
        self
    }

    /// The filter identifier of the collection name (default
    /// [`Self::DEFAULT_COLLECTION_IDENTIFIER`], `collection-name`). Protime documents that the
    /// list can be filtered by collection name but shows no example; if a tenant refuses
    /// `collection-name`, try the property's name `collectionName`.
    ///
    /// ```
    /// use protime_raw::types::CollectionName;
    /// use protime_client::WebhookFilter;
    /// let filter = WebhookFilter::default().collection(CollectionName::Clockings).collection_identifier("collectionName");
    /// assert_eq!(filter.expression().as_deref(), Some("collectionName eq 'clockings'"));
    /// ```
    pub fn collection_identifier(mut self, identifier: impl Into<String>) -> Self {
        self.collection_identifier = Some(identifier.into());
        self
    }

    /// The filter expression, or `None` for no filter.
    ///
    /// ```
    /// use protime_client::WebhookFilter;
    /// assert_eq!(WebhookFilter::default().expression(), None);
    /// ```
    pub fn expression(&self) -> Option<String> {
        let mut terms = Vec::new();
        if let Some(status) = self.status {
            terms.push(format!("status eq '{status}'"));
        }
        if let Some(collection) = self.collection {
            let identifier = self
                .collection_identifier
                .as_deref()
                .unwrap_or(Self::DEFAULT_COLLECTION_IDENTIFIER);
            terms.push(format!("{identifier} eq '{collection}'"));
        }
        (!terms.is_empty()).then(|| terms.join(" and "))
    }
}

/// Filter of `GET /clockings`: a date range of at most one year (required by Protime,
/// checked before sending), optionally people and a kind.
///
/// ```
/// use chrono::NaiveDate;
/// use protime_client::ClockingsFilter;
/// use protime_raw::types::ClockingKind;
///
/// let day = |d| NaiveDate::from_ymd_opt(2026, 1, d).unwrap();
/// let filter = ClockingsFilter::between(day(1), day(31)).unwrap().persons([1, 2]).kind(ClockingKind::Reason);
/// assert_eq!(filter.expression(), "date ge '2026-01-01' and date le '2026-01-31' and person in (1, 2) and kind eq 'Reason'");
/// assert!(ClockingsFilter::between(day(1), NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct ClockingsFilter {
    from: NaiveDate,
    to: NaiveDate,
    persons: Vec<i64>,
    kind: Option<ClockingKind>,
}

impl ClockingsFilter {
    /// Clockings dated `from..=to`. Protime allows at most one year: `to` must be before the
    /// same day one year after `from`.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_client::{ClockingsFilter, Error};
    /// let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    /// assert!(ClockingsFilter::between(day(1, 1), day(12, 31)).is_ok());
    /// assert!(matches!(ClockingsFilter::between(day(2, 1), day(1, 1)), Err(Error::InvalidFilter(_))));
    /// ```
    pub fn between(from: NaiveDate, to: NaiveDate) -> Result<Self, Error> {
        if to < from {
            return Err(Error::InvalidFilter(format!(
                "the date range ends ({to}) before it starts ({from})"
            )));
        }
        let limit = from
            .checked_add_months(Months::new(12))
            .ok_or_else(|| Error::InvalidFilter(format!("{from} is too far in the future")))?;
        if to >= limit {
            return Err(Error::InvalidFilter(format!(
                "the date range {from}..={to} is longer than one year (Protime's limit); the last allowed end is {}",
                limit.pred_opt().unwrap_or(limit)
            )));
        }
        Ok(Self {
            from,
            to,
            persons: Vec::new(),
            kind: None,
        })
    }

    /// Only this person.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_client::ClockingsFilter;
    /// let day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    /// let filter = ClockingsFilter::between(day, day)?.person(42);
    /// assert!(filter.expression().ends_with(" and person in (42)"));
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn person(mut self, id: i64) -> Self {
        self.persons.push(id);
        self
    }

    /// Only these people.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_client::ClockingsFilter;
    /// let day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    /// let filter = ClockingsFilter::between(day, day)?.person(1).persons([2, 3]);
    /// assert!(filter.expression().ends_with(" and person in (1, 2, 3)"));
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn persons(mut self, ids: impl IntoIterator<Item = i64>) -> Self {
        self.persons.extend(ids);
        self
    }

    /// Only clockings of this kind.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_raw::types::ClockingKind;
    /// use protime_client::ClockingsFilter;
    /// let day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    /// let filter = ClockingsFilter::between(day, day)?.kind(ClockingKind::InOut);
    /// assert!(filter.expression().ends_with(" and kind eq 'InOut'"));
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn kind(mut self, kind: ClockingKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// First day of the range.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_client::ClockingsFilter;
    /// let (from, to) = (NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
    /// assert_eq!(ClockingsFilter::between(from, to)?.from(), from);
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn from(&self) -> NaiveDate {
        self.from
    }

    /// Last day of the range.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_client::ClockingsFilter;
    /// let (from, to) = (NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
    /// assert_eq!(ClockingsFilter::between(from, to)?.to(), to);
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn to(&self) -> NaiveDate {
        self.to
    }

    /// The filter expression as Protime expects it (not yet URL-encoded).
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_client::ClockingsFilter;
    /// let (from, to) = (NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
    /// assert_eq!(ClockingsFilter::between(from, to)?.expression(), "date ge '2026-01-01' and date le '2026-03-31'");
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn expression(&self) -> String {
        let mut expression = format!(
            "date ge '{}' and date le '{}'",
            self.from.format("%Y-%m-%d"),
            self.to.format("%Y-%m-%d")
        );
        if !self.persons.is_empty() {
            let ids: Vec<String> = self.persons.iter().map(i64::to_string).collect();
            expression.push_str(&format!(" and person in ({})", ids.join(", ")));
        }
        if let Some(kind) = self.kind {
            expression.push_str(&format!(" and kind eq '{kind}'"));
        }
        expression
    }
}

/// Where Protime states the delta filter's rules: the clockings delta pages begin the
/// sentence, the same delta template states it in full for access clockings.
pub const DELTA_FILTER_DOCS: &str = "https://documentation.myprotime.eu/protimeapi/reference/collections/clockings/delta/ (in full: https://documentation.myprotime.eu/protimeapi/reference/collections/access-clockings/delta/)";

/// Filter of a delta initial load (`GET /clockings?filter=…&delta`): a start date, an
/// optional end date and optionally a kind — and, by construction, no people: "people cannot
/// be used in the delta filter". The start must be a recent date in the past, no earlier
/// than 1 January of the previous year; [`Self::check_at`] checks it against a given day
/// and [`crate::ProtimeClient::delta_initial_load`] against today (UTC) before sending.
/// Source: [`DELTA_FILTER_DOCS`].
///
/// ```
/// use chrono::NaiveDate;
/// use protime_client::{DeltaFilter, Error};
/// let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
/// let filter = DeltaFilter::since(day(2025, 1, 1));
/// assert_eq!(filter.expression(), "date ge '2025-01-01'");
/// assert!(filter.check_at(day(2026, 11, 30)).is_ok());
/// // In 2027 the earliest start is 2026-01-01:
/// let refused = filter.check_at(day(2027, 3, 1)).unwrap_err();
/// assert!(matches!(refused, Error::DeltaStartOutOfRange { earliest, .. } if earliest == day(2026, 1, 1)));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct DeltaFilter {
    from: NaiveDate,
    to: Option<NaiveDate>,
    kind: Option<ClockingKind>,
}

impl DeltaFilter {
    /// Clockings dated `from` or later (the end date is optional).
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_client::DeltaFilter;
    /// let from = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    /// assert_eq!(DeltaFilter::since(from).from(), from);
    /// ```
    pub fn since(from: NaiveDate) -> Self {
        Self {
            from,
            to: None,
            kind: None,
        }
    }

    /// Only clockings dated `to` or earlier.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_client::DeltaFilter;
    /// let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    /// let filter = DeltaFilter::since(day(1, 1)).until(day(1, 31));
    /// assert_eq!(filter.expression(), "date ge '2026-01-01' and date le '2026-01-31'");
    /// ```
    pub fn until(mut self, to: NaiveDate) -> Self {
        self.to = Some(to);
        self
    }

    /// Only clockings of this kind. The delta pages exclude people only; `kind` is the list
    /// filter's (<https://documentation.myprotime.eu/protimeapi/reference/collections/clockings/get-list/>),
    /// not named on the delta pages.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_client::DeltaFilter;
    /// use protime_raw::types::ClockingKind;
    /// let filter = DeltaFilter::since(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).kind(ClockingKind::InOut);
    /// assert_eq!(filter.expression(), "date ge '2026-01-01' and kind eq 'InOut'");
    /// ```
    pub fn kind(mut self, kind: ClockingKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// First day.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_client::DeltaFilter;
    /// let from = NaiveDate::from_ymd_opt(2026, 2, 1).unwrap();
    /// assert_eq!(DeltaFilter::since(from).from(), from);
    /// ```
    pub fn from(&self) -> NaiveDate {
        self.from
    }

    /// Last day, if any.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_client::DeltaFilter;
    /// let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    /// assert_eq!(DeltaFilter::since(day(1, 1)).to(), None);
    /// assert_eq!(DeltaFilter::since(day(1, 1)).until(day(2, 1)).to(), Some(day(2, 1)));
    /// ```
    pub fn to(&self) -> Option<NaiveDate> {
        self.to
    }

    /// The earliest start Protime allows on `today`: 1 January of the previous year.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_client::DeltaFilter;
    /// let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    /// assert_eq!(DeltaFilter::earliest_start(day(2026, 11, 30)), day(2025, 1, 1));
    /// assert_eq!(DeltaFilter::earliest_start(day(2027, 1, 1)), day(2026, 1, 1));
    /// ```
    pub fn earliest_start(today: NaiveDate) -> NaiveDate {
        NaiveDate::from_ymd_opt(today.year() - 1, 1, 1).unwrap_or(NaiveDate::MIN)
    }

    /// Checks the filter as Protime would on `today`: the start no earlier than 1 January of
    /// the previous year and not after `today` (a start "in the past"), and an end, when
    /// given, not before the start. A start outside that range is
    /// [`Error::DeltaStartOutOfRange`] (carrying the allowed range); an end before the start
    /// is [`Error::InvalidFilter`].
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_client::{DeltaFilter, Error};
    /// let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    /// let today = day(2026, 11, 30);
    /// assert!(DeltaFilter::since(day(2025, 1, 1)).check_at(today).is_ok());
    /// assert!(matches!(
    ///     DeltaFilter::since(day(2024, 12, 31)).check_at(today),
    ///     Err(Error::DeltaStartOutOfRange { .. })
    /// ));
    /// assert!(matches!(DeltaFilter::since(day(2026, 2, 1)).until(day(2026, 1, 1)).check_at(today), Err(Error::InvalidFilter(_))));
    /// ```
    pub fn check_at(&self, today: NaiveDate) -> Result<(), Error> {
        let earliest = Self::earliest_start(today);
        if self.from < earliest || self.from > today {
            return Err(Error::DeltaStartOutOfRange {
                start: self.from,
                earliest,
                latest: today,
            });
        }
        if let Some(to) = self.to
            && to < self.from
        {
            return Err(Error::InvalidFilter(format!(
                "the delta date range ends ({to}) before it starts ({})",
                self.from
            )));
        }
        Ok(())
    }

    /// The filter expression as Protime expects it (not yet URL-encoded).
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use protime_client::DeltaFilter;
    /// let filter = DeltaFilter::since(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
    /// assert_eq!(filter.expression(), "date ge '2026-01-01'");
    /// ```
    pub fn expression(&self) -> String {
        let mut expression = format!("date ge '{}'", self.from.format("%Y-%m-%d"));
        if let Some(to) = self.to {
            expression.push_str(&format!(" and date le '{}'", to.format("%Y-%m-%d")));
        }
        if let Some(kind) = self.kind {
            expression.push_str(&format!(" and kind eq '{kind}'"));
        }
        expression
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
    }

    #[test]
    fn the_delta_start_floor_is_1_january_of_the_previous_year() {
        let today = day(2026, 11, 30);
        for good in [day(2025, 1, 1), day(2025, 6, 30), day(2026, 11, 30)] {
            assert!(DeltaFilter::since(good).check_at(today).is_ok(), "{good}");
        }
        for (bad, today) in [
            (day(2024, 12, 31), day(2026, 11, 30)),
            (day(2026, 12, 1), day(2026, 11, 30)),
            // On 1 January the floor moves a year on at once.
            (day(2025, 12, 31), day(2027, 1, 1)),
        ] {
            match DeltaFilter::since(bad).check_at(today) {
                Err(Error::DeltaStartOutOfRange {
                    start,
                    earliest,
                    latest,
                }) => {
                    assert_eq!(start, bad);
                    assert_eq!(earliest, day(today.year() - 1, 1, 1));
                    assert_eq!(latest, today);
                }
                other => panic!("{bad} on {today}: {other:?}"),
            }
        }
        let message = DeltaFilter::since(day(2024, 12, 31))
            .check_at(today)
            .map_err(|e| e.to_string())
            .unwrap_err();
        assert!(message.contains("2025-01-01..=2026-11-30"), "{message}");
        assert!(
            message.contains("1 January of the previous year"),
            "{message}"
        );
        assert!(
            message.contains("https://documentation.myprotime.eu/protimeapi/reference/collections/clockings/delta/"),
            "{message}"
        );
        // The end date is optional, and checked against the start when given.
        assert!(
            DeltaFilter::since(day(2025, 3, 1))
                .until(day(2025, 3, 1))
                .check_at(today)
                .is_ok()
        );
        assert!(matches!(
            DeltaFilter::since(day(2025, 3, 2))
                .until(day(2025, 3, 1))
                .check_at(today),
            Err(Error::InvalidFilter(_))
        ));
    }

    #[test]
    fn the_webhook_filter_uses_collection_name_by_default() {
        let filter = WebhookFilter::default().collection(CollectionName::Clockings);
        assert_eq!(
            filter.expression().as_deref(),
            Some("collection-name eq 'clockings'")
        );
        assert_eq!(
            filter
                .collection_identifier("collectionName")
                .expression()
                .as_deref(),
            Some("collectionName eq 'clockings'")
        );
    }
}
