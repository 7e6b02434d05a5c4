//! Clockings: a paged list as a `Stream` that follows `nextLink` (an empty page does not end
//! it), one clocking by id, and delta (initial load, then changes).

use futures_util::{Stream, StreamExt as _};
use protime_raw::types as raw;

use crate::ProtimeClient;
use crate::error::Error;
use crate::filter::ClockingsFilter;
use protime_model::ValidationErrors;
use protime_model::{Clocking, ClockingChange};

/// Where the next delta request goes: the opaque `deltaLink` Protime returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaToken {
    link: String,
}

impl DeltaToken {
    /// A token from a stored `deltaLink`.
    ///
    /// ```
    /// use protime_client::DeltaToken;
    /// let stored = "/connector/protimeapi/api/v1/delta/clockings?deltaToken=d1";
    /// assert_eq!(DeltaToken::from_link(stored).link(), stored);
    /// ```
    pub fn from_link(link: impl Into<String>) -> Self {
        Self { link: link.into() }
    }

    /// The `deltaLink`, to store between runs.
    ///
    /// ```
    /// use protime_client::DeltaToken;
    /// let token = DeltaToken::from_link("/connector/protimeapi/api/v1/delta/clockings?deltaToken=d1");
    /// let stored = token.link().to_owned(); // persist between runs
    /// assert_eq!(DeltaToken::from_link(stored), token);
    /// ```
    pub fn link(&self) -> &str {
        &self.link
    }
}

/// Result of a delta initial load: the baseline and the token for the changes after it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeltaSnapshot {
    /// Every clocking of the filter that passed validation.
    pub clockings: Vec<Clocking>,
    /// Items that failed validation, with why (kept, not dropped silently).
    pub invalid: Vec<(raw::Clocking, ValidationErrors)>,
    /// Where to ask for the changes since this load.
    pub token: DeltaToken,
}

/// One page of a clockings list, validated item by item.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClockingPage {
    /// Page number, from 0.
    pub number: u64,
    /// The items that passed validation, in the order Protime sent them.
    pub clockings: Vec<Clocking>,
    /// Items that failed validation, with why (kept, not dropped silently).
    pub invalid: Vec<ValidationErrors>,
}

/// Changes since a delta token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeltaChanges {
    /// The valid changes, in the order Protime sent them (apply them by `changeVersion`).
    pub changes: Vec<ClockingChange>,
    /// Changes that failed validation, with why.
    pub invalid: Vec<(raw::ClockingChange, ValidationErrors)>,
    /// Where to ask next (every delta response carries a new link).
    pub next: DeltaToken,
}

enum Page {
    First,
    Link(String),
    Done,
}

/// A 410 on a delta request means the delta expired (72 hours after its last use); on other
/// requests it stays an [`Error::Api`].
fn delta_expired(error: Error) -> Error {
    match error {
        Error::Api { status: 410, .. } => Error::DeltaExpired,
        other => other,
    }
}

/// A list page with its items still as raw JSON: each is validated on its own, straight
/// from its bytes, so one invalid item is reported without failing its page.
#[derive(serde::Deserialize)]
struct PageBody<'a> {
    #[serde(borrow)]
    value: Vec<&'a serde_json::value::RawValue>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
}

fn decode_page(number: u64, status: u16, body: &[u8]) -> Result<(ClockingPage, Page), Error> {
    let page: PageBody<'_> = serde_json::from_slice(body).map_err(|e| Error::InvalidResponse {
        operation: "list_clockings",
        status: Some(status),
        message: format!("the page is not a clockings list: {e}"),
    })?;
    let mut clockings = Vec::with_capacity(page.value.len());
    let mut invalid = Vec::new();
    for item in page.value {
        match protime_model::parse_clocking(item.get().as_bytes()) {
            Ok(clocking) => clockings.push(clocking),
            Err(errors) => invalid.push(errors),
        }
    }
    let next = page.next_link.map_or(Page::Done, Page::Link);
    Ok((
        ClockingPage {
            number,
            clockings,
            invalid,
        },
        next,
    ))
}

impl ProtimeClient {
    async fn first_clockings_page(
        &self,
        filter: &ClockingsFilter,
        delta: bool,
    ) -> Result<raw::ClockingList, Error> {
        let expression = filter.expression();
        Ok(self
            .execute("list_clockings", |raw_client, _| {
                let expression = expression.clone();
                async move {
                    let mut request = raw_client.list_clockings().filter(expression);
                    if delta {
                        request = request.delta(String::new());
                    }
                    request.send().await
                }
            })
            .await?
            .into_inner())
    }

    /// Every clocking of `filter`, page after page: follows `nextLink` (host-relative) until
    /// it is absent; an empty page does not end the list. Each item is validated; an invalid
    /// one is yielded as [`Error::InvalidItem`] (after the valid items of its page) and the
    /// stream goes on. A request error is yielded once and ends the stream. See
    /// [`Self::clocking_pages`] for whole pages.
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// use futures_util::StreamExt as _;
    /// use protime_client::ClockingsFilter;
    /// let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    /// let filter = ClockingsFilter::between(day(1, 1), day(3, 31))?;
    /// let mut clockings = std::pin::pin!(client.clockings(&filter));
    /// while let Some(clocking) = clockings.next().await {
    ///     println!("{}", clocking?.id);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn clockings<'a>(
        &'a self,
        filter: &'a ClockingsFilter,
    ) -> impl Stream<Item = Result<Clocking, Error>> + Send + 'a {
        self.clocking_pages(filter).flat_map(|page| {
            let items: Vec<Result<Clocking, Error>> = match page {
                Err(error) => vec![Err(error)],
                Ok(page) => page
                    .clockings
                    .into_iter()
                    .map(Ok)
                    .chain(page.invalid.into_iter().map(|errors| {
                        Err(Error::InvalidItem {
                            operation: "list_clockings",
                            errors,
                        })
                    }))
                    .collect(),
            };
            futures_util::stream::iter(items)
        })
    }

    /// Every clocking of `filter`, one page at a time (what a sync gathers into its
    /// transactions): follows `nextLink` until it is absent; an empty page does not end the
    /// list. Memory holds one page. A request error is yielded once and ends the stream.
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// use futures_util::StreamExt as _;
    /// use protime_client::ClockingsFilter;
    /// let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    /// let filter = ClockingsFilter::between(day(1, 1), day(3, 31))?;
    /// let mut pages = std::pin::pin!(client.clocking_pages(&filter));
    /// while let Some(page) = pages.next().await {
    ///     let page = page?;
    ///     println!("page {}: {} clockings, {} invalid", page.number, page.clockings.len(), page.invalid.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn clocking_pages<'a>(
        &'a self,
        filter: &'a ClockingsFilter,
    ) -> impl Stream<Item = Result<ClockingPage, Error>> + Send + 'a {
        futures_util::stream::unfold((Page::First, 0_u64), move |(page, number)| async move {
            let url = match page {
                Page::Done => return None,
                Page::First => self.clockings_url(filter),
                Page::Link(link) => self.link_url(&link),
            };
            let fetched = match url {
                Ok(url) => self.get_bytes("list_clockings", url).await,
                Err(error) => Err(error),
            };
            Some(
                match fetched.and_then(|(status, body)| decode_page(number, status, &body)) {
                    Err(error) => (Err(error), (Page::Done, number)),
                    Ok((page, next)) => (Ok(page), (next, number + 1)),
                },
            )
        })
    }

    /// The first page of `filter`: `GET …/clockings?filter=…`, the request the generated
    /// `list_clockings` sends, without the `api-version` header progenitor adds (the docs
    /// do not ask for it).
    fn clockings_url(&self, filter: &ClockingsFilter) -> Result<reqwest::Url, Error> {
        let mut url = self.link_url(&format!("{}/clockings", protime_raw::API_PATH_PREFIX))?;
        url.query_pairs_mut()
            .append_pair("filter", &filter.expression());
        Ok(url)
    }

    /// One clocking by id, validated.
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// let clocking = client.get_clocking(12345).await?;
    /// println!("{} on {}", clocking.id, clocking.date);
    /// # Ok(()) }
    /// ```
    pub async fn get_clocking(&self, id: i64) -> Result<Clocking, Error> {
        let clocking = self
            .execute("get_clocking", |raw_client, _| async move {
                raw_client.get_clocking().id(id).send().await
            })
            .await?
            .into_inner();
        crate::convert::clocking_from_raw(clocking).map_err(|errors| Error::InvalidItem {
            operation: "get_clocking",
            errors,
        })
    }

    /// The delta initial load (`?delta`): every clocking of `filter`, following `nextLink`,
    /// and the `deltaLink` of the last page for [`Self::delta`].
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// use protime_client::ClockingsFilter;
    /// let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    /// let snapshot = client.delta_initial_load(&ClockingsFilter::between(day(1, 1), day(12, 31))?).await?;
    /// println!("{} clockings, {} invalid", snapshot.clockings.len(), snapshot.invalid.len());
    /// std::fs::write("clockings.delta", snapshot.token.link()).ok();
    /// # Ok(()) }
    /// ```
    pub async fn delta_initial_load(
        &self,
        filter: &ClockingsFilter,
    ) -> Result<DeltaSnapshot, Error> {
        let mut page = self
            .first_clockings_page(filter, true)
            .await
            .map_err(delta_expired)?;
        let mut clockings = Vec::new();
        let mut invalid = Vec::new();
        loop {
            for item in page.value {
                match crate::convert::clocking_from_raw(item.clone()) {
                    Ok(clocking) => clockings.push(clocking),
                    Err(errors) => invalid.push((item, errors)),
                }
            }
            match (page.next_link, page.delta_link) {
                (Some(next), _) => {
                    page = self
                        .get_link("delta_initial_load", &next)
                        .await
                        .map_err(delta_expired)?;
                }
                (None, Some(delta_link)) => {
                    return Ok(DeltaSnapshot {
                        clockings,
                        invalid,
                        token: DeltaToken::from_link(delta_link),
                    });
                }
                (None, None) => {
                    return Err(Error::InvalidResponse {
                        operation: "delta_initial_load",
                        status: Some(200),
                        message: "the last page has neither nextLink nor deltaLink".into(),
                    });
                }
            }
        }
    }

    /// The changes since `token` (one page, not paginated) and the next token. An expired
    /// delta gives [`Error::DeltaExpired`]: run a new initial load.
    ///
    /// ```no_run
    /// # use protime_client::{ClockingsFilter, DeltaToken, Error, ProtimeClient};
    /// # async fn run(client: ProtimeClient, filter: ClockingsFilter, token: DeltaToken) -> Result<(), Error> {
    /// let next = match client.delta(&token).await {
    ///     Ok(delta) => {
    ///         println!("{} changes", delta.changes.len());
    ///         delta.next
    ///     }
    ///     Err(Error::DeltaExpired) => client.delta_initial_load(&filter).await?.token,
    ///     Err(error) => return Err(error),
    /// };
    /// std::fs::write("clockings.delta", next.link()).ok();
    /// # Ok(()) }
    /// ```
    pub async fn delta(&self, token: &DeltaToken) -> Result<DeltaChanges, Error> {
        let page: raw::ClockingDeltaPage = self
            .get_link("delta", token.link())
            .await
            .map_err(delta_expired)?;
        let mut changes = Vec::new();
        let mut invalid = Vec::new();
        for item in page.value {
            match crate::convert::change_from_raw(item.clone()) {
                Ok(change) => changes.push(change),
                Err(errors) => invalid.push((item, errors)),
            }
        }
        Ok(DeltaChanges {
            changes,
            invalid,
            next: DeltaToken::from_link(page.delta_link),
        })
    }
}
