//! OAuth2 client-credentials tokens: fetched once, shared by concurrent calls (one refresh at
//! a time), reused until shortly before `expires_in` runs out, refreshed once on a 401.

use std::fmt;

use secrecy::{ExposeSecret as _, SecretString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::error::Error;

/// Refresh this long before the token's announced expiry, so that a request never leaves
/// with a token that expires in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

macro_rules! secret {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps the secret.
            ///
            /// ```
            #[doc = concat!("use protime_client::", stringify!($name), ";")]
            #[doc = concat!("let secret = ", stringify!($name), "::new(\"s3cr3t\");")]
            #[doc = concat!("assert_eq!(format!(\"{secret:?}\"), \"", stringify!($name), "(<redacted>)\");")]
            /// assert_eq!(secret.to_string(), "<redacted>");
            /// ```
            pub fn new(secret: impl Into<String>) -> Self {
                Self(SecretString::from(secret.into()))
            }
            /// The secret itself, for sending it or persisting it. Never log it.
            ///
            /// ```
            #[doc = concat!("use protime_client::", stringify!($name), ";")]
            #[doc = concat!("assert_eq!(", stringify!($name), "::new(\"s3cr3t\").expose_secret(), \"s3cr3t\");")]
            /// ```
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        /// Compares the secrets (the token cache uses it to tell a rejected token from a
        /// fresher one).
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.expose_secret() == other.expose_secret()
            }
        }

        impl Eq for $name {}

        impl From<SecretString> for $name {
            fn from(secret: SecretString) -> Self {
                Self(secret)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("<redacted>")
            }
        }
    };
}

secret!(
    /// The OAuth2 client secret Protime issued with the client id. Redacted in `Debug`/`Display`.
    ClientSecret
);
secret!(
    /// A bearer access token. Redacted in `Debug`/`Display`.
    AccessToken
);

/// Client-credentials configuration.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub(crate) client_id: String,
    pub(crate) client_secret: ClientSecret,
    pub(crate) scopes: Vec<String>,
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: AccessToken,
    refresh_at: Instant,
}

/// Where tokens come from.
#[derive(Debug)]
pub(crate) enum TokenSource {
    /// A token given by the caller; never refreshed.
    Static(AccessToken),
    /// The client-credentials grant at the token URL.
    ClientCredentials(TokenCache),
}

#[derive(Debug)]
pub(crate) struct TokenCache {
    http: reqwest::Client,
    token_url: String,
    credentials: Credentials,
    current: RwLock<Option<CachedToken>>,
    refresh: tokio::sync::Mutex<()>,
    requests: AtomicU64,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

#[derive(serde::Deserialize)]
struct OAuthError {
    error: Option<String>,
    error_description: Option<String>,
}

impl TokenSource {
    pub(crate) fn client_credentials(
        http: reqwest::Client,
        token_url: String,
        credentials: Credentials,
    ) -> Self {
        Self::ClientCredentials(TokenCache {
            http,
            token_url,
            credentials,
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            requests: AtomicU64::new(0),
        })
    }

    /// The token to use now, fetching one if there is none or it is about to expire.
    pub(crate) async fn token(&self) -> Result<AccessToken, Error> {
        match self {
            Self::Static(token) => Ok(token.clone()),
            Self::ClientCredentials(cache) => cache.token(None).await,
        }
    }

    /// After a 401 with `rejected`: a fresh token (unless another call already refreshed),
    /// or `None` when the token cannot be refreshed (static tokens).
    pub(crate) async fn refresh_after_rejection(
        &self,
        rejected: &AccessToken,
    ) -> Option<Result<AccessToken, Error>> {
        match self {
            Self::Static(_) => None,
            Self::ClientCredentials(cache) => Some(cache.token(Some(rejected)).await),
        }
    }

    /// How many token requests were sent so far.
    pub(crate) fn token_requests(&self) -> u64 {
        match self {
            Self::Static(_) => 0,
            Self::ClientCredentials(cache) => cache.requests.load(Ordering::Relaxed),
        }
    }
}

impl TokenCache {
    fn read(&self) -> Option<CachedToken> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn usable(&self, rejected: Option<&AccessToken>) -> Option<AccessToken> {
        self.read()
            .filter(|c| Instant::now() < c.refresh_at && Some(&c.token) != rejected)
            .map(|c| c.token)
    }

    async fn token(&self, rejected: Option<&AccessToken>) -> Result<AccessToken, Error> {
        if let Some(token) = self.usable(rejected) {
            return Ok(token);
        }
        // One refresh at a time: the others wait here and then find the new token.
        let _guard = self.refresh.lock().await;
        if let Some(token) = self.usable(rejected) {
            return Ok(token);
        }
        let fetched = self.fetch().await?;
        let token = fetched.token.clone();
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fetched);
        Ok(token)
    }

    async fn fetch(&self) -> Result<CachedToken, Error> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let scope = self.credentials.scopes.join(" ");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.credentials.client_id.as_str()),
            (
                "client_secret",
                self.credentials.client_secret.expose_secret(),
            ),
            ("scope", scope.as_str()),
        ];
        tracing::debug!(token_url = %self.token_url, client_id = %self.credentials.client_id, "requesting an access token");
        let response = self
            .http
            .post(&self.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| Error::Token {
                status: None,
                message: format!("token endpoint unreachable: {e}"),
            })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| Error::Token {
            status: Some(status.as_u16()),
            message: format!("token response unreadable: {e}"),
        })?;
        if !status.is_success() {
            let detail = serde_json::from_slice::<OAuthError>(&bytes)
                .ok()
                .map(|e| {
                    [e.error, e.error_description]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(": ")
                })
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "no OAuth error body".into());
            return Err(Error::Token {
                status: Some(status.as_u16()),
                message: detail,
            });
        }
        let parsed: TokenResponse = serde_json::from_slice(&bytes).map_err(|e| Error::Token {
            status: Some(status.as_u16()),
            message: format!("token response is not the documented JSON: {e}"),
        })?;
        // Protime documents 1800 s; use what the response says, never a constant.
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(1800));
        let refresh_at = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN).max(lifetime / 2);
        tracing::debug!(lifetime_s = lifetime.as_secs(), "access token received");
        Ok(CachedToken {
            token: AccessToken::new(parsed.access_token),
            refresh_at,
        })
    }
}

/// Shared handle, cheap to clone.
pub(crate) type SharedTokens = Arc<TokenSource>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let secret = ClientSecret::new("very-secret-value");
        let token = AccessToken::new("eyJ-token-value");
        for text in [
            format!("{secret:?}"),
            format!("{secret}"),
            format!("{token:?}"),
            format!("{token}"),
        ] {
            assert!(
                !text.contains("very-secret") && !text.contains("eyJ"),
                "{text}"
            );
        }
        assert_eq!(secret.expose_secret(), "very-secret-value");
    }
}
