//! Configuration of a [`crate::Sandbox`].

use std::time::Duration;

use chrono::NaiveDate;
use protime_webhooks::SignatureScheme;

use crate::Error;

/// The OAuth scopes the sandbox knows, as Protime names them.
pub mod scopes {
    /// `GET /webhooks`, `GET /webhooks/{id}`.
    pub const WEBHOOKS_READ: &str = "connector-protimeapi-webhooks.read";
    /// `POST /webhooks`, `DELETE /webhooks/{id}`.
    pub const WEBHOOKS_WRITE: &str = "connector-protimeapi-webhooks.write";
    /// `GET /clockings`, `GET /clockings/{id}`, `GET /delta/clockings`.
    pub const CLOCKINGS_READ: &str = "connector-protimeapi-clockings.read";
    /// `POST /clockings`.
    pub const CLOCKINGS_WRITE: &str = "connector-protimeapi-clockings.write";
    /// Every scope above.
    pub const ALL: [&str; 4] = [
        WEBHOOKS_READ,
        WEBHOOKS_WRITE,
        CLOCKINGS_READ,
        CLOCKINGS_WRITE,
    ];
}

/// An OAuth client the token endpoint accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
    /// Scopes this client may request. A token request without `scope` gets all of them.
    pub scopes: Vec<String>,
}

impl ClientConfig {
    /// A client with these credentials and scopes.
    pub fn new<S: Into<String>>(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scopes: scopes.into_iter().map(Into::into).collect(),
        }
    }

    /// The default client: `sandbox-client` / `sandbox-secret` with every scope of [`scopes::ALL`].
    pub fn default_client() -> Self {
        Self::new("sandbox-client", "sandbox-secret", scopes::ALL)
    }

    /// The scopes as the space-separated `scope` form field of a token request.
    pub fn scope_string(&self) -> String {
        self.scopes.join(" ")
    }
}

/// How deliveries are held back and shuffled (see [`SandboxConfig::reorder`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReorderConfig {
    /// Deliveries collected before the batch is shuffled and sent (at least 1).
    pub batch: usize,
    /// Longest time the first delivery of a batch is held back waiting for the batch to fill.
    pub max_hold: Duration,
}

impl Default for ReorderConfig {
    fn default() -> Self {
        Self {
            batch: 4,
            max_hold: Duration::from_millis(50),
        }
    }
}

/// Everything a [`crate::Sandbox`] can be told. Build it with struct update syntax:
///
/// ```
/// use std::time::Duration;
/// use protime_sandbox::SandboxConfig;
///
/// let config = SandboxConfig {
///     people: 3,
///     days: 5,
///     page_size: 10,
///     empty_page_every: Some(2),
///     retry_schedule: vec![Duration::from_millis(50), Duration::from_millis(100)],
///     ..SandboxConfig::default()
/// };
/// assert_eq!(config.seed, 42);
/// ```
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// TCP port on 127.0.0.1 for [`crate::Sandbox::start`]; 0 picks a free one. Default 0.
    pub port: u16,
    /// The tenant in the token path `/tenants/{tenant}/connect/token`. Default `sandbox`.
    pub tenant: String,
    /// Clients the token endpoint accepts (at least one). Default: [`ClientConfig::default_client`].
    pub clients: Vec<ClientConfig>,
    /// Lifetime of an access token; `expires_in` is its whole seconds. Default 1800 s.
    pub token_lifetime: Duration,
    /// API requests allowed per token per second (a fixed one-second window); the excess gets
    /// `429` with `Retry-After`. `None` (the default) disables rate limiting.
    pub rate_limit_per_second: Option<u32>,
    /// Seed of the generated data and of the activity generator. Default 42.
    pub seed: u64,
    /// Number of people whose clockings are seeded. Default 10.
    pub people: u32,
    /// Number of days of clockings seeded, from [`Self::start_date`]. Default 14.
    pub days: u32,
    /// First seeded day. Default 2026-01-05 (a fixed date, so that a seed always gives the same
    /// data).
    pub start_date: NaiveDate,
    /// Clockings per page of `GET /clockings`. Default 100.
    pub page_size: usize,
    /// When `Some(n)`, every n-th page of a listing is empty but still has a `nextLink` (only
    /// while clockings remain), because clients must not stop on an empty `value`. Default
    /// `None`.
    pub empty_page_every: Option<usize>,
    /// Write `nextLink` with raw spaces and quotes, as the docs' examples show, instead of
    /// percent-encoding them. Default `false`.
    pub unencoded_links: bool,
    /// A delta expires this long after its last request; then its token gets `410 Gone`.
    /// Default 72 h.
    pub delta_token_ttl: Duration,
    /// Validity of a new webhook: `validUntil` is creation time plus this. Default 30 days
    /// (Protime does not document the real length).
    pub webhook_validity: Duration,
    /// Refuse `http://` destination URLs with `400`, as Protime does. Default `false`, so that
    /// receivers on loopback work.
    pub require_https_destinations: bool,
    /// How deliveries are signed. Default [`SignatureScheme::default`].
    pub signature_scheme: SignatureScheme,
    /// Delays between delivery attempts: one retry per element, then the webhook is disabled.
    /// Default 1 s, 10 s, 60 s, 300 s.
    pub retry_schedule: Vec<Duration>,
    /// Time allowed for one delivery attempt. Default 5 s.
    pub delivery_timeout: Duration,
    /// Deliveries in flight at once (at least 1). Default 8.
    pub max_concurrent_deliveries: usize,
    /// Probability (0..=1) that a delivered change is delivered a second time, later. Default 0.
    pub duplicate_probability: f64,
    /// Hold back deliveries and send them in shuffled batches. Default `None` (send at once).
    pub reorder: Option<ReorderConfig>,
    /// Probability (0..=1) that a delivery is lost on the way: never sent and never retried,
    /// while the webhook stays enabled — what a delivery lost during an outage longer than
    /// Protime's retry window looks like to a receiver. Only a full sync or a delta can
    /// recover it. Counted in [`crate::Stats::lost`]. Default 0.
    pub lose_probability: f64,
    /// Shape list, get and delta items like the docs' examples instead of complete
    /// clockings: items of a delta (its initial load and its pages) carry only
    /// `changeVersion`, `id` and `date`, as on
    /// <https://documentation.myprotime.eu/protimeapi/how-to/track-changes-with-delta/>;
    /// items of a plain list or get carry no `changeVersion`, as on
    /// <https://documentation.myprotime.eu/protimeapi/how-to/fetch-resources/>. Responses
    /// then no longer match the spec's complete `Clocking`: this is for testing what a
    /// client does with what the docs show. Default `false`.
    pub example_shaped_items: bool,
    /// When `Some`, a background task of [`crate::Sandbox::start`] makes one change (create, edit,
    /// soft delete or hard delete) at this interval. Default `None`.
    pub generate_every: Option<Duration>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            port: 0,
            tenant: "sandbox".to_owned(),
            clients: vec![ClientConfig::default_client()],
            token_lifetime: Duration::from_secs(1800),
            rate_limit_per_second: None,
            seed: 42,
            people: 10,
            days: 14,
            start_date: NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default(),
            page_size: 100,
            empty_page_every: None,
            unencoded_links: false,
            delta_token_ttl: Duration::from_secs(72 * 3600),
            webhook_validity: Duration::from_secs(30 * 24 * 3600),
            require_https_destinations: false,
            signature_scheme: SignatureScheme::default(),
            retry_schedule: vec![
                Duration::from_secs(1),
                Duration::from_secs(10),
                Duration::from_secs(60),
                Duration::from_secs(300),
            ],
            delivery_timeout: Duration::from_secs(5),
            max_concurrent_deliveries: 8,
            duplicate_probability: 0.0,
            lose_probability: 0.0,
            reorder: None,
            example_shaped_items: false,
            generate_every: None,
        }
    }
}

impl SandboxConfig {
    /// Checks the values that would make the sandbox misbehave.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let fail = |message: &str| Err(Error::Config(message.to_owned()));
        if self.clients.is_empty() {
            return fail("at least one client is required");
        }
        for (i, client) in self.clients.iter().enumerate() {
            if client.client_id.is_empty() || client.client_secret.is_empty() {
                return fail("client ids and secrets must not be empty");
            }
            if self
                .clients
                .iter()
                .skip(i + 1)
                .any(|other| other.client_id == client.client_id)
            {
                return fail("client ids must be unique");
            }
        }
        if self.tenant.is_empty()
            || !self
                .tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return fail("the tenant must be non-empty ASCII letters, digits, '-' or '_'");
        }
        if self.token_lifetime.is_zero() {
            return fail("token_lifetime must be positive");
        }
        if self.rate_limit_per_second == Some(0) {
            return fail("rate_limit_per_second must be at least 1 (or None)");
        }
        if self.page_size == 0 {
            return fail("page_size must be at least 1");
        }
        if self.empty_page_every.is_some_and(|n| n < 2) {
            return fail("empty_page_every must be at least 2 (or None)");
        }
        if !(0.0..=1.0).contains(&self.duplicate_probability) {
            return fail("duplicate_probability must be within 0..=1");
        }
        if !(0.0..=1.0).contains(&self.lose_probability) {
            return fail("lose_probability must be within 0..=1");
        }
        if self.max_concurrent_deliveries == 0 {
            return fail("max_concurrent_deliveries must be at least 1");
        }
        if self.reorder.is_some_and(|r| r.batch == 0) {
            return fail("reorder.batch must be at least 1");
        }
        if chrono::TimeDelta::from_std(self.webhook_validity).is_err()
            || chrono::TimeDelta::from_std(self.delta_token_ttl).is_err()
        {
            return fail("webhook_validity and delta_token_ttl must fit in a chrono::TimeDelta");
        }
        if self.generate_every.is_some_and(|d| d.is_zero()) {
            return fail("generate_every must be positive (or None)");
        }
        let probe = protime_webhooks::WebhookKey::new("00112233445566778899aabbccddeeff")
            .map_err(|e| Error::Config(format!("signature_scheme: {e}")))?;
        if let Err(e) =
            protime_webhooks::signature::sign(&self.signature_scheme, &probe, b"{}", Some(0))
        {
            return Err(Error::Config(format!("signature_scheme: {e}")));
        }
        if u64::from(self.people) * u64::from(self.days) > 1_000_000 {
            return fail("people × days must stay within 1,000,000");
        }
        if self
            .start_date
            .checked_add_days(chrono::Days::new(u64::from(self.days) + 400))
            .is_none()
        {
            return fail("start_date is too late");
        }
        Ok(())
    }
}
