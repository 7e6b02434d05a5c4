//! The ergonomic Protime client, on top of the generated `protime-raw` client and never
//! editing it: client-credentials tokens, the mandatory User-Agent, retries, webhook
//! subscriptions, clockings with `nextLink` paging, delta, and conversions between the
//! generated types and the validated `protime-model` types ([`convert`]).
//!
//! Keeping a subscription alive (create, sync into a store, rotate keys) composes this client
//! with a receiver: that is `protime-webhooks`' `subscription` feature.
//!
//! ```no_run
//! use protime_client::{ClientSecret, Environment, ProtimeClient};
//!
//! # async fn run() -> Result<(), protime_client::Error> {
//! let client = ProtimeClient::builder()
//!     .tenant("acme", Environment::Production)
//!     .client_credentials("my-client-id", ClientSecret::new("…"), ProtimeClient::WEBHOOK_SCOPES)
//!     .user_agent("ClockingSync/1.0 (Acme Corp)")
//!     .build()?;
//! let webhooks = client.list_webhooks(&Default::default()).await?;
//! println!("{} webhooks", webhooks.len());
//! # Ok(()) }
//! ```
//!
//! Every request — the generated operations and the `nextLink`/`deltaLink` follow-ups — goes
//! through one transport (installed in the generated client as its `protime_raw::Transport`):
//! it puts the bearer token on the request, refreshes it once on a 401, re-sends where that
//! is safe (429; 502/503/504 and transport errors except for creates) and records the status,
//! `Location` and `Retry-After` of what came back. The User-Agent is set on the underlying
//! `reqwest::Client`.
//!
//! # Features
//!
#![doc = document_features::document_features!()]
//!
//! # Public dependencies
//!
//! Types of these crates appear in this crate's public API; depend on the same major
//! versions to use them together:
//!
//! - `protime-model` 0.1 (re-exported as `model`) and `protime-raw` 0.1
//!   ([`ProtimeClient::raw`], [`convert`]);
//! - `secrecy` 0.10: [`SecretString`] and [`ExposeSecret`], re-exported;
//! - `chrono` 0.4: dates in [`ClockingsFilter`] and [`DeltaFilter`];
//! - `futures-util` 0.3 (`futures` 0.3): the paged reads are `Stream`s;
//! - `serde_json` 1: free-form JSON in errors ([`ApiErrorBody`]);
//! - `tokio` 1: the client needs a tokio runtime (reqwest's).

mod auth;
mod clockings;
pub mod convert;
mod error;
mod filter;
mod retry;
mod transport;
mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use auth::{AccessToken, ClientSecret};
pub use clockings::{ClockingPage, DeltaChanges, DeltaSnapshot, DeltaToken, IfChanged};
pub use error::{ApiErrorBody, Error};
pub use filter::{ClockingsFilter, DELTA_FILTER_DOCS, DeltaFilter, WebhookFilter};
/// The validated model this client returns.
pub use protime_model as model;
pub use retry::RetryPolicy;
/// The one secret type of the protime crates (tokens, client secrets, webhook keys).
pub use secrecy::{ExposeSecret, SecretString};
pub use webhooks::{CreatedWebhook, ExternalReference};

use auth::{Credentials, SharedTokens, TokenSource};
use transport::Seen;

/// Which Protime environment a tenant lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Environment {
    /// `https://<tenant>.myprotime.eu`, tokens from `authentication.myprotime.eu`.
    Production,
    /// `https://<tenant>.myprotimesandbox.eu` (API host inferred), tokens from
    /// `authentication.myprotimesandbox.eu`.
    Sandbox,
}

impl Environment {
    fn domain(self) -> &'static str {
        match self {
            Self::Production => "myprotime.eu",
            Self::Sandbox => "myprotimesandbox.eu",
        }
    }

    /// The API base URL of a tenant.
    ///
    /// ```
    /// use protime_client::Environment;
    /// assert_eq!(Environment::Sandbox.base_url("acme"), "https://acme.myprotimesandbox.eu");
    /// ```
    pub fn base_url(self, tenant: &str) -> String {
        format!("https://{tenant}.{}", self.domain())
    }

    /// The documented token URL of a tenant.
    ///
    /// ```
    /// use protime_client::Environment;
    /// assert_eq!(
    ///     Environment::Production.token_url("acme"),
    ///     "https://authentication.myprotime.eu/tenants/acme/connect/token"
    /// );
    /// ```
    pub fn token_url(self, tenant: &str) -> String {
        format!(
            "https://authentication.{}/tenants/{tenant}/connect/token",
            self.domain()
        )
    }
}

enum Auth {
    ClientCredentials(Credentials),
    Static(AccessToken),
}

/// Builder of a [`ProtimeClient`]; see [`ProtimeClient::builder`].
#[must_use]
pub struct ProtimeClientBuilder {
    base_url: Option<String>,
    token_url: Option<String>,
    auth: Option<Auth>,
    user_agent: Option<String>,
    connect_timeout: Duration,
    timeout: Duration,
    retry: RetryPolicy,
    allow_insecure_destinations: bool,
    api_version: Option<String>,
    profile: protime_model::Profile,
}

impl ProtimeClientBuilder {
    /// A tenant in an environment: sets the API base URL and the token URL.
    ///
    /// ```
    /// use protime_client::{AccessToken, Environment, ProtimeClient};
    /// let client = ProtimeClient::builder()
    ///     .tenant("acme", Environment::Sandbox)
    ///     .static_token(AccessToken::new("t"))
    ///     .user_agent("Svc/1.0 (Acme)")
    ///     .build()?;
    /// assert_eq!(client.base_url(), "https://acme.myprotimesandbox.eu");
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn tenant(mut self, tenant: &str, environment: Environment) -> Self {
        self.base_url = Some(environment.base_url(tenant));
        self.token_url = Some(environment.token_url(tenant));
        self
    }

    /// Any API base URL (scheme and host, e.g. a local sandbox `http://127.0.0.1:8080`).
    ///
    /// ```
    /// use protime_client::{AccessToken, ProtimeClient};
    /// let client = ProtimeClient::builder()
    ///     .base_url("http://127.0.0.1:9/")
    ///     .static_token(AccessToken::new("t"))
    ///     .user_agent("Svc/1.0 (Acme)")
    ///     .build()?;
    /// assert_eq!(client.base_url(), "http://127.0.0.1:9"); // trailing `/` trimmed
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Any token URL (for the client-credentials grant).
    ///
    /// ```
    /// use protime_client::{ClientSecret, Error, ProtimeClient};
    /// let builder = || {
    ///     ProtimeClient::builder()
    ///         .base_url("http://127.0.0.1:9")
    ///         .client_credentials("id", ClientSecret::new("s"), ProtimeClient::WEBHOOK_SCOPES)
    ///         .user_agent("Svc/1.0 (Acme)")
    /// };
    /// // Client credentials need a token URL (set by `.tenant(…)` or here).
    /// assert!(matches!(builder().build(), Err(Error::Config(_))));
    /// assert!(builder().token_url("http://127.0.0.1:9/connect/token").build().is_ok());
    /// ```
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = Some(url.into());
        self
    }

    /// Authenticate with the OAuth2 client-credentials grant.
    ///
    /// ```
    /// use protime_client::{ClientSecret, Environment, ProtimeClient};
    /// let client = ProtimeClient::builder()
    ///     .tenant("acme", Environment::Production)
    ///     .client_credentials("my-client-id", ClientSecret::new("…"), ["connector-protimeapi-clockings.read"])
    ///     .user_agent("Svc/1.0 (Acme)")
    ///     .build()?;
    /// assert_eq!(client.token_requests(), 0); // the first token is fetched on the first call
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn client_credentials<S: Into<String>>(
        mut self,
        client_id: impl Into<String>,
        client_secret: ClientSecret,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.auth = Some(Auth::ClientCredentials(Credentials {
            client_id: client_id.into(),
            client_secret,
            scopes: scopes.into_iter().map(Into::into).collect(),
        }));
        self
    }

    /// Authenticate with a token obtained elsewhere (never refreshed).
    ///
    /// ```
    /// use protime_client::{AccessToken, ProtimeClient};
    /// let client = ProtimeClient::builder()
    ///     .base_url("http://127.0.0.1:9")
    ///     .static_token(AccessToken::new("eyJ…"))
    ///     .user_agent("Svc/1.0 (Acme)")
    ///     .build()?;
    /// assert_eq!(client.token_requests(), 0);
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn static_token(mut self, token: AccessToken) -> Self {
        self.auth = Some(Auth::Static(token));
        self
    }

    /// The mandatory `User-Agent`, `ServiceName/Version (Company Name)`, e.g.
    /// `PeopleSyncService/v1 (Acme Corp)`.
    ///
    /// ```
    /// use protime_client::{AccessToken, Error, ProtimeClient};
    /// let with = |user_agent: &str| {
    ///     ProtimeClient::builder()
    ///         .base_url("http://127.0.0.1:9")
    ///         .static_token(AccessToken::new("t"))
    ///         .user_agent(user_agent)
    ///         .build()
    /// };
    /// assert!(with("ClockingSync/1.0 (Acme Corp)").is_ok());
    /// assert!(matches!(with("curl/8.0"), Err(Error::Config(_))));
    /// ```
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Connect timeout and total timeout of one attempt (defaults 10 s and 30 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use protime_client::{AccessToken, ProtimeClient};
    /// let client = ProtimeClient::builder()
    ///     .base_url("http://127.0.0.1:9")
    ///     .static_token(AccessToken::new("t"))
    ///     .user_agent("Svc/1.0 (Acme)")
    ///     .timeouts(Duration::from_secs(5), Duration::from_secs(20))
    ///     .build();
    /// assert!(client.is_ok());
    /// ```
    pub fn timeouts(mut self, connect: Duration, total: Duration) -> Self {
        self.connect_timeout = connect;
        self.timeout = total;
        self
    }

    /// The retry policy (default [`RetryPolicy::default`]).
    ///
    /// ```
    /// use protime_client::{AccessToken, ProtimeClient, RetryPolicy};
    /// let client = ProtimeClient::builder()
    ///     .base_url("http://127.0.0.1:9")
    ///     .static_token(AccessToken::new("t"))
    ///     .user_agent("Svc/1.0 (Acme)")
    ///     .retry_policy(RetryPolicy::none())
    ///     .build()?;
    /// assert!(format!("{client:?}").contains("max_attempts: 1"));
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Allow `http://` webhook destinations: only for local tests against a sandbox.
    ///
    /// ```
    /// use protime_raw::types::CollectionName;
    /// use protime_client::{AccessToken, Error, ProtimeClient};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Error> {
    /// let builder = || {
    ///     ProtimeClient::builder()
    ///         .base_url("http://127.0.0.1:9")
    ///         .static_token(AccessToken::new("t"))
    ///         .user_agent("Svc/1.0 (Acme)")
    /// };
    /// // Refused before anything is sent:
    /// let strict = builder().build()?;
    /// let refused = strict.create_webhook("http://127.0.0.1:3000/hook", CollectionName::Clockings, &[]).await;
    /// assert!(matches!(refused, Err(Error::InsecureDestination { .. })));
    /// let _for_local_tests = builder().allow_insecure_destinations(true).build()?;
    /// # Ok(()) }
    /// ```
    pub fn allow_insecure_destinations(mut self, allow: bool) -> Self {
        self.allow_insecure_destinations = allow;
        self
    }

    /// The validation profile of the clockings this client reads (list pages, get, delta):
    /// [`protime_model::Profile::Documented`] by default, which requires only `id` of a
    /// listed item (one without `changeVersion`, as in the docs' list and get examples, has
    /// `ChangeVersion::absent`) and `changeVersion` and `id` of a delta change;
    /// [`protime_model::Profile::Strict`] also requires `changeVersion`, `person`, `date`,
    /// `timeOfDayInMinutes` and `kind` of every item (an item without them is reported
    /// invalid).
    ///
    /// ```
    /// use protime_client::{AccessToken, ProtimeClient};
    /// use protime_model::Profile;
    /// let client = ProtimeClient::builder()
    ///     .base_url("http://127.0.0.1:9")
    ///     .static_token(AccessToken::new("t"))
    ///     .user_agent("Svc/1.0 (Acme)")
    ///     .profile(Profile::Strict)
    ///     .build()?;
    /// assert_eq!(client.profile(), Profile::Strict);
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn profile(mut self, profile: protime_model::Profile) -> Self {
        self.profile = profile;
        self
    }

    /// Sends `api-version: <version>` on every request. Off by default: the Protime docs list
    /// no such header (<https://documentation.myprotime.eu/protimeapi/reference/general-specs/>);
    /// the generated client adds one with the spec's own `info.version` to every operation,
    /// and this client's transport removes it unless this is set.
    ///
    /// ```
    /// use protime_client::{AccessToken, Error, ProtimeClient};
    /// let builder = || {
    ///     ProtimeClient::builder()
    ///         .base_url("http://127.0.0.1:9")
    ///         .static_token(AccessToken::new("t"))
    ///         .user_agent("Svc/1.0 (Acme)")
    /// };
    /// assert!(builder().api_version_header("1.0").build().is_ok());
    /// assert!(matches!(builder().api_version_header("1.0\n").build(), Err(Error::Config(_))));
    /// ```
    pub fn api_version_header(mut self, version: impl Into<String>) -> Self {
        self.api_version = Some(version.into());
        self
    }

    /// Builds the client. Fails with [`Error::Config`] for a missing or malformed
    /// User-Agent, a missing base URL or authentication, or a bad URL.
    ///
    /// ```
    /// use protime_client::{AccessToken, Error, ProtimeClient};
    /// let missing_user_agent = ProtimeClient::builder()
    ///     .base_url("http://127.0.0.1:9")
    ///     .static_token(AccessToken::new("t"))
    ///     .build();
    /// assert!(matches!(missing_user_agent, Err(Error::Config(_))));
    /// ```
    pub fn build(self) -> Result<ProtimeClient, Error> {
        let user_agent = self.user_agent.ok_or_else(|| {
            Error::Config(
                "a User-Agent is required on every Protime request: call .user_agent(\"ServiceName/Version (Company Name)\")"
                    .into(),
            )
        })?;
        check_user_agent(&user_agent)?;
        let base_url = self.base_url.ok_or_else(|| {
            Error::Config("no API base URL: call .tenant(…) or .base_url(…)".into())
        })?;
        let base_url = base_url.trim_end_matches('/').to_string();
        let api_version = self
            .api_version
            .map(|version| {
                reqwest::header::HeaderValue::from_str(&version).map_err(|e| {
                    Error::Config(format!("invalid api-version header value {version:?}: {e}"))
                })
            })
            .transpose()?;
        reqwest::Url::parse(&base_url)
            .map_err(|e| Error::Config(format!("invalid base URL {base_url}: {e}")))?;
        let http = reqwest::Client::builder()
            .user_agent(user_agent.clone())
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let tokens: SharedTokens = Arc::new(match self.auth {
            Some(Auth::Static(token)) => TokenSource::Static(token),
            Some(Auth::ClientCredentials(credentials)) => {
                let token_url = self.token_url.ok_or_else(|| {
                    Error::Config(
                        "client credentials need a token URL: call .tenant(…) or .token_url(…)"
                            .into(),
                    )
                })?;
                reqwest::Url::parse(&token_url)
                    .map_err(|e| Error::Config(format!("invalid token URL {token_url}: {e}")))?;
                TokenSource::client_credentials(http.clone(), token_url, credentials)
            }
            None => {
                return Err(Error::Config(
                    "no authentication: call .client_credentials(…) or .static_token(…)".into(),
                ));
            }
        });
        let raw = protime_raw::Client::new_with_client(
            &base_url,
            http.clone(),
            protime_raw::Hooks::with_transport(Arc::new(transport::SharedTransport {
                tokens: Arc::clone(&tokens),
                retry: self.retry.clone(),
                api_version: api_version.clone(),
            })),
        );
        Ok(ProtimeClient {
            inner: Arc::new(Inner {
                raw,
                http,
                base_url,
                tokens,
                retry: self.retry,
                allow_insecure_destinations: self.allow_insecure_destinations,
                api_version,
                profile: self.profile,
            }),
        })
    }
}

/// `ServiceName/Version (Company Name)`: a product token with a version, then a comment in
/// parentheses.
fn check_user_agent(user_agent: &str) -> Result<(), Error> {
    let bad = || {
        Error::Config(format!(
            "User-Agent {user_agent:?} is not of the form \"ServiceName/Version (Company Name)\", e.g. \"PeopleSyncService/v1 (Acme Corp)\""
        ))
    };
    let (product, rest) = user_agent.split_once(' ').ok_or_else(bad)?;
    let (name, version) = product.split_once('/').ok_or_else(bad)?;
    let company = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(bad)?;
    let token_ok = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_graphic() && !"()/<>@,;:\\\"[]?={}".contains(c))
    };
    if token_ok(name) && token_ok(version) && !company.trim().is_empty() && user_agent.is_ascii() {
        Ok(())
    } else {
        Err(bad())
    }
}

struct Inner {
    /// The generated client with the shared transport, for [`ProtimeClient::raw`].
    raw: protime_raw::Client,
    http: reqwest::Client,
    base_url: String,
    tokens: SharedTokens,
    retry: RetryPolicy,
    allow_insecure_destinations: bool,
    /// `api-version` value, sent only when set ([`ProtimeClientBuilder::api_version_header`]).
    api_version: Option<reqwest::header::HeaderValue>,
    /// How read clockings are validated ([`ProtimeClientBuilder::profile`]).
    profile: protime_model::Profile,
}

/// The Protime client. Cheap to clone; clones share the token cache.
#[derive(Clone)]
pub struct ProtimeClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ProtimeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtimeClient")
            .field("base_url", &self.inner.base_url)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// Largest response body read by the requests this crate builds itself (`nextLink`,
/// `deltaLink`, clockings pages).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

type RawError = protime_raw::Error<protime_raw::types::ProtimeError>;

impl ProtimeClient {
    /// Scopes needed to manage webhooks for clockings and to sync clockings.
    pub const WEBHOOK_SCOPES: [&'static str; 3] = [
        "connector-protimeapi-webhooks.read",
        "connector-protimeapi-webhooks.write",
        "connector-protimeapi-clockings.read",
    ];

    /// A builder; a User-Agent, a base URL (or tenant) and authentication are required.
    ///
    /// ```
    /// use protime_client::{AccessToken, ProtimeClient};
    /// let client = ProtimeClient::builder()
    ///     .base_url("http://127.0.0.1:9")
    ///     .static_token(AccessToken::new("t"))
    ///     .user_agent("Svc/1.0 (Acme)")
    ///     .build()?;
    /// assert_eq!(client.base_url(), "http://127.0.0.1:9");
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn builder() -> ProtimeClientBuilder {
        ProtimeClientBuilder {
            base_url: None,
            token_url: None,
            auth: None,
            user_agent: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            allow_insecure_destinations: false,
            api_version: None,
            profile: protime_model::Profile::Documented,
        }
    }

    /// The generated client underneath, for operations this layer does not wrap. It sends
    /// through the same transport (token, refresh, retries); errors are the generated
    /// client's own.
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), Box<dyn std::error::Error>> {
    /// let webhook = client.raw().get_webhook().id("a7d8").send().await?.into_inner();
    /// println!("{}: {}", webhook.id, webhook.status);
    /// # Ok(()) }
    /// ```
    pub fn raw(&self) -> &protime_raw::Client {
        &self.inner.raw
    }

    /// Fetches a token if none is cached (or it is about to expire).
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// // Fail fast at startup on wrong credentials or scopes:
    /// if let Err(error) = client.ensure_token().await {
    ///     eprintln!("cannot authenticate (auth error: {}): {error}", error.is_auth());
    ///     return Err(error);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn ensure_token(&self) -> Result<(), Error> {
        self.inner.tokens.token().await.map(|_| ())
    }

    /// How many token requests this client has sent (tokens are cached and shared).
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// // With client credentials: one token request, then the cached token.
    /// client.ensure_token().await?;
    /// client.ensure_token().await?;
    /// assert_eq!(client.token_requests(), 1);
    /// # Ok(()) }
    /// ```
    pub fn token_requests(&self) -> u64 {
        self.inner.tokens.token_requests()
    }

    /// The API base URL.
    ///
    /// ```
    /// use protime_client::{AccessToken, Environment, ProtimeClient};
    /// let client = ProtimeClient::builder()
    ///     .tenant("acme", Environment::Production)
    ///     .static_token(AccessToken::new("t"))
    ///     .user_agent("Svc/1.0 (Acme)")
    ///     .build()?;
    /// assert_eq!(client.base_url(), "https://acme.myprotime.eu");
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The validation profile of the clockings this client reads
    /// ([`ProtimeClientBuilder::profile`]; `Documented` unless set).
    ///
    /// ```
    /// use protime_client::{AccessToken, ProtimeClient};
    /// let client = ProtimeClient::builder()
    ///     .base_url("http://127.0.0.1:9")
    ///     .static_token(AccessToken::new("t"))
    ///     .user_agent("Svc/1.0 (Acme)")
    ///     .build()?;
    /// assert_eq!(client.profile(), protime_model::Profile::Documented);
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn profile(&self) -> protime_model::Profile {
        self.inner.profile
    }

    pub(crate) fn allow_insecure_destinations(&self) -> bool {
        self.inner.allow_insecure_destinations
    }

    /// Runs one operation of the generated client through a transport of its own (token,
    /// refresh, retries; see the crate documentation), then turns the result into this
    /// crate's [`Error`] with what the transport saw. `call` gets the generated client and
    /// that transport (to read the status or `Location` of an answer it decodes by hand).
    pub(crate) async fn execute<T, F, Fut>(
        &self,
        operation: &'static str,
        call: F,
    ) -> Result<protime_raw::ResponseValue<T>, Error>
    where
        F: FnOnce(protime_raw::Client, Arc<transport::CallTransport>) -> Fut,
        Fut: Future<Output = Result<protime_raw::ResponseValue<T>, RawError>>,
    {
        let transport = Arc::new(
            transport::CallTransport::start(
                &self.inner.tokens,
                &self.inner.retry,
                self.inner.api_version.as_ref(),
            )
            .await?,
        );
        let raw = protime_raw::Client::new_with_client(
            &self.inner.base_url,
            self.inner.http.clone(),
            protime_raw::Hooks::with_transport(transport.clone()),
        );
        let result = call(raw, Arc::clone(&transport)).await;
        if let Some(error) = transport.take_token_error() {
            return Err(error);
        }
        classify(operation, result, &transport.seen()).await
    }

    /// GETs a host-relative link (`nextLink`, `deltaLink`) with the same token handling and
    /// retries, and decodes the JSON body as `T`.
    pub(crate) async fn get_link<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        link: &str,
    ) -> Result<T, Error> {
        let url = self.link_url(link)?;
        let (status, bytes) = self.get_bytes(operation, url).await?;
        serde_json::from_slice::<T>(&bytes).map_err(|e| Error::InvalidResponse {
            operation,
            status: Some(status),
            message: e.to_string(),
        })
    }

    /// GETs `url` (on the API's origin) through the same transport as the generated
    /// operations, and returns the status and body of the successful response.
    pub(crate) async fn get_bytes(
        &self,
        operation: &'static str,
        url: reqwest::Url,
    ) -> Result<(u16, bytes::Bytes), Error> {
        let (status, _, body) = self
            .get_response(operation, url, reqwest::header::HeaderMap::new(), false)
            .await?;
        Ok((status, body))
    }

    /// GETs `url` (on the API's origin) with `headers` added, through the same transport as
    /// the generated operations, and returns the status, headers and body of a successful
    /// response (2xx, or 304 when `not_modified_ok`); any other status is an error.
    pub(crate) async fn get_response(
        &self,
        operation: &'static str,
        url: reqwest::Url,
        headers: reqwest::header::HeaderMap,
        not_modified_ok: bool,
    ) -> Result<(u16, reqwest::header::HeaderMap, bytes::Bytes), Error> {
        let transport = transport::CallTransport::start(
            &self.inner.tokens,
            &self.inner.retry,
            self.inner.api_version.as_ref(),
        )
        .await?;
        let request = self
            .inner
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .headers(headers)
            .build()
            .map_err(|error| Error::Transport {
                operation,
                attempts: 0,
                source: error,
            })?;
        let result = transport.send(&self.inner.http, request, operation).await;
        if let Some(error) = transport.take_token_error() {
            return Err(error);
        }
        let seen = transport.seen();
        let mut response = result.map_err(|error| transport_error(operation, error, &seen))?;
        let status = response.status().as_u16();
        let response_headers = response.headers().clone();
        // Read within a cap: a page is kilobytes; an endless body must not take the memory.
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| transport_error(operation, error, &seen))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(Error::InvalidResponse {
                    operation,
                    status: Some(status),
                    message: format!("the response is larger than {MAX_RESPONSE_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        let bytes = body.freeze();
        if (200..300).contains(&status) || (not_modified_ok && status == 304) {
            Ok((status, response_headers, bytes))
        } else {
            Err(status_error(
                operation,
                status,
                ApiErrorBody::from_bytes(&bytes).unwrap_or_default(),
                &seen,
            ))
        }
    }

    /// A host-relative link as a full URL. Links may carry unencoded spaces (the delta
    /// guide's example does); `Url::parse` percent-encodes them.
    pub(crate) fn link_url(&self, link: &str) -> Result<reqwest::Url, Error> {
        let invalid = |message: String| Error::InvalidResponse {
            operation: "follow link",
            status: None,
            message,
        };
        let absolute = link.starts_with("http://") || link.starts_with("https://");
        let text = if absolute {
            link.to_string()
        } else {
            format!("{}{}", self.inner.base_url, link)
        };
        let url = reqwest::Url::parse(&text)
            .map_err(|e| invalid(format!("link {link:?} is not a valid URL: {e}")))?;
        // The bearer token goes with the request: never to another origin than the API's.
        let base = reqwest::Url::parse(&self.inner.base_url)
            .map_err(|e| invalid(format!("invalid base URL: {e}")))?;
        if url.origin() != base.origin() {
            return Err(invalid(format!(
                "link {link:?} points to another origin than {}; not followed",
                self.inner.base_url
            )));
        }
        Ok(url)
    }
}

/// The error of an error status, after the transport's retries. A 410 is an [`Error::Api`]
/// here; the delta operations, where it means an expired delta, turn it into
/// [`Error::DeltaExpired`].
fn status_error(operation: &'static str, status: u16, body: ApiErrorBody, seen: &Seen) -> Error {
    match status {
        429 => Error::RateLimited {
            operation,
            attempts: seen.attempts,
            retry_after: seen.retry_after,
        },
        _ => Error::Api {
            operation,
            status,
            body,
        },
    }
}

fn transport_error(operation: &'static str, source: reqwest::Error, seen: &Seen) -> Error {
    Error::Transport {
        operation,
        attempts: seen.attempts.max(1),
        source,
    }
}

/// Turns the generated client's result into this crate's error, keeping the status even
/// where progenitor lost it (an error body that is not JSON): the transport saw it.
async fn classify<T>(
    operation: &'static str,
    result: Result<protime_raw::ResponseValue<T>, RawError>,
    seen: &Seen,
) -> Result<protime_raw::ResponseValue<T>, Error> {
    match result {
        Ok(value) => Ok(value),
        Err(protime_raw::Error::ErrorResponse(response)) => {
            let status = response.status().as_u16();
            Err(status_error(
                operation,
                status,
                ApiErrorBody::from_raw(response.into_inner()),
                seen,
            ))
        }
        Err(protime_raw::Error::UnexpectedResponse(response)) => {
            // A status the spec does not list for this operation: decode the body if it has
            // Protime's error shape.
            let status = response.status().as_u16();
            let body = response
                .bytes()
                .await
                .ok()
                .and_then(|bytes| ApiErrorBody::from_bytes(&bytes))
                .unwrap_or_default();
            Err(status_error(operation, status, body, seen))
        }
        Err(protime_raw::Error::InvalidResponsePayload(bytes, error)) => match seen.status {
            // A documented error status with a body that is not JSON (e.g. an empty 401).
            Some(status) if status >= 400 => Err(status_error(
                operation,
                status,
                ApiErrorBody::from_bytes(&bytes).unwrap_or_default(),
                seen,
            )),
            status => Err(Error::InvalidResponse {
                operation,
                status,
                message: format!("body does not match the spec: {error}"),
            }),
        },
        Err(
            protime_raw::Error::CommunicationError(error)
            | protime_raw::Error::ResponseBodyError(error),
        ) => Err(transport_error(operation, error, seen)),
        Err(other) => Err(Error::InvalidResponse {
            operation,
            status: other.status().map(|s| s.as_u16()).or(seen.status),
            message: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_format_is_checked() {
        for good in [
            "PeopleSyncService/v1 (Acme Corp)",
            "ClockingSync/1.0.3 (Acme)",
        ] {
            assert!(check_user_agent(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "curl/8.0",
            "PeopleSyncService (Acme Corp)",
            "PeopleSyncService/v1 Acme Corp",
            "People Sync/v1 (Acme)",
            "Svc/v1 ()",
            "Svc/ (Acme)",
        ] {
            assert!(check_user_agent(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn building_without_user_agent_or_auth_fails_clearly() {
        let error = ProtimeClient::builder()
            .base_url("http://127.0.0.1:1")
            .static_token(AccessToken::new("t"))
            .build()
            .map(|_| ())
            .unwrap_err();
        assert!(
            error.to_string().contains("User-Agent is required"),
            "{error}"
        );
        let error = ProtimeClient::builder()
            .base_url("http://127.0.0.1:1")
            .user_agent("Svc/1 (Acme)")
            .build()
            .map(|_| ())
            .unwrap_err();
        assert!(error.to_string().contains("no authentication"), "{error}");
    }

    #[test]
    fn links_to_another_origin_are_not_followed() {
        let client = ProtimeClient::builder()
            .base_url("https://acme.myprotime.eu")
            .static_token(AccessToken::new("t"))
            .user_agent("Svc/1 (Acme)")
            .build()
            .unwrap();
        let url = client
            .link_url("/connector/protimeapi/api/v1/clockings?filter=date ge '2024-12-01'&continuationToken=x")
            .unwrap();
        assert_eq!(url.host_str(), Some("acme.myprotime.eu"));
        assert!(
            url.as_str().contains("date%20ge%20"),
            "spaces are encoded: {url}"
        );
        assert!(
            client
                .link_url("https://acme.myprotime.eu/connector/x")
                .is_ok()
        );
        assert!(client.link_url("https://evil.example/connector/x").is_err());
        assert!(
            client
                .link_url("http://acme.myprotime.eu/connector/x")
                .is_err()
        );
    }

    #[test]
    fn environments_give_the_documented_urls() {
        assert_eq!(
            Environment::Production.base_url("acme"),
            "https://acme.myprotime.eu"
        );
        assert_eq!(
            Environment::Sandbox.token_url("acme"),
            "https://authentication.myprotimesandbox.eu/tenants/acme/connect/token"
        );
    }
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
