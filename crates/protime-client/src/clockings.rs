//! Clockings: a paged list as a `Stream` that follows `nextLink` (an empty page does not end
//! it), one clocking by id, and delta (initial load, then changes).

use futures_util::{Stream, StreamExt as _};
use protime_raw::types as raw;

use crate::ProtimeClient;
use crate::error::Error;
use crate::filter::{ClockingsFilter, DeltaFilter};
use crate::webhooks::ExternalReference;
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

    /// The same token asking for `references` on the changes: adds `externalReferences=` to
    /// the link unless it already carries one (for a link stored before references were
    /// requested). [`ProtimeClient::delta_initial_load_with_references`] does this itself.
    ///
    /// ```
    /// use protime_client::{DeltaToken, ExternalReference};
    /// let token = DeltaToken::from_link("/connector/protimeapi/api/v1/delta/clockings?deltaToken=d1")
    ///     .with_external_references(&[ExternalReference::new("people", "@badge-number")])?;
    /// assert_eq!(
    ///     token.link(),
    ///     "/connector/protimeapi/api/v1/delta/clockings?deltaToken=d1&externalReferences=%28people%2C%40badge-number%29"
    /// );
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn with_external_references(self, references: &[ExternalReference]) -> Result<Self, Error> {
        let query = ExternalReference::query(references)?;
        Ok(Self {
            link: link_with_references(&self.link, query.as_deref()),
        })
    }
}

/// The query parameter of external references.
const EXTERNAL_REFERENCES: &str = "externalReferences";

/// `url` with `externalReferences=<references>` added, unless it has one already (a
/// `nextLink` or `deltaLink` that repeats it is followed unchanged).
fn add_references(url: &mut reqwest::Url, references: Option<&str>) {
    if let Some(references) = references
        && !url
            .query_pairs()
            .any(|(name, _)| name == EXTERNAL_REFERENCES)
    {
        url.query_pairs_mut()
            .append_pair(EXTERNAL_REFERENCES, references);
    }
}

/// The (decoded) `externalReferences` of a host-relative or absolute link, if it has one.
fn references_in(link: &str) -> Option<String> {
    let url = reqwest::Url::parse("http://localhost/")
        .ok()?
        .join(link)
        .ok()?;
    url.query_pairs()
        .find(|(name, _)| name == EXTERNAL_REFERENCES)
        .map(|(_, value)| value.into_owned())
}

/// A (host-relative or absolute) link with `externalReferences=` added unless it has one.
fn link_with_references(link: &str, references: Option<&str>) -> String {
    let Some(references) = references else {
        return link.to_owned();
    };
    if references_in(link).is_some() {
        return link.to_owned();
    }
    let pair: String =
        reqwest::Url::parse_with_params("http://localhost/", [(EXTERNAL_REFERENCES, references)])
            .ok()
            .and_then(|url| url.query().map(str::to_owned))
            .unwrap_or_default();
    let separator = if !link.contains('?') {
        "?"
    } else if link.ends_with('?') || link.ends_with('&') {
        ""
    } else {
        "&"
    };
    format!("{link}{separator}{pair}")
}

/// The answer of a conditional GET ([`ProtimeClient::get_clocking_if_changed`]).
#[derive(Debug, Clone)]
pub enum IfChanged {
    /// `304 Not Modified`: the clocking is unchanged since the `ETag` sent.
    NotModified,
    /// The clocking (validated), with the `ETag` of this version when Protime sent one.
    Changed {
        /// The clocking.
        clocking: Box<Clocking>,
        /// The `ETag` to send next time.
        etag: Option<String>,
    },
}

/// Result of a delta initial load: the baseline and the token for the changes after it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeltaSnapshot {
    /// Every clocking of the filter that passed validation.
    pub clockings: Vec<Clocking>,
    /// Items that failed validation, as JSON exactly as listed (an item may lack fields
    /// the generated `protime_raw::types::Clocking` requires), with why: kept, not dropped
    /// silently.
    pub invalid: Vec<(serde_json::Value, ValidationErrors)>,
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

/// A `nextLink` that names the page just read (`current`) would make the list endless:
/// refused.
fn refuse_a_loop(
    current: Option<&str>,
    next: Option<&str>,
    operation: &'static str,
    status: u16,
) -> Result<(), Error> {
    match (current, next) {
        (Some(current), Some(next)) if current == next => Err(Error::InvalidResponse {
            operation,
            status: Some(status),
            message: format!(
                "nextLink {next:?} names the page just read: the list would never end"
            ),
        }),
        _ => Ok(()),
    }
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

/// A page of a delta initial load with its items still as raw JSON (see [`PageBody`]).
#[derive(serde::Deserialize)]
struct DeltaLoadPage<'a> {
    #[serde(borrow)]
    value: Vec<&'a serde_json::value::RawValue>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
    #[serde(rename = "deltaLink")]
    delta_link: Option<String>,
}

fn decode_page(
    number: u64,
    status: u16,
    body: &[u8],
    profile: protime_model::Profile,
) -> Result<(ClockingPage, Page), Error> {
    let page: PageBody<'_> = serde_json::from_slice(body).map_err(|e| Error::InvalidResponse {
        operation: "list_clockings",
        status: Some(status),
        message: format!("the page is not a clockings list: {e}"),
    })?;
    let mut clockings = Vec::with_capacity(page.value.len());
    let mut invalid = Vec::new();
    for item in page.value {
        match protime_model::parse_clocking_with(item.get().as_bytes(), profile) {
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
    /// The URL of the first page of a delta initial load:
    /// `GET …/clockings?filter=…&delta=`, with `externalReferences=` when asked for — the
    /// request the generated `list_clockings` sends, built by hand so that each item is
    /// validated from its own bytes (a partial item, as in the docs' delta examples, must not
    /// fail its page).
    fn first_delta_url(
        &self,
        filter: &DeltaFilter,
        references: Option<&str>,
    ) -> Result<reqwest::Url, Error> {
        let mut url = self.link_url(&format!("{}/clockings", protime_raw::API_PATH_PREFIX))?;
        url.query_pairs_mut()
            .append_pair("filter", &filter.expression())
            .append_pair("delta", "");
        add_references(&mut url, references);
        Ok(url)
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
        self.clockings_with_references(filter, &[])
    }

    /// [`Self::clockings`] with external references: every request (the first page and
    /// each `nextLink` that does not repeat it) asks for
    /// `?externalReferences=(collection,reference)…`, so the related objects carry
    /// `externalReferences` (<https://documentation.myprotime.eu/protimeapi/how-to/use-external-references/>).
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// use futures_util::StreamExt as _;
    /// use protime_client::{ClockingsFilter, ExternalReference};
    /// let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    /// let filter = ClockingsFilter::between(day(1, 1), day(3, 31))?;
    /// let references = [ExternalReference::new("people", "@badge-number")];
    /// let mut clockings = std::pin::pin!(client.clockings_with_references(&filter, &references));
    /// while let Some(clocking) = clockings.next().await {
    ///     println!("{:?}", clocking?.person);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn clockings_with_references<'a>(
        &'a self,
        filter: &'a ClockingsFilter,
        references: &'a [ExternalReference],
    ) -> impl Stream<Item = Result<Clocking, Error>> + Send + 'a {
        self.clocking_pages_with_references(filter, references)
            .flat_map(|page| {
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
        self.clocking_pages_with_references(filter, &[])
    }

    /// [`Self::clocking_pages`] with external references (see
    /// [`Self::clockings_with_references`]): what a sync uses so that its rows carry the
    /// same `externalReferences` as the webhook's events.
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// use futures_util::StreamExt as _;
    /// use protime_client::{ClockingsFilter, ExternalReference};
    /// let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    /// let filter = ClockingsFilter::between(day(1, 1), day(3, 31))?;
    /// let references = [ExternalReference::new("people", "@employee-number")];
    /// let mut pages = std::pin::pin!(client.clocking_pages_with_references(&filter, &references));
    /// while let Some(page) = pages.next().await {
    ///     println!("{} clockings", page?.clockings.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn clocking_pages_with_references<'a>(
        &'a self,
        filter: &'a ClockingsFilter,
        references: &'a [ExternalReference],
    ) -> impl Stream<Item = Result<ClockingPage, Error>> + Send + 'a {
        let (query, refused) = match ExternalReference::query(references) {
            Ok(query) => (query, None),
            Err(error) => (None, Some(error)),
        };
        futures_util::stream::unfold(
            (Page::First, 0_u64, refused),
            move |(page, number, refused)| {
                let query = query.clone();
                async move {
                    if let Some(error) = refused {
                        return Some((Err(error), (Page::Done, number, None)));
                    }
                    let current = match &page {
                        Page::Link(link) => Some(link.clone()),
                        _ => None,
                    };
                    let url = match page {
                        Page::Done => return None,
                        Page::First => self.clockings_url(filter, query.as_deref()),
                        Page::Link(link) => self.link_url(&link).map(|mut url| {
                            add_references(&mut url, query.as_deref());
                            url
                        }),
                    };
                    let fetched = match url {
                        Ok(url) => self.get_bytes("list_clockings", url).await,
                        Err(error) => Err(error),
                    };
                    Some(
                        match fetched.and_then(|(status, body)| {
                            let (page, next) = decode_page(number, status, &body, self.profile())?;
                            let next_link = match &next {
                                Page::Link(link) => Some(link.as_str()),
                                _ => None,
                            };
                            refuse_a_loop(current.as_deref(), next_link, "list_clockings", status)?;
                            Ok((page, next))
                        }) {
                            Err(error) => (Err(error), (Page::Done, number, None)),
                            Ok((page, next)) => (Ok(page), (next, number + 1, None)),
                        },
                    )
                }
            },
        )
    }

    /// The first page of `filter`: `GET …/clockings?filter=…[&externalReferences=…]`, the
    /// request the generated `list_clockings` sends (built by hand so that each item is
    /// validated from its own bytes).
    fn clockings_url(
        &self,
        filter: &ClockingsFilter,
        references: Option<&str>,
    ) -> Result<reqwest::Url, Error> {
        let mut url = self.link_url(&format!("{}/clockings", protime_raw::API_PATH_PREFIX))?;
        url.query_pairs_mut()
            .append_pair("filter", &filter.expression());
        add_references(&mut url, references);
        Ok(url)
    }

    /// One clocking by id, validated.
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// let clocking = client.get_clocking(12345).await?;
    /// println!("{} on {:?}", clocking.id, clocking.date);
    /// # Ok(()) }
    /// ```
    pub async fn get_clocking(&self, id: i64) -> Result<Clocking, Error> {
        self.get_clocking_with_references(id, &[]).await
    }

    /// One clocking by id with external references:
    /// `GET …/clockings/{id}?externalReferences=(people,@badge-number)…`, as documented
    /// (<https://documentation.myprotime.eu/protimeapi/how-to/use-external-references/>).
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// use protime_client::ExternalReference;
    /// let clocking = client
    ///     .get_clocking_with_references(39577408, &[ExternalReference::new("people", "@badge-number")])
    ///     .await?;
    /// println!("{:?}", clocking.person);
    /// # Ok(()) }
    /// ```
    pub async fn get_clocking_with_references(
        &self,
        id: i64,
        references: &[ExternalReference],
    ) -> Result<Clocking, Error> {
        let references = ExternalReference::query(references)?;
        let clocking = self
            .execute("get_clocking", |raw_client, _| async move {
                let mut request = raw_client.get_clocking().id(id);
                if let Some(references) = references {
                    request = request.external_references(references);
                }
                request.send().await
            })
            .await?
            .into_inner();
        crate::convert::clocking_from_raw(clocking).map_err(|errors| Error::InvalidItem {
            operation: "get_clocking",
            errors,
        })
    }

    /// A conditional GET of one clocking: sends `If-None-Match: <etag>` when `etag` is
    /// given and answers [`IfChanged::NotModified`] on `304 Not Modified`, else the
    /// clocking with the `ETag` of its version. The docs list `ETag`, `If-None-Match` and
    /// GET `304` in general (<https://documentation.myprotime.eu/protimeapi/reference/general-specs/>,
    /// <https://documentation.myprotime.eu/protimeapi/reference/responses/>) but not per
    /// endpoint: whether the clockings endpoint sends an `ETag` is inferred, not documented.
    /// Without an `ETag` in the answer, `etag` is `None` and every call is a full GET.
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// use protime_client::IfChanged;
    /// let mut etag = None;
    /// for _ in 0..2 {
    ///     match client.get_clocking_if_changed(12345, etag.as_deref(), &[]).await? {
    ///         IfChanged::NotModified => println!("unchanged"),
    ///         IfChanged::Changed { clocking, etag: new } => {
    ///             println!("{} on {:?}", clocking.id, clocking.date);
    ///             etag = new;
    ///         }
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_clocking_if_changed(
        &self,
        id: i64,
        etag: Option<&str>,
        references: &[ExternalReference],
    ) -> Result<IfChanged, Error> {
        const OPERATION: &str = "get_clocking";
        let references = ExternalReference::query(references)?;
        let mut url = self.link_url(&format!("{}/clockings/{id}", protime_raw::API_PATH_PREFIX))?;
        add_references(&mut url, references.as_deref());
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(etag) = etag {
            let value = reqwest::header::HeaderValue::from_str(etag)
                .map_err(|e| Error::Config(format!("invalid ETag {etag:?}: {e}")))?;
            headers.insert(reqwest::header::IF_NONE_MATCH, value);
        }
        let (status, headers, body) = self.get_response(OPERATION, url, headers, true).await?;
        if status == 304 {
            return Ok(IfChanged::NotModified);
        }
        let clocking =
            protime_model::parse_clocking_with(&body, self.profile()).map_err(|errors| {
                Error::InvalidItem {
                    operation: OPERATION,
                    errors,
                }
            })?;
        let etag = headers
            .get(reqwest::header::ETAG)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok(IfChanged::Changed {
            clocking: Box::new(clocking),
            etag,
        })
    }

    /// The delta initial load (`?delta`): every clocking of `filter`, following `nextLink`,
    /// and the `deltaLink` of the last page for [`Self::delta`]. The filter is checked
    /// against today (UTC) first ([`DeltaFilter::check_at`]): a start before 1 January of
    /// the previous year is [`Error::DeltaStartOutOfRange`], and nothing is sent.
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// use protime_client::DeltaFilter;
    /// let since = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    /// let snapshot = client.delta_initial_load(&DeltaFilter::since(since)).await?;
    /// println!("{} clockings, {} invalid", snapshot.clockings.len(), snapshot.invalid.len());
    /// std::fs::write("clockings.delta", snapshot.token.link()).ok();
    /// # Ok(()) }
    /// ```
    pub async fn delta_initial_load(&self, filter: &DeltaFilter) -> Result<DeltaSnapshot, Error> {
        self.delta_initial_load_with_references(filter, &[]).await
    }

    /// [`Self::delta_initial_load`] with external references ("external references can be
    /// used with delta", <https://documentation.myprotime.eu/protimeapi/delta>): the first
    /// request carries `externalReferences=`, so does every `nextLink` that does not repeat
    /// it, and the returned token's link carries it too (added unless the `deltaLink` has
    /// it), so that [`Self::delta`] asks for the same references on every change.
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// use protime_client::{DeltaFilter, ExternalReference};
    /// let since = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    /// let references = [ExternalReference::new("people", "@badge-number")];
    /// let snapshot = client.delta_initial_load_with_references(&DeltaFilter::since(since), &references).await?;
    /// let changes = client.delta(&snapshot.token).await?; // with the same references
    /// # Ok(()) }
    /// ```
    pub async fn delta_initial_load_with_references(
        &self,
        filter: &DeltaFilter,
        references: &[ExternalReference],
    ) -> Result<DeltaSnapshot, Error> {
        filter.check_at(chrono::Utc::now().date_naive())?;
        let query = ExternalReference::query(references)?;
        let mut url = self.first_delta_url(filter, query.as_deref())?;
        let mut current: Option<String> = None;
        let mut clockings = Vec::new();
        let mut invalid = Vec::new();
        loop {
            let (status, body) = self
                .get_bytes("delta_initial_load", url)
                .await
                .map_err(delta_expired)?;
            let page: DeltaLoadPage<'_> =
                serde_json::from_slice(&body).map_err(|e| Error::InvalidResponse {
                    operation: "delta_initial_load",
                    status: Some(status),
                    message: format!("the page is not a clockings list: {e}"),
                })?;
            for item in page.value {
                match protime_model::parse_clocking_with(item.get().as_bytes(), self.profile()) {
                    Ok(clocking) => clockings.push(clocking),
                    Err(errors) => invalid.push((
                        serde_json::from_str(item.get()).unwrap_or(serde_json::Value::Null),
                        errors,
                    )),
                }
            }
            match (page.next_link, page.delta_link) {
                (Some(next), _) => {
                    let next = link_with_references(&next, query.as_deref());
                    refuse_a_loop(
                        current.as_deref(),
                        Some(&next),
                        "delta_initial_load",
                        status,
                    )?;
                    url = self.link_url(&next)?;
                    current = Some(next);
                }
                (None, Some(delta_link)) => {
                    return Ok(DeltaSnapshot {
                        clockings,
                        invalid,
                        token: DeltaToken::from_link(link_with_references(
                            &delta_link,
                            query.as_deref(),
                        )),
                    });
                }
                (None, None) => {
                    return Err(Error::InvalidResponse {
                        operation: "delta_initial_load",
                        status: Some(status),
                        message: "the last page has neither nextLink nor deltaLink".into(),
                    });
                }
            }
        }
    }

    /// The changes since `token` (one page, not paginated) and the next token. An expired
    /// delta gives [`Error::DeltaExpired`]: run a new initial load. External references
    /// requested at the initial load are in the token's link and go along; the next token
    /// keeps them.
    ///
    /// ```no_run
    /// # use protime_client::{DeltaFilter, DeltaToken, Error, ProtimeClient};
    /// # async fn run(client: ProtimeClient, filter: DeltaFilter, token: DeltaToken) -> Result<(), Error> {
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
            match crate::convert::change_from_raw_with(item.clone(), self.profile()) {
                Ok(change) => changes.push(change),
                Err(errors) => invalid.push((item, errors)),
            }
        }
        let references = references_in(token.link());
        Ok(DeltaChanges {
            changes,
            invalid,
            next: DeltaToken::from_link(link_with_references(
                &page.delta_link,
                references.as_deref(),
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFS: &str = "(people,@badge-number)(terminals,@external-code)";
    const ENCODED: &str =
        "externalReferences=%28people%2C%40badge-number%29%28terminals%2C%40external-code%29";

    #[test]
    fn links_get_the_references_unless_they_repeat_them() {
        let delta = "/connector/protimeapi/api/v1/delta/clockings?deltaToken=d1";
        assert_eq!(
            link_with_references(delta, Some(REFS)),
            format!("{delta}&{ENCODED}")
        );
        assert_eq!(link_with_references(delta, None), delta);
        let repeated = format!("{delta}&externalReferences=(people,@badge-number)");
        assert_eq!(link_with_references(&repeated, Some(REFS)), repeated);
        assert_eq!(
            link_with_references("/x", Some(REFS)),
            format!("/x?{ENCODED}")
        );
        let absolute = "https://acme.myprotime.eu/connector/x?a=1";
        assert_eq!(
            link_with_references(absolute, Some(REFS)),
            format!("{absolute}&{ENCODED}")
        );
        assert_eq!(
            references_in(&link_with_references(delta, Some(REFS))).as_deref(),
            Some(REFS)
        );
        assert_eq!(references_in(delta), None);
    }

    #[test]
    fn urls_get_the_references_once() {
        let mut url =
            reqwest::Url::parse("https://acme.myprotime.eu/c?filter=date%20ge%20'2026-01-01'")
                .unwrap();
        add_references(&mut url, Some(REFS));
        add_references(&mut url, Some("(people,@employee-number)"));
        let values: Vec<_> = url
            .query_pairs()
            .filter(|(name, _)| name == EXTERNAL_REFERENCES)
            .map(|(_, value)| value.into_owned())
            .collect();
        assert_eq!(values, vec![REFS.to_owned()]);
        let mut plain = reqwest::Url::parse("https://acme.myprotime.eu/c?filter=x").unwrap();
        add_references(&mut plain, None);
        assert_eq!(plain.query(), Some("filter=x"));
    }

    #[test]
    fn a_stored_token_can_ask_for_references() {
        let token =
            DeltaToken::from_link("/connector/protimeapi/api/v1/delta/clockings?deltaToken=d1")
                .with_external_references(&[ExternalReference::new("people", "@badge-number")])
                .unwrap();
        assert_eq!(
            references_in(token.link()).as_deref(),
            Some("(people,@badge-number)")
        );
        assert!(
            DeltaToken::from_link("/d?deltaToken=d1")
                .with_external_references(&[ExternalReference::new("people", "")])
                .is_err()
        );
    }
}
