//! Webhook keys: one secret type, used exactly as given, wiped when dropped.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The private webhook key Protime returns once when a webhook is created.
///
/// It is a secret: `Debug` prints `WebhookKey(<redacted>)`, `Display` prints `<redacted>`, it
/// has no `Serialize`, and its bytes are overwritten with zeros when it is dropped (best
/// effort: copies made before it was wrapped, e.g. by a JSON parser, are not reached). Use
/// [`expose_secret`](Self::expose_secret) only to persist it, and
/// [`fingerprint`](Self::fingerprint) to name it in logs.
///
/// The key is kept exactly as given (no trimming); how it becomes HMAC key bytes is the
/// scheme's [`KeyEncoding`].
#[derive(Clone)]
pub struct WebhookKey {
    secret: SecretString,
}

impl WebhookKey {
    /// Wraps a key. Fails with [`KeyError::Empty`] on an empty string.
    ///
    /// A key meant for [`KeyEncoding::Base64`] is decoded when a [`Verifier`] is built (or a
    /// key is added to one), where an invalid value fails with [`KeyError::InvalidBase64`].
    pub fn new(secret: impl Into<String>) -> Result<Self, KeyError> {
        Self::from_secret(SecretString::from(secret.into()))
    }

    /// Wraps a key already held as a [`SecretString`] (for example
    /// `protime_client::CreatedWebhook::key`), exactly as given. Fails with
    /// [`KeyError::Empty`] on an empty string.
    ///
    /// ```
    /// use protime_webhooks::signature::{KeyError, WebhookKey};
    /// let key = WebhookKey::from_secret(secrecy::SecretString::from(" k,ey ")).unwrap();
    /// assert_eq!(key.expose_secret(), " k,ey "); // no trimming, no splitting
    /// assert_eq!(WebhookKey::from_secret("".into()).unwrap_err(), KeyError::Empty);
    /// ```
    pub fn from_secret(secret: SecretString) -> Result<Self, KeyError> {
        if secret.expose_secret().is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self { secret })
    }

    /// The key itself, for persisting it. Never log it.
    pub fn expose_secret(&self) -> &str {
        self.secret.expose_secret()
    }

    /// A short, non-secret name for the key: the first 8 hex characters of the SHA-256 of the
    /// key string. Safe to log; lets operators tell keys apart during a rotation.
    ///
    /// It reveals 32 bits of a hash of the key, which is harmless for a random key of
    /// reasonable length, and it may (rarely) collide between two keys.
    pub fn fingerprint(&self) -> String {
        let digest: [u8; 32] = Sha256::digest(self.secret.expose_secret().as_bytes()).into();
        let [a, b, c, d, ..] = digest;
        hex::encode([a, b, c, d])
    }

    /// The HMAC key bytes under `encoding`.
    pub(super) fn key_bytes(&self, encoding: KeyEncoding) -> Result<SecretBytes, KeyError> {
        match encoding {
            KeyEncoding::Utf8 => Ok(SecretBytes(self.secret.expose_secret().as_bytes().to_vec())),
            KeyEncoding::Base64 => BASE64_LENIENT
                .decode(self.secret.expose_secret().as_bytes())
                .map(SecretBytes)
                .map_err(|_| KeyError::InvalidBase64),
            KeyEncoding::Hex => hex::decode(self.secret.expose_secret().as_bytes())
                .map(SecretBytes)
                .map_err(|_| KeyError::InvalidHex),
        }
    }
}

impl fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookKey(<redacted>)")
    }
}

impl fmt::Display for WebhookKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Key bytes that are overwritten with zeros when dropped.
pub(super) struct SecretBytes(pub(super) Vec<u8>);

impl Drop for SecretBytes {
    fn drop(&mut self) {
        wipe(std::mem::take(&mut self.0));
    }
}

/// Overwrites a buffer, spare capacity included, with zeros before freeing it.
fn wipe(mut bytes: Vec<u8>) {
    bytes.fill(0);
    let capacity = bytes.capacity();
    bytes.resize(capacity, 0);
    // Keeps the writes from being optimized away as dead stores.
    std::hint::black_box(&bytes);
}

/// Why a key (or the scheme it is used with) cannot be used. Never contains the key.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The key is an empty string.
    #[error("webhook key is empty")]
    Empty,
    /// The scheme decodes keys from base64 ([`KeyEncoding::Base64`]) and this key is not valid
    /// standard base64.
    #[error(
        "webhook key is not valid standard base64, as the signature scheme's key encoding requires"
    )]
    InvalidBase64,
    /// The scheme decodes keys from hexadecimal ([`KeyEncoding::Hex`]) and this key is not
    /// valid hexadecimal.
    #[error(
        "webhook key is not valid hexadecimal, as the signature scheme's key encoding requires"
    )]
    InvalidHex,
    /// A [`Verifier`] was built without any key.
    #[error("a signature verifier needs at least one webhook key")]
    NoKeys,
    /// The [`SignatureScheme`] cannot work: see the reason.
    #[error("signature scheme is invalid: {reason}")]
    InvalidScheme {
        /// What is wrong with the scheme.
        reason: &'static str,
    },
}
