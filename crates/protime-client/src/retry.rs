//! When and how long to wait before trying a request again.

use std::time::Duration;

/// Retry budget and backoff. A request is retried only where that is safe: on 429 (the
/// request was not processed) always; on 502/503/504, connection errors and timeouts only
/// for reads and deletes (idempotent), and for creates only when the connection could not
/// be established (nothing was sent).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, including the first (1 = no retries).
    pub max_attempts: u32,
    /// Longest total time spent on one call, waits included; no retry starts after it.
    pub max_elapsed: Duration,
    /// First backoff delay; doubled after each attempt (full jitter).
    pub initial_backoff: Duration,
    /// Largest backoff delay.
    pub max_backoff: Duration,
    /// Largest `Retry-After` honoured; a longer one ends the retries with
    /// [`super::Error::RateLimited`].
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(120),
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    ///
    /// ```
    /// use protime_client::RetryPolicy;
    /// assert_eq!(RetryPolicy::none().max_attempts, 1);
    /// ```
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets [`Self::max_attempts`] (at least 1).
    ///
    /// ```
    /// use protime_client::RetryPolicy;
    /// assert_eq!(RetryPolicy::default().with_max_attempts(3).max_attempts, 3);
    /// assert_eq!(RetryPolicy::default().with_max_attempts(0).max_attempts, 1);
    /// ```
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets [`Self::initial_backoff`] and [`Self::max_backoff`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use protime_client::RetryPolicy;
    /// let policy = RetryPolicy::default().with_backoff(Duration::from_millis(100), Duration::from_secs(5));
    /// assert_eq!((policy.initial_backoff, policy.max_backoff), (Duration::from_millis(100), Duration::from_secs(5)));
    /// ```
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Sets [`Self::max_elapsed`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use protime_client::RetryPolicy;
    /// let policy = RetryPolicy::default().with_max_elapsed(Duration::from_secs(30));
    /// assert_eq!(policy.max_elapsed, Duration::from_secs(30));
    /// ```
    pub fn with_max_elapsed(mut self, max_elapsed: Duration) -> Self {
        self.max_elapsed = max_elapsed;
        self
    }

    /// The delay before attempt `attempt + 1` (attempt counts from 1): exponential with full
    /// jitter, so that many clients do not retry in lockstep.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let ceiling = self
            .initial_backoff
            .saturating_mul(1_u32 << exponent)
            .min(self.max_backoff);
        ceiling.mul_f64(jitter_fraction())
    }
}

/// A pseudo-random fraction in [0.5, 1.0): enough spread to avoid lockstep retries without a
/// dependency on a random-number crate (std's hasher is randomly seeded per process).
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    let bits = hasher.finish() >> 11; // 53 random bits
    0.5 + (bits as f64 / (1_u64 << 53) as f64) / 2.0
}

/// Parses `Retry-After` given in seconds (the form Protime's docs show: `60`).
pub(crate) fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    text.parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::default()
            .with_backoff(Duration::from_millis(100), Duration::from_millis(800));
        for _ in 0..100 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first < Duration::from_millis(100));
            let fifth = policy.backoff(5);
            assert!(fifth >= Duration::from_millis(400) && fifth < Duration::from_millis(800));
            assert!(policy.backoff(40) < Duration::from_millis(800));
        }
    }

    #[test]
    fn retry_after_in_seconds() {
        let value = reqwest::header::HeaderValue::from_static("60");
        assert_eq!(
            parse_retry_after(Some(&value)),
            Some(Duration::from_secs(60))
        );
        let date = reqwest::header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_retry_after(Some(&date)), None);
        assert_eq!(parse_retry_after(None), None);
    }
}
