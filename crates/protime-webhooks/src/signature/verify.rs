//! The verifier: one scheme, one or more keys, constant-time checks of the raw body.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Which key verified a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerifiedBy {
    /// [`WebhookKey::fingerprint`] of the matching key.
    pub key_fingerprint: String,
}

/// One configured key, with its HMAC state keyed once.
struct KeyEntry {
    key: WebhookKey,
    fingerprint: String,
    mac: HmacSha256,
}

impl KeyEntry {
    fn new(scheme: &SignatureScheme, key: WebhookKey) -> Result<Self, KeyError> {
        let mac = keyed_mac(scheme, &key)?;
        Ok(Self {
            fingerprint: key.fingerprint(),
            key,
            mac,
        })
    }
}

/// An HMAC-SHA256 state keyed with `key` under the scheme's key encoding.
pub(super) fn keyed_mac(
    scheme: &SignatureScheme,
    key: &WebhookKey,
) -> Result<HmacSha256, KeyError> {
    let bytes = key.key_bytes(scheme.key_encoding)?;
    if bytes.0.is_empty() {
        return Err(KeyError::Empty);
    }
    // HMAC accepts keys of any length, so this cannot fail; map it rather than unwrap.
    HmacSha256::new_from_slice(&bytes.0).map_err(|_| KeyError::Empty)
}

/// Feeds the signed content into a keyed MAC: each of `parts` followed by `.` (none, the
/// timestamp, or the id and the timestamp), then the body.
pub(super) fn feed(mut mac: HmacSha256, parts: &[&str], body: &[u8]) -> HmacSha256 {
    for part in parts {
        mac.update(part.as_bytes());
        mac.update(b".");
    }
    mac.update(body);
    mac
}

/// Verifies webhook deliveries against one [`SignatureScheme`] and one or more keys.
///
/// Cloning is cheap and clones share their keys: a key added to (or removed from) one clone is
/// seen by all, so the subscription lifecycle can add a new webhook's key while the old one is
/// still accepted, then remove the old one. The clock (see [`with_clock`](Self::with_clock)) is
/// per clone. `Debug` shows key fingerprints only.
///
/// ```
/// use hmac::{Hmac, Mac};
/// use http::{HeaderMap, HeaderValue};
/// use protime_webhooks::signature::{SignatureScheme, Verifier, WebhookKey};
/// use sha2::Sha256;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let body = br#"{"changeType":"Delete","data":{"changeVersion":"0000090200004BD0000A","id":19250}}"#;
///
/// // What the sender does under the default scheme: hex HMAC-SHA256 of the raw body.
/// let mut mac = Hmac::<Sha256>::new_from_slice(b"key-from-the-201-response")?;
/// mac.update(body);
/// let mut headers = HeaderMap::new();
/// headers.insert(
///     SignatureScheme::DEFAULT_HEADER,
///     HeaderValue::from_str(&hex::encode(mac.finalize().into_bytes()))?,
/// );
///
/// let key = WebhookKey::new("key-from-the-201-response")?;
/// let fingerprint = key.fingerprint();
/// let verifier = Verifier::new(SignatureScheme::default(), [key])?;
/// let verified = verifier.verify(&headers, body)?;
/// assert_eq!(verified.key_fingerprint, fingerprint);
///
/// // One altered byte and the delivery is rejected.
/// assert!(verifier.verify(&headers, &body[1..]).is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Verifier {
    scheme: Arc<SignatureScheme>,
    keys: Arc<RwLock<Vec<KeyEntry>>>,
    clock: Arc<dyn Clock>,
}

impl Verifier {
    /// A verifier for `scheme` accepting any of `keys`, using the [`SystemClock`].
    ///
    /// Fails with [`KeyError::NoKeys`] without keys, [`KeyError::InvalidBase64`] when the
    /// scheme decodes keys from base64 and one is invalid, and [`KeyError::InvalidScheme`] for
    /// a scheme that could never verify (a prefix with `,` or non-visible characters, or a
    /// timestamp header equal to the signature header). A key given twice is kept once.
    pub fn new(
        scheme: SignatureScheme,
        keys: impl IntoIterator<Item = WebhookKey>,
    ) -> Result<Self, KeyError> {
        scheme.check()?;
        let mut entries: Vec<KeyEntry> = Vec::new();
        for key in keys {
            let entry = KeyEntry::new(&scheme, key)?;
            if !entries
                .iter()
                .any(|e| e.key.expose_secret() == entry.key.expose_secret())
            {
                entries.push(entry);
            }
        }
        if entries.is_empty() {
            return Err(KeyError::NoKeys);
        }
        Ok(Self {
            scheme: Arc::new(scheme),
            keys: Arc::new(RwLock::new(entries)),
            clock: Arc::new(SystemClock),
        })
    }

    /// A verifier for `scheme` that accepts nothing until a key is added, e.g. by
    /// [`crate::client::Subscription::reinitialize`] when it creates the first webhook. Fails
    /// only for an invalid scheme ([`KeyError::InvalidScheme`]).
    ///
    /// ```
    /// use protime_webhooks::signature::{SignatureScheme, Verifier, WebhookKey};
    /// let verifier = Verifier::without_keys(SignatureScheme::default()).unwrap();
    /// assert!(verifier.key_fingerprints().is_empty());
    /// verifier.add_key(WebhookKey::new("from the create call").unwrap()).unwrap();
    /// assert_eq!(verifier.key_fingerprints().len(), 1);
    /// ```
    pub fn without_keys(scheme: SignatureScheme) -> Result<Self, KeyError> {
        scheme.check()?;
        Ok(Self {
            scheme: Arc::new(scheme),
            keys: Arc::new(RwLock::new(Vec::new())),
            clock: Arc::new(SystemClock),
        })
    }

    /// Uses `clock` for timestamp tolerance checks (this clone only).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Accepts `key` too, in this verifier and every clone of it. Adding a key that is already
    /// configured does nothing. Fails with [`KeyError::InvalidBase64`] when the scheme decodes
    /// keys from base64 and the key is invalid.
    pub fn add_key(&self, key: WebhookKey) -> Result<(), KeyError> {
        let entry = KeyEntry::new(&self.scheme, key)?;
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if !keys
            .iter()
            .any(|e| e.key.expose_secret() == entry.key.expose_secret())
        {
            tracing::debug!(key_fingerprint = %entry.fingerprint, "webhook signature key added");
            keys.push(entry);
        }
        Ok(())
    }

    /// Stops accepting the key(s) with this [fingerprint](WebhookKey::fingerprint), in this
    /// verifier and every clone of it. Returns whether a key was removed.
    ///
    /// Removing the last key is allowed: the verifier then rejects every delivery with
    /// [`SignatureError::Mismatch`] until a key is added.
    pub fn remove_key(&self, fingerprint: &str) -> bool {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let before = keys.len();
        keys.retain(|e| e.fingerprint != fingerprint);
        let removed = keys.len() != before;
        if removed {
            tracing::debug!(key_fingerprint = %fingerprint, "webhook signature key removed");
        }
        removed
    }

    /// Fingerprints of the accepted keys, in the order they were added.
    pub fn key_fingerprints(&self) -> Vec<String> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|e| e.fingerprint.clone())
            .collect()
    }

    /// The scheme this verifier checks.
    pub fn scheme(&self) -> &SignatureScheme {
        &self.scheme
    }

    /// Verifies a delivery: its headers and its **raw** body bytes, as received.
    ///
    /// Checks, cheapest first, stopping at the first failure: the signature header occurs
    /// exactly once and is visible ASCII; each comma-separated signature carries the prefix,
    /// decodes and is 32 bytes long; for [`SignedContent::TimestampAndBody`], the timestamp
    /// header occurs once, is decimal Unix seconds and is within the tolerance of the clock;
    /// only then the HMAC of every key is computed and compared in constant time with every
    /// signature. Returns the fingerprint of the first key that matches.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<VerifiedBy, SignatureError> {
        let result = self.verify_inner(headers, body);
        match &result {
            Ok(by) => {
                tracing::trace!(key_fingerprint = %by.key_fingerprint, "webhook signature verified");
            }
            Err(SignatureError::Mismatch) => {
                tracing::debug!(
                    header = %self.scheme.header,
                    keys = ?self.key_fingerprints(),
                    "webhook signature rejected: {}",
                    SignatureError::Mismatch
                );
            }
            Err(error) => {
                tracing::debug!(header = %self.scheme.header, "webhook signature rejected: {error}");
            }
        }
        result
    }

    fn verify_inner(&self, headers: &HeaderMap, body: &[u8]) -> Result<VerifiedBy, SignatureError> {
        let scheme = &*self.scheme;
        let signatures = decode_signatures(scheme, headers)?;
        let mut parts = Vec::with_capacity(2);
        if let Some(id_header) = scheme.content.id_header() {
            parts.push(message_id(headers, id_header)?);
        }
        if let Some((timestamp_header, tolerance)) = scheme.content.timestamp() {
            parts.push(check_timestamp(
                headers,
                timestamp_header,
                tolerance,
                self.clock.now_unix_seconds(),
            )?);
        }
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        for entry in keys.iter() {
            let mac = feed(entry.mac.clone(), &parts, body);
            for signature in &signatures {
                // `verify_slice` compares in constant time.
                if mac.clone().verify_slice(signature).is_ok() {
                    return Ok(VerifiedBy {
                        key_fingerprint: entry.fingerprint.clone(),
                    });
                }
            }
        }
        Err(SignatureError::Mismatch)
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme)
            .field("key_fingerprints", &self.key_fingerprints())
            .field("clock", &self.clock)
            .finish()
    }
}

/// The header's value, required to occur exactly once. `Ok(None)` when absent.
fn single_header<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h http::HeaderValue>, ()> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => Ok(Some(value)),
        (Some(_), Some(_)) => Err(()),
    }
}

/// The decoded signatures of the header, each checked for prefix, encoding and length.
fn decode_signatures(
    scheme: &SignatureScheme,
    headers: &HeaderMap,
) -> Result<Vec<Vec<u8>>, SignatureError> {
    let malformed = |reason| SignatureError::MalformedHeader {
        header: scheme.header.as_str().to_owned(),
        reason,
    };
    let value = single_header(headers, &scheme.header)
        .map_err(|()| malformed("the header occurs more than once"))?
        .ok_or_else(|| SignatureError::MissingHeader {
            header: scheme.header.as_str().to_owned(),
        })?;
    let value = value
        .to_str()
        .map_err(|_| malformed("the value is not visible ASCII"))?;

    let mut signatures = Vec::new();
    let separator: &[char] = if scheme.separated_by_spaces() {
        &[' ', '\t']
    } else {
        &[',']
    };
    for part in value.split(separator) {
        let part = part.trim_matches([' ', '\t']);
        if part.is_empty() {
            continue;
        }
        if signatures.len() == MAX_SIGNATURES {
            return Err(malformed("too many signatures"));
        }
        let encoded = match scheme.prefix.as_deref() {
            Some(prefix) => part
                .strip_prefix(prefix)
                .ok_or_else(|| malformed("a signature lacks the expected prefix"))?,
            None => part,
        };
        let decoded = match scheme.encoding {
            SignatureEncoding::Hex => {
                hex::decode(encoded).map_err(|_| malformed("a signature is not valid hex"))?
            }
            SignatureEncoding::Base64 => BASE64_LENIENT
                .decode(encoded)
                .map_err(|_| malformed("a signature is not valid standard base64"))?,
            SignatureEncoding::Base64Url => BASE64_URL_LENIENT
                .decode(encoded)
                .map_err(|_| malformed("a signature is not valid URL-safe base64"))?,
        };
        if decoded.len() != MAC_LEN {
            return Err(SignatureError::WrongLength {
                expected: MAC_LEN,
                found: decoded.len(),
            });
        }
        signatures.push(decoded);
    }
    if signatures.is_empty() {
        return Err(malformed("the header holds no signature"));
    }
    Ok(signatures)
}

/// The timestamp header's value (as sent, for the MAC input) after checking it is decimal Unix
/// seconds within `tolerance` of `now`.
/// The message id of a Standard Webhooks style delivery: one header, visible ASCII.
fn message_id<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<&'h str, SignatureError> {
    let malformed = || SignatureError::MalformedHeader {
        header: name.as_str().to_owned(),
        reason: "the message id must occur once and be visible ASCII",
    };
    let value = single_header(headers, name)
        .map_err(|()| malformed())?
        .ok_or_else(|| SignatureError::MissingHeader {
            header: name.as_str().to_owned(),
        })?;
    let text = value.to_str().map_err(|_| malformed())?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(malformed());
    }
    Ok(text)
}

fn check_timestamp<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    tolerance: Duration,
    now: i64,
) -> Result<&'h str, SignatureError> {
    let malformed = || SignatureError::MalformedTimestamp {
        header: name.as_str().to_owned(),
    };
    let value = single_header(headers, name)
        .map_err(|()| malformed())?
        .ok_or_else(|| SignatureError::MissingTimestamp {
            header: name.as_str().to_owned(),
        })?;
    let text = value.to_str().map_err(|_| malformed())?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let timestamp: i64 = text.parse().map_err(|_| malformed())?;
    let tolerance_seconds = tolerance.as_secs();
    let age = i128::from(now) - i128::from(timestamp);
    let to_u64 = |v: i128| u64::try_from(v).unwrap_or(u64::MAX);
    if age > i128::from(tolerance_seconds) {
        return Err(SignatureError::TooOld {
            age_seconds: to_u64(age),
            tolerance_seconds,
        });
    }
    if -age > i128::from(tolerance_seconds) {
        return Err(SignatureError::TooNew {
            ahead_seconds: to_u64(-age),
            tolerance_seconds,
        });
    }
    Ok(text)
}
