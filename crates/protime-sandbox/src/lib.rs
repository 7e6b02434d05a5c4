//! A local stand-in for the Protime API, like stripe-mock for Stripe: run it on loopback
//! instead of a real tenant, point a client at [`RunningSandbox::base_url`], and receive
//! signed webhook deliveries for the `clockings` collection.
//!
//! It serves every operation of the vendored `openapi/protime-api.json` with the
//! `protime-raw` wire types, plus the OAuth token endpoint:
//!
//! | route | scope | answers |
//! |---|---|---|
//! | `POST /tenants/{tenant}/connect/token` | — | `200` token, `400`/`401` OAuth errors |
//! | `GET /connector/protimeapi/api/v1/webhooks?filter=` | `webhooks.read` | `200`, `400` |
//! | `POST /connector/protimeapi/api/v1/webhooks?externalReferences=` | `webhooks.write` | `201` + `Location` + key, `400` |
//! | `GET /connector/protimeapi/api/v1/webhooks/{id}` | `webhooks.read` | `200`, `404` |
//! | `DELETE /connector/protimeapi/api/v1/webhooks/{id}` | `webhooks.write` | `204` (soft delete), `404` |
//! | `GET /connector/protimeapi/api/v1/clockings?filter=&continuationToken=&delta&deltaToken=` | `clockings.read` | `200` page, `400` |
//! | `POST /connector/protimeapi/api/v1/clockings` | `clockings.write` | `201` + `Location`, `400` |
//! | `GET /connector/protimeapi/api/v1/clockings/{id}` | `clockings.read` | `200`, `404` |
//! | `GET /connector/protimeapi/api/v1/delta/clockings?deltaToken=` | `clockings.read` | `200`, `400`, `410` |
//! | `POST /sandbox/trigger` (sandbox control, not Protime's API) | — | `200` what was delivered ([`Sandbox::trigger`]), `400`, `404` |
//!
//! Scopes are `connector-protimeapi-<collection>.<read|write>` ([`scopes`]). Every API route
//! checks, in this order: maintenance (`503` + `Retry-After`, [`Sandbox::set_maintenance`]),
//! injected failures (`500`, [`Sandbox::fail_next_requests`]), URI length (`414` over 4096
//! characters), the bearer token (`401`), the rate limit (`429` + `Retry-After`), the
//! mandatory `User-Agent` (`400`) and the scope (`403`). Every error body has the
//! `protime_raw::types::ProtimeError` shape: `{"error": {"code", "message", "reasons"?}}`, or
//! `{"validationErrors": […]}` when a JSON body does not deserialize.
//!
//! The data is seeded deterministically from [`SandboxConfig::seed`]: people with day and
//! night shifts (minutes above 1439 and below 0), lunch breaks, `Reason` clockings, `Activity`
//! clockings with 1–3 levels and `ActivityEnd`, edited clockings (`originalTimeOfDayInMinutes`),
//! system-generated ones, soft deletes (`status: Deleted`), terminals and phone geolocations.
//! Every change, seeded or not, takes the next value of one global `changeVersion` counter,
//! written as 20 upper-case hex digits.
//!
//! [`Sandbox::generate`] (or a background task, [`SandboxConfig::generate_every`]) creates,
//! edits, soft-deletes and hard-deletes clockings; each change is POSTed to every enabled
//! `clockings` webhook as one `{"changeType", "data"}` body with `Content-Type:
//! application/json`, signed with the webhook's key by `protime_webhooks::signature::sign`
//! ([`SandboxConfig::signature_scheme`]). Deliveries run concurrently (bounded by
//! [`SandboxConfig::max_concurrent_deliveries`]), are retried on
//! [`SandboxConfig::retry_schedule`], and the webhook is disabled when the retries run out.
//! [`SandboxConfig::duplicate_probability`] and [`SandboxConfig::reorder`] make the delivery
//! stream as unruly as a receiver must tolerate. [`Sandbox::stats`] counts what happened,
//! [`Sandbox::wait_idle`] waits for the deliveries to settle, and
//! [`Sandbox::current_clockings`] is what a receiver that applied everything should hold.
//!
//! Behaviour the docs leave open, as the sandbox implements it:
//!
//! - **Listing.** `filter` needs `date ge`; without `date le` the range is one year from it;
//!   with it, at most one year. `person eq`/`in`, `kind eq`/`in` and `and` are understood;
//!   `or`, parentheses and named lists get `400` with a reason. Pages are in id order and
//!   include soft-deleted clockings. `nextLink` repeats `filter` (and `externalReferences`)
//!   and carries `continuationToken` (and `deltaToken` during a delta initial load);
//!   [`SandboxConfig::empty_page_every`] inserts empty pages that still have a `nextLink`.
//! - **Delta.** `?delta` (or `?delta=`) starts a delta at the current change version; the
//!   last page of the initial load carries `deltaLink` instead of `nextLink`. `GET
//!   /delta/clockings` returns every change after the token's cursor that matches the
//!   initial load's filter, in change-version order (`Delete` items carry only
//!   `changeVersion` and `id`), and a fresh `deltaLink`. An older token of the same delta
//!   still works (it replays from its own cursor). A delta not used for
//!   [`SandboxConfig::delta_token_ttl`] is gone: `410`. An unknown `deltaToken` inside a
//!   listing's `nextLink` is a `400`, because the spec lists no `410` there.
//! - **Webhooks.** `DELETE` is a soft delete (`204`, then `Disabled`). `validUntil` is checked
//!   whenever webhooks are read or deliveries made. The webhook's `externalReferences`
//!   property maps each collection to its reference name (an array when several).
//! - **Tokens.** Opaque random strings (not JWTs); a request without `scope` gets all of the
//!   client's scopes. `User-Agent` is not required on the token endpoint.
//!
//! # Features
//!
#![doc = document_features::document_features!()]
//!
//! # Public dependencies
//!
//! - `axum` 0.8: [`Sandbox::router`] returns an `axum::Router`;
//! - `protime-raw` 0.1: the wire types of [`Sandbox::current_clockings`] and
//!   [`Sandbox::webhooks`];
//! - `tokio` 1: [`Sandbox::start`] spawns on the current tokio runtime.

mod api;
mod config;
mod data;
mod delivery;
mod error;
mod filter;
mod rng;
mod state;
mod trigger;

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Deref;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use protime_raw::types::{Clocking, ClockingChange, ClockingStatus, Webhook, WebhookStatus};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};

pub use config::{ClientConfig, ReorderConfig, SandboxConfig, scopes};
pub use error::Error;
pub use trigger::{TriggerAction, TriggerError, TriggerKind, TriggerRequest, Triggered};

/// Entry points for the fuzz targets under `fuzz/` (feature `fuzzing`). Not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Parses `input` as the `filter` of `GET /clockings` does: the date range
    /// (`from`, `to`, inclusive) when accepted, else the `reasons` of the `400`.
    pub fn clocking_filter(
        input: &str,
    ) -> Result<(chrono::NaiveDate, chrono::NaiveDate), Vec<String>> {
        crate::filter::ClockingFilter::parse(input).map(|filter| (filter.from, filter.to))
    }

    /// Parses `input` as the `filter` of `GET /webhooks` does; the `reasons` of the `400`
    /// when refused.
    pub fn webhook_filter(input: &str) -> Result<(), Vec<String>> {
        crate::filter::WebhookFilter::parse(input).map(|_| ())
    }
}

use crate::data::ExternalRefRequest;
use crate::delivery::Job;
use crate::rng::SeededRng;
use crate::state::{Applied, State};

/// The current time as a UTC timestamp.
pub(crate) fn now_utc() -> DateTime<Utc> {
    DateTime::<Utc>::from(std::time::SystemTime::now())
}

/// Counters of what the sandbox did; read them with [`Sandbox::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    token_requests: AtomicU64,
    tokens_issued: AtomicU64,
    api_requests: AtomicU64,
    rate_limited: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    duplicates_sent: AtomicU64,
    dropped: AtomicU64,
    lost: AtomicU64,
    webhooks_disabled: AtomicU64,
}

impl Counters {
    fn count_token_request(&self) {
        self.token_requests.fetch_add(1, Ordering::Relaxed);
    }
    fn count_token_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
    }
    fn count_api_request(&self) {
        self.api_requests.fetch_add(1, Ordering::Relaxed);
    }
    fn count_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }
}

/// Fault injection switches.
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// `Retry-After` seconds + 1 while in maintenance; 0 otherwise.
    maintenance: AtomicU64,
    injected_failures: AtomicU32,
}

impl Control {
    fn maintenance(&self) -> Option<u64> {
        self.maintenance.load(Ordering::Relaxed).checked_sub(1)
    }

    fn take_injected_failure(&self) -> bool {
        self.injected_failures
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// What every handle and task shares.
pub(crate) struct Shared {
    config: SandboxConfig,
    primary_client: ClientConfig,
    state: Mutex<State>,
    counters: Counters,
    control: Control,
    http: reqwest::Client,
    permits: Semaphore,
    pending: AtomicUsize,
    idle: Notify,
    shutdown: watch::Sender<bool>,
    delivery_rng: Mutex<SeededRng>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update under the lock is small and leaves the state consistent, so a panic
        // elsewhere while holding it does not make it unusable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn delivery_rng(&self) -> MutexGuard<'_, SeededRng> {
        self.delivery_rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn roll_duplicate(&self) -> bool {
        let p = self.config.duplicate_probability;
        p > 0.0 && self.delivery_rng().chance(p)
    }

    fn roll_lost(&self) -> bool {
        let p = self.config.lose_probability;
        p > 0.0 && self.delivery_rng().chance(p)
    }

    fn webhook_enabled(&self, id: &str) -> bool {
        self.lock().webhook_enabled(id, now_utc())
    }

    fn disable_webhook(&self, id: &str) {
        let mut state = self.lock();
        let was_enabled = state
            .webhook(id)
            .is_some_and(|w| w.webhook.status == WebhookStatus::Enabled);
        if was_enabled && state.set_webhook_status(id, WebhookStatus::Disabled) {
            self.counters
                .webhooks_disabled
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn job_done(&self) {
        if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// A snapshot of the sandbox's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests to the token endpoint, successful or not.
    pub token_requests: u64,
    /// Access tokens issued.
    pub tokens_issued: u64,
    /// Requests to API routes (everything but the token endpoint).
    pub api_requests: u64,
    /// API requests answered `429`.
    pub rate_limited: u64,
    /// Deliveries acknowledged with a 2xx (duplicates not included).
    pub delivered: u64,
    /// Delivery attempts that failed and were retried.
    pub retried: u64,
    /// Deliveries given up after the last retry (each disables its webhook).
    pub failed: u64,
    /// Second deliveries of an already delivered body, acknowledged with a 2xx.
    pub duplicates_sent: u64,
    /// Deliveries not made because their webhook was no longer enabled.
    pub dropped: u64,
    /// Deliveries lost on purpose ([`SandboxConfig::lose_probability`]): never sent, while
    /// their webhook stayed enabled.
    pub lost: u64,
    /// Webhooks disabled because retries ran out.
    pub webhooks_disabled: u64,
    /// Deliveries queued, in flight or waiting for a retry.
    pub pending_deliveries: u64,
}

/// What [`Sandbox::publish_shaped`] queued.
struct Published {
    /// The changes, as delivered to a webhook without external references (unshaped).
    changes: Vec<ClockingChange>,
    /// Enabled `clockings` webhooks at the time.
    subscribers: usize,
}

/// The sandbox: its state, its delivery engine and its routes. Cheap to clone (a handle).
///
/// [`Sandbox::start`] serves it on loopback; [`Sandbox::new`] and [`Sandbox::router`] embed it
/// in your own axum server.
#[derive(Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("tenant", &self.shared.config.tenant)
            .field("seed", &self.shared.config.seed)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Builds a sandbox: seeds the data and starts the delivery engine. Must be called within
    /// a Tokio runtime ([`Error::NoRuntime`] otherwise), which runs the deliveries.
    pub fn new(config: SandboxConfig) -> Result<Self, Error> {
        config.validate()?;
        let primary_client = config
            .clients
            .first()
            .cloned()
            .ok_or_else(|| Error::Config("at least one client is required".into()))?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let http = reqwest::Client::builder()
            .timeout(config.delivery_timeout)
            .user_agent(concat!("Protime-Sandbox/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()?;
        let mut rng = SeededRng::new(config.seed ^ 0x5EED_DE11_7E57_0000);
        let delivery_rng = rng.fork(4);
        let state = State::seeded(&config);
        let (jobs, queue) = mpsc::unbounded_channel();
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            permits: Semaphore::new(config.max_concurrent_deliveries),
            config,
            primary_client,
            state: Mutex::new(state),
            counters: Counters::default(),
            control: Control::default(),
            http,
            pending: AtomicUsize::new(0),
            idle: Notify::new(),
            shutdown,
            delivery_rng: Mutex::new(delivery_rng),
        });
        runtime.spawn(delivery::dispatch(Arc::clone(&shared), queue));
        Ok(Self { shared, jobs })
    }

    /// Builds a sandbox and serves it on `127.0.0.1:{config.port}` until
    /// [`RunningSandbox::shutdown`] (or until the [`RunningSandbox`] is dropped). Starts the
    /// activity generator when [`SandboxConfig::generate_every`] is set.
    ///
    /// ```no_run
    /// use protime_sandbox::{Sandbox, SandboxConfig};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    /// let client = sandbox.client_credentials();
    /// let token: serde_json::Value = reqwest::Client::new()
    ///     .post(sandbox.token_url())
    ///     .form(&[
    ///         ("grant_type", "client_credentials"),
    ///         ("client_id", client.client_id.as_str()),
    ///         ("client_secret", client.client_secret.as_str()),
    ///         ("scope", client.scope_string().as_str()),
    ///     ])
    ///     .send()
    ///     .await?
    ///     .json()
    ///     .await?;
    /// println!("API at {}, token {}", sandbox.base_url(), token["access_token"]);
    ///
    /// sandbox.generate(10); // ten changes, delivered to every enabled clockings webhook
    /// sandbox.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start(config: SandboxConfig) -> Result<RunningSandbox, Error> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
        let generate_every = config.generate_every;
        let sandbox = Self::new(config)?;
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| Error::Bind { address, source })?;
        let address = listener
            .local_addr()
            .map_err(|source| Error::Bind { address, source })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = sandbox.router();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        let generator = generate_every.map(|every| {
            let sandbox = sandbox.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticks.tick().await;
                loop {
                    ticks.tick().await;
                    sandbox.generate(1);
                }
            })
        });
        tracing::info!(%address, "Protime sandbox listening");
        Ok(RunningSandbox {
            sandbox,
            address,
            stop: Some(stop),
            server: Some(server),
            generator,
        })
    }

    /// The routes, to serve or nest in your own axum app. Links (`nextLink`, `deltaLink`,
    /// `Location`) are host-relative, so any host works.
    pub fn router(&self) -> axum::Router {
        api::router(self.clone())
    }

    /// The configuration the sandbox runs with.
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    /// Path of the token endpoint: `/tenants/{tenant}/connect/token`.
    pub fn token_path(&self) -> String {
        format!("/tenants/{}/connect/token", self.shared.config.tenant)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// Makes `n` random changes — creations, edits (which set `originalTimeOfDayInMinutes`),
    /// soft deletes (`status: Deleted`) and hard deletes — each with the next change version,
    /// and queues their deliveries. Returns the changes as delivered (without external
    /// references).
    pub fn generate(&self, n: usize) -> Vec<ClockingChange> {
        self.publish(|state| (0..n).filter_map(|_| state.random_change()).collect())
    }

    /// Applies changes under the lock and queues one delivery per change and subscriber.
    fn publish(&self, apply: impl FnOnce(&mut State) -> Vec<Applied>) -> Vec<ClockingChange> {
        self.publish_shaped(apply, None).changes
    }

    /// [`Self::publish`], each body passed through `shape` (as JSON) when one is given.
    fn publish_shaped(
        &self,
        apply: impl FnOnce(&mut State) -> Vec<Applied>,
        shape: Option<&dyn Fn(serde_json::Value) -> serde_json::Value>,
    ) -> Published {
        let encode = |wire: &ClockingChange| match shape {
            None => serde_json::to_vec(wire).ok(),
            Some(shape) => serde_json::to_value(wire)
                .ok()
                .and_then(|value| serde_json::to_vec(&shape(value)).ok()),
        };
        let now = now_utc();
        let (published, jobs) = {
            let mut state = self.lock();
            let applied = apply(&mut state);
            let subscribers = state.clockings_subscribers(now);
            let mut jobs = Vec::with_capacity(applied.len() * subscribers.len());
            for change in &applied {
                for subscriber in &subscribers {
                    let Some(body) = encode(&change.to_wire(&state.catalog, &subscriber.refs))
                    else {
                        continue;
                    };
                    jobs.push(Job {
                        webhook_id: subscriber.webhook.id.clone(),
                        url: subscriber.webhook.destination_url.clone(),
                        key: subscriber.key.clone(),
                        body: body.into(),
                        duplicate: false,
                    });
                }
            }
            let none = ExternalRefRequest::default();
            let changes: Vec<ClockingChange> = applied
                .iter()
                .map(|change| change.to_wire(&state.catalog, &none))
                .collect();
            let published = Published {
                changes,
                subscribers: subscribers.len(),
            };
            (published, jobs)
        };
        for job in jobs {
            self.shared.pending.fetch_add(1, Ordering::SeqCst);
            if self.jobs.send(job).is_err() {
                self.shared.job_done();
            }
        }
        published
    }

    /// The clockings that currently exist (soft-deleted ones excluded), by id: what a
    /// receiver that applied every delivery should hold.
    pub fn current_clockings(&self) -> Vec<Clocking> {
        self.lock()
            .clockings()
            .filter(|c| c.status != Some(ClockingStatus::Deleted))
            .cloned()
            .collect()
    }

    /// Every stored clocking, soft-deleted ones included, by id.
    pub fn all_clockings(&self) -> Vec<Clocking> {
        self.lock().clockings().cloned().collect()
    }

    /// Ids of the seeded people (for `POST /clockings`).
    pub fn person_ids(&self) -> Vec<u64> {
        self.lock().catalog.people.iter().map(|p| p.id).collect()
    }

    /// The last change version issued (20 upper-case hex digits).
    pub fn change_version(&self) -> String {
        state::format_version(self.lock().version())
    }

    /// Every webhook, disabled and deleted ones included, in creation order.
    pub fn webhooks(&self) -> Vec<Webhook> {
        let mut state = self.lock();
        state.expire_webhooks(now_utc());
        state.webhooks().map(|w| w.webhook.clone()).collect()
    }

    /// Moves a webhook's `validUntil` to now, so it is `Disabled` from now on (as it would be
    /// at expiry). `false` when there is no such webhook.
    pub fn expire_webhook(&self, id: &str) -> bool {
        let now = now_utc();
        let mut state = self.lock();
        let found = state.set_webhook_valid_until(id, now);
        state.expire_webhooks(now);
        found
    }

    /// Makes every access token issued so far expired: the next API call with one gets `401`.
    pub fn expire_tokens(&self) {
        self.lock().expire_tokens(Instant::now());
    }

    /// Forgets every delta: their tokens get `410 Gone`.
    pub fn expire_deltas(&self) {
        self.lock().expire_deltas();
    }

    /// While `Some`, every API route answers `503` with this `Retry-After` (whole seconds);
    /// `None` ends the maintenance. The token endpoint is not affected.
    pub fn set_maintenance(&self, retry_after: Option<Duration>) {
        let value = retry_after.map_or(0, |d| d.as_secs().saturating_add(1));
        self.shared
            .control
            .maintenance
            .store(value, Ordering::Relaxed);
    }

    /// The next `n` API requests get `500`.
    pub fn fail_next_requests(&self, n: u32) {
        self.shared
            .control
            .injected_failures
            .store(n, Ordering::Relaxed);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            token_requests: get(&c.token_requests),
            tokens_issued: get(&c.tokens_issued),
            api_requests: get(&c.api_requests),
            rate_limited: get(&c.rate_limited),
            delivered: get(&c.delivered),
            retried: get(&c.retried),
            failed: get(&c.failed),
            duplicates_sent: get(&c.duplicates_sent),
            dropped: get(&c.dropped),
            lost: get(&c.lost),
            webhooks_disabled: get(&c.webhooks_disabled),
            pending_deliveries: self.shared.pending.load(Ordering::SeqCst) as u64,
        }
    }

    /// Waits until no delivery is queued, in flight or waiting for a retry; `false` if that
    /// did not happen within `timeout`.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.pending.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.shared.pending.load(Ordering::SeqCst) == 0;
            }
        }
    }

    /// Stops deliveries: queued ones are not sent and retries end.
    fn stop_deliveries(&self) {
        let _ = self.shared.shutdown.send(true);
    }
}

/// A sandbox served on loopback by [`Sandbox::start`]. Dereferences to [`Sandbox`]. Dropping
/// it stops the server, the generator and the deliveries; [`Self::shutdown`] also waits for
/// the server to finish.
pub struct RunningSandbox {
    sandbox: Sandbox,
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    generator: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for RunningSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSandbox")
            .field("address", &self.address)
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

impl Deref for RunningSandbox {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        &self.sandbox
    }
}

impl RunningSandbox {
    /// The sandbox handle (also reachable through `Deref`).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The socket address served.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The API base URL, e.g. `http://127.0.0.1:41234`, for
    /// `protime_raw::Client::new_with_client`; prefix `nextLink` and `deltaLink` with it.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The token endpoint, e.g. `http://127.0.0.1:41234/tenants/sandbox/connect/token`.
    pub fn token_url(&self) -> String {
        format!("{}{}", self.base_url(), self.sandbox.token_path())
    }

    /// The first configured client (by default `sandbox-client` with every scope).
    pub fn client_credentials(&self) -> &ClientConfig {
        &self.sandbox.shared.primary_client
    }

    /// Stops the generator and the deliveries, then the server (waiting up to 5 s for open
    /// connections to finish).
    pub async fn shutdown(mut self) {
        self.stop_tasks();
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            match tokio::time::timeout(Duration::from_secs(5), server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => tracing::warn!(%error, "sandbox server ended with an error"),
                Ok(Err(_)) => {}
                Err(_) => abort.abort(),
            }
        }
        tracing::info!(address = %self.address, "Protime sandbox stopped");
    }

    fn stop_tasks(&mut self) {
        if let Some(generator) = self.generator.take() {
            generator.abort();
        }
        self.sandbox.stop_deliveries();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
