//! Outbound alerts: a small JSON body POSTed to a URL of yours (a chat tool's incoming
//! webhook, a pager, your own endpoint) when something needs a person.
//!
//! The body is `{"text": …, "kind": …, "subscription": …, "at": …, "details": {…}}`: `text`
//! is what Slack-, Mattermost- and Teams-style incoming webhooks display, the other fields
//! are for machines. With a secret, each request carries `X-Protime-Alert-Timestamp` (Unix
//! seconds) and `X-Protime-Alert-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`,
//! so the receiver can check who sent it and when.
//!
//! One alert per incident: an alert of a kind for a subscription is not sent again until
//! the condition has cleared (`resolve`) or `repeat_after` has passed, however often the
//! condition is seen. Alerts go through a bounded queue to one sender task (10 s timeout,
//! 3 attempts); a full queue drops the alert and counts it. Every alert sent is also
//! counted in `protime_alerts_total{subscription,kind}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hmac::{Hmac, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::Sha256;
use tokio::sync::mpsc;

/// Alerts waiting for the sender; more are dropped (and counted).
const QUEUE: usize = 64;

/// Attempts per alert, one second apart and then two.
const ATTEMPTS: u32 = 3;

/// Time allowed for one attempt.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// Protime reports the webhook disabled (or it is gone).
    WebhookDisabled,
    /// The webhook expires soon and no renewal has succeeded.
    WebhookExpiring,
    /// A renewal failed.
    RenewalFailed,
    /// Dead letters not replayed are above the threshold.
    DeadLetters,
    /// Deliveries refused for their signature are above the threshold within the window.
    SignatureFailures,
    /// Reconciliation applied changes the webhooks had not delivered.
    MissedChanges,
}

impl Kind {
    /// The name in bodies and metrics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::WebhookDisabled => "webhook_disabled",
            Self::WebhookExpiring => "webhook_expiring",
            Self::RenewalFailed => "renewal_failed",
            Self::DeadLetters => "dead_letters",
            Self::SignatureFailures => "signature_failures",
            Self::MissedChanges => "missed_changes",
        }
    }
}

/// When to alert, and where.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Where alerts are POSTed.
    pub(crate) url: reqwest::Url,
    /// Signs each alert when set.
    pub(crate) secret: Option<SecretString>,
    /// An alert of a kind is sent again after this long if its condition persists.
    pub(crate) repeat_after: Duration,
    /// Alert when the webhook expires within this long (renewal should have happened by
    /// then: it starts at the lead time).
    pub(crate) expiring_within: Duration,
    /// Alert when more dead letters than this are waiting for a replay.
    pub(crate) dead_letters_above: u64,
    /// Alert when more deliveries than this fail the signature check within
    /// `signature_window`.
    pub(crate) signature_failures_above: u64,
    /// The window of `signature_failures_above`.
    pub(crate) signature_window: Duration,
}

impl Settings {
    /// The defaults, alerting to `url`.
    pub(crate) fn new(url: reqwest::Url) -> Self {
        Self {
            url,
            secret: None,
            repeat_after: Duration::from_secs(3600),
            expiring_within: Duration::from_secs(12 * 3600),
            dead_letters_above: 10,
            signature_failures_above: 50,
            signature_window: Duration::from_secs(300),
        }
    }
}

/// Raises alerts; cheap to clone. Without settings it only counts.
#[derive(Clone, Default)]
pub(crate) struct Alerts {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    settings: Settings,
    queue: mpsc::Sender<Alert>,
    /// When each (subscription, kind) last alerted, while its condition lasts.
    raised: Mutex<HashMap<(String, Kind), Instant>>,
}

struct Alert {
    subscription: String,
    kind: Kind,
    text: String,
    details: serde_json::Value,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field("url", &self.inner.as_ref().map(|i| i.settings.url.as_str()))
            .finish_non_exhaustive()
    }
}

impl Alerts {
    /// Alerts to `settings.url`; starts the sender task (call within a Tokio runtime).
    pub(crate) fn start(settings: Settings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("protime-alerts/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client for alerts")?;
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(send_all(http, settings.clone(), jobs));
        Ok(Self {
            inner: Some(Arc::new(Inner {
                settings,
                queue,
                raised: Mutex::default(),
            })),
        })
    }

    /// The thresholds, when alerts are on.
    pub(crate) fn settings(&self) -> Option<&Settings> {
        self.inner.as_ref().map(|inner| &inner.settings)
    }

    /// Raises `kind` for `subscription`, unless it was raised within `repeat_after` and has
    /// not cleared since.
    pub(crate) fn raise(
        &self,
        subscription: &str,
        kind: Kind,
        text: String,
        details: serde_json::Value,
    ) {
        let Some(inner) = &self.inner else {
            return;
        };
        {
            let mut raised = inner.raised.lock().unwrap_or_else(PoisonError::into_inner);
            let key = (subscription.to_owned(), kind);
            if raised
                .get(&key)
                .is_some_and(|at| at.elapsed() < inner.settings.repeat_after)
            {
                return;
            }
            raised.insert(key, Instant::now());
        }
        metrics::counter!("protime_alerts_total", "subscription" => subscription.to_owned(), "kind" => kind.name())
            .increment(1);
        tracing::warn!(subscription, kind = kind.name(), %text, "alert");
        let alert = Alert {
            subscription: subscription.to_owned(),
            kind,
            text,
            details,
        };
        if inner.queue.try_send(alert).is_err() {
            metrics::counter!("protime_alerts_dropped_total").increment(1);
            tracing::error!(
                subscription,
                kind = kind.name(),
                "alert dropped: the alert queue is full"
            );
        }
    }

    /// `kind`'s condition has cleared for `subscription`: the next occurrence alerts at once.
    pub(crate) fn resolve(&self, subscription: &str, kind: Kind) {
        if let Some(inner) = &self.inner {
            inner
                .raised
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&(subscription.to_owned(), kind));
        }
    }
}

/// Sends queued alerts one at a time until every handle is gone.
async fn send_all(http: reqwest::Client, settings: Settings, mut jobs: mpsc::Receiver<Alert>) {
    while let Some(alert) = jobs.recv().await {
        let body = serde_json::json!({
            "text": format!("protime [{}] {}", alert.subscription, alert.text),
            "kind": alert.kind.name(),
            "subscription": alert.subscription,
            "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "details": alert.details,
        })
        .to_string();
        let mut delay = Duration::from_secs(1);
        for attempt in 1..=ATTEMPTS {
            let mut request = http
                .post(settings.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json");
            if let Some(secret) = &settings.secret {
                let timestamp = chrono::Utc::now().timestamp().to_string();
                request = request
                    .header("X-Protime-Alert-Timestamp", &timestamp)
                    .header(
                        "X-Protime-Alert-Signature",
                        format!("v1={}", signature(secret, &timestamp, &body)),
                    );
            }
            match request.body(body.clone()).send().await {
                Ok(response) if response.status().is_success() => break,
                outcome => {
                    let reason = match outcome {
                        Ok(response) => format!("HTTP {}", response.status().as_u16()),
                        Err(error) => error.without_url().to_string(),
                    };
                    if attempt == ATTEMPTS {
                        metrics::counter!("protime_alerts_failed_total").increment(1);
                        tracing::error!(kind = alert.kind.name(), %reason, "an alert could not be sent");
                    } else {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                }
            }
        }
    }
}

/// Hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret` (its bytes, as given).
fn signature(secret: &SecretString, timestamp: &str, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes a key of any length.
        Err(_) => return String::new(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Counts deliveries refused for their signature within a sliding window, from samples of a
/// running total.
#[derive(Debug, Default)]
pub(crate) struct Window {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl Window {
    /// Records `total` now; returns how much it grew within `window`.
    pub(crate) fn growth(&mut self, total: u64, window: Duration) -> u64 {
        let now = Instant::now();
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > window)
        {
            self.samples.pop_front();
        }
        let oldest = self.samples.front().map_or(total, |(_, value)| *value);
        self.samples.push_back((now, total));
        total.saturating_sub(oldest)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        let secret = SecretString::from("Jefe");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1700000000.{\"text\":\"x\"}");
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            signature(&secret, "1700000000", "{\"text\":\"x\"}"),
            expected
        );
        assert_ne!(
            signature(&secret, "1700000001", "{\"text\":\"x\"}"),
            expected
        );
    }

    #[test]
    fn the_window_counts_growth_within_it() {
        let mut window = Window::default();
        let long = Duration::from_secs(3600);
        assert_eq!(window.growth(10, long), 0);
        assert_eq!(window.growth(15, long), 5);
        assert_eq!(window.growth(60, long), 50);
        let mut short = Window::default();
        assert_eq!(short.growth(10, Duration::ZERO), 0);
        std::thread::sleep(Duration::from_millis(2));
        // Older samples have left a zero-length window.
        assert_eq!(short.growth(20, Duration::ZERO), 0);
    }

    #[tokio::test]
    async fn an_incident_alerts_once_until_it_clears() {
        let alerts = Alerts::start(Settings::new("http://127.0.0.1:9/".parse().unwrap())).unwrap();
        let count = |alerts: &Alerts| alerts.inner.as_ref().unwrap().raised.lock().unwrap().len();
        alerts.raise(
            "a",
            Kind::RenewalFailed,
            "x".into(),
            serde_json::Value::Null,
        );
        let first = alerts.inner.as_ref().unwrap().raised.lock().unwrap()
            [&("a".to_owned(), Kind::RenewalFailed)];
        alerts.raise(
            "a",
            Kind::RenewalFailed,
            "x".into(),
            serde_json::Value::Null,
        );
        let second = alerts.inner.as_ref().unwrap().raised.lock().unwrap()
            [&("a".to_owned(), Kind::RenewalFailed)];
        assert_eq!(first, second, "raised again within repeat_after");
        alerts.raise(
            "b",
            Kind::RenewalFailed,
            "x".into(),
            serde_json::Value::Null,
        );
        assert_eq!(count(&alerts), 2);
        alerts.resolve("a", Kind::RenewalFailed);
        assert_eq!(count(&alerts), 1);
    }
}
