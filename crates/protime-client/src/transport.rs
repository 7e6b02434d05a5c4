//! The one transport every request goes through — the generated operations (installed as
//! `protime_raw::Transport`) and the `nextLink`/`deltaLink` follow-ups alike: the bearer
//! token, one refresh on a 401, retries where they are safe, and a record of what the wire
//! said (status, `Location`, `Retry-After`, attempts) for the error a call returns.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use protime_raw::{Transport, TransportFuture};

use crate::auth::{AccessToken, SharedTokens};
use crate::error::Error;
use crate::retry::{RetryPolicy, parse_retry_after};

/// What the transport saw of the last response of a call.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    pub(crate) status: Option<u16>,
    pub(crate) location: Option<String>,
    pub(crate) retry_after: Option<Duration>,
    /// Attempts made, refreshes after a 401 not counted.
    pub(crate) attempts: u32,
}

/// The transport of one call: starts with the token the call fetched, and keeps what it saw
/// for the call to read after the generated code has decoded (or failed to decode).
#[derive(Debug)]
pub(crate) struct CallTransport {
    tokens: SharedTokens,
    retry: RetryPolicy,
    token: Mutex<AccessToken>,
    seen: Mutex<Seen>,
    /// A token refresh that failed after a 401: the call's real error.
    token_error: Mutex<Option<Error>>,
    /// The `api-version` value to send, if any (see [`set_api_version`]).
    api_version: Option<reqwest::header::HeaderValue>,
}

/// The `api-version` header progenitor adds to every generated operation (with the spec's
/// `info.version`). The Protime docs list no such header, so it goes out only when the
/// client is configured to send it, and then with the configured value.
const API_VERSION: &str = "api-version";

/// Removes any `api-version` header from `request`, then sets `value` when there is one.
pub(crate) fn set_api_version(
    request: &mut reqwest::Request,
    value: Option<&reqwest::header::HeaderValue>,
) {
    let headers = request.headers_mut();
    headers.remove(API_VERSION);
    if let Some(value) = value {
        headers.insert(API_VERSION, value.clone());
    }
}

fn authorize(request: &mut reqwest::Request, token: &AccessToken) {
    if let Ok(mut value) =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
    {
        value.set_sensitive(true);
        request
            .headers_mut()
            .insert(reqwest::header::AUTHORIZATION, value);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CallTransport {
    /// A transport for one call, after fetching (or reusing) a token.
    pub(crate) async fn start(
        tokens: &SharedTokens,
        retry: &RetryPolicy,
        api_version: Option<&reqwest::header::HeaderValue>,
    ) -> Result<Self, Error> {
        let token = tokens.token().await?;
        Ok(Self {
            tokens: Arc::clone(tokens),
            retry: retry.clone(),
            token: Mutex::new(token),
            seen: Mutex::new(Seen::default()),
            token_error: Mutex::new(None),
            api_version: api_version.cloned(),
        })
    }

    /// What the transport saw of the last response.
    pub(crate) fn seen(&self) -> Seen {
        lock(&self.seen).clone()
    }

    /// The error of a token refresh that failed after a 401, if any.
    pub(crate) fn take_token_error(&self) -> Option<Error> {
        lock(&self.token_error).take()
    }

    fn observe(&self, result: &reqwest::Result<reqwest::Response>, attempts: u32) {
        let mut seen = lock(&self.seen);
        seen.attempts = attempts;
        match result {
            Ok(response) => {
                seen.status = Some(response.status().as_u16());
                seen.location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                seen.retry_after = parse_retry_after(response.headers().get("retry-after"));
            }
            Err(_) => {
                seen.status = None;
                seen.location = None;
                seen.retry_after = None;
            }
        }
    }

    /// Sends `request`, re-sending it where that is safe: after a 401 once with a refreshed
    /// token; on 429 always (the request was not processed); on 502/503/504 and transport
    /// errors for anything but `POST`, and for `POST` only when the connection could not be
    /// made. Waits `Retry-After` or an exponential backoff with jitter, within the policy's
    /// budget; returns the last response or error. The `api-version` header goes out only
    /// when configured.
    pub(crate) async fn send(
        &self,
        http: &reqwest::Client,
        mut request: reqwest::Request,
        operation: &'static str,
    ) -> reqwest::Result<reqwest::Response> {
        set_api_version(&mut request, self.api_version.as_ref());
        let idempotent = request.method() != reqwest::Method::POST;
        let started = Instant::now();
        let mut attempts = 0_u32;
        let mut refreshed = false;
        loop {
            attempts += 1;
            let token = lock(&self.token).clone();
            let mut attempt = match request.try_clone() {
                Some(attempt) => attempt,
                None => {
                    // Only a streaming body cannot be cloned (the spec has none): such a
                    // request is sent once, as it is.
                    let mut request = request;
                    authorize(&mut request, &token);
                    let result = http.execute(request).await;
                    self.observe(&result, attempts);
                    return result;
                }
            };
            authorize(&mut attempt, &token);
            tracing::debug!(operation, method = %attempt.method(), url = %attempt.url(), attempt = attempts, "protime request");
            let result = http.execute(attempt).await;
            self.observe(&result, attempts);
            let status = result.as_ref().ok().map(|r| r.status().as_u16());
            tracing::debug!(operation, ?status, "protime response");
            let wait = match (&result, status) {
                (Ok(_), Some(401)) if !refreshed => {
                    refreshed = true;
                    match self.tokens.refresh_after_rejection(&token).await {
                        None => return result,
                        Some(Err(error)) => {
                            *lock(&self.token_error) = Some(error);
                            return result;
                        }
                        Some(Ok(fresh)) => {
                            tracing::debug!(operation, "401: token refreshed, trying again");
                            *lock(&self.token) = fresh;
                            attempts -= 1; // a refresh is not a retry
                            continue;
                        }
                    }
                }
                (Ok(response), Some(429)) => {
                    parse_retry_after(response.headers().get("retry-after"))
                }
                (Ok(response), Some(502..=504)) if idempotent => {
                    parse_retry_after(response.headers().get("retry-after"))
                }
                (Err(error), _) if idempotent || error.is_connect() => None,
                _ => return result,
            };
            let wait = wait.unwrap_or_else(|| self.retry.backoff(attempts));
            let out_of_budget = attempts >= self.retry.max_attempts
                || started.elapsed() + wait > self.retry.max_elapsed
                || wait > self.retry.max_retry_after;
            if out_of_budget {
                return result;
            }
            tracing::info!(
                operation,
                attempt = attempts,
                ?status,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying Protime request"
            );
            drop(result);
            tokio::time::sleep(wait).await;
        }
    }
}

impl Transport for CallTransport {
    fn send<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: reqwest::Request,
        operation: &'static str,
    ) -> TransportFuture<'a> {
        Box::pin(CallTransport::send(self, http, request, operation))
    }
}

/// The transport of [`crate::ProtimeClient::raw`]: the same, fetching a token per request
/// (from the cache). A token that cannot be fetched is logged and the request goes out
/// without one, so the caller sees Protime's 401.
#[derive(Debug)]
pub(crate) struct SharedTransport {
    pub(crate) tokens: SharedTokens,
    pub(crate) retry: RetryPolicy,
    pub(crate) api_version: Option<reqwest::header::HeaderValue>,
}

impl Transport for SharedTransport {
    fn send<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: reqwest::Request,
        operation: &'static str,
    ) -> TransportFuture<'a> {
        Box::pin(async move {
            match CallTransport::start(&self.tokens, &self.retry, self.api_version.as_ref()).await {
                Ok(call) => call.send(http, request, operation).await,
                Err(error) => {
                    tracing::warn!(operation, %error, "no token: sending without one");
                    let mut request = request;
                    set_api_version(&mut request, self.api_version.as_ref());
                    http.execute(request).await
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with_progenitor_header() -> reqwest::Request {
        reqwest::Client::new()
            .get("http://127.0.0.1:9/connector/protimeapi/api/v1/clockings/1")
            .header(API_VERSION, "1.0.0")
            .build()
            .unwrap()
    }

    #[test]
    fn api_version_is_removed_unless_configured() {
        let mut request = request_with_progenitor_header();
        set_api_version(&mut request, None);
        assert!(request.headers().get(API_VERSION).is_none());

        let mut request = request_with_progenitor_header();
        let configured = reqwest::header::HeaderValue::from_static("2024-01-01");
        set_api_version(&mut request, Some(&configured));
        let values: Vec<_> = request.headers().get_all(API_VERSION).iter().collect();
        assert_eq!(values, vec![&configured], "one value, the configured one");
    }
}
