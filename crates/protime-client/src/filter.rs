//! Typed builders for Protime's `filter` grammar (`identifier op value`, joined by `and`).

use chrono::{Months, NaiveDate};
use protime_raw::types::{ClockingKind, CollectionName, WebhookStatus};

use crate::error::Error;

/// Filter of `GET /webhooks`: by status and/or collection.
///
/// ```
/// use protime_client::WebhookFilter;
/// use protime_raw::types::{CollectionName, WebhookStatus};
/// let filter = WebhookFilter::default().status(WebhookStatus::Disabled).collection(CollectionName::Clockings);
/// assert_eq!(filter.expression().as_deref(), Some("status eq 'Disabled' and collectionName eq 'clockings'"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use]
pub struct WebhookFilter {
    status: Option<WebhookStatus>,
    collection: Option<CollectionName>,
    collection_identifier: Option<String>,
}

impl WebhookFilter {
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
    /// assert_eq!(filter.expression().as_deref(), Some("collectionName eq 'clockings'"));
    /// ```
    pub fn collection(mut self, collection: CollectionName) -> Self {
        self.collection = Some(collection);
        self
    }

    /// The filter identifier of the collection name. Protime documents that the list can be
    /// filtered by collection name but not the identifier; `collectionName` (the property's
    /// name) is assumed.
    ///
    /// ```
    /// use protime_raw::types::CollectionName;
    /// use protime_client::WebhookFilter;
    /// let filter = WebhookFilter::default().collection(CollectionName::Clockings).collection_identifier("collection");
    /// assert_eq!(filter.expression().as_deref(), Some("collection eq 'clockings'"));
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
                .unwrap_or("collectionName");
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
