//! Signing: what a sender does (tests, the local sandbox, relays that re-sign).

#[allow(clippy::wildcard_imports)]
use super::*;

/// The headers a sender sets for `body` under `scheme`: the signature header and, for
/// [`SignedContent::TimestampAndBody`], the timestamp header with `timestamp` (the current
/// time of the [`SystemClock`] when `None`). `timestamp` is ignored for
/// [`SignedContent::Body`]. Signatures are lower-case hex or padded standard base64, after the
/// scheme's prefix.
///
/// Fails like [`Verifier::new`] on an invalid base64 key or an invalid scheme.
pub fn sign(
    scheme: &SignatureScheme,
    key: &WebhookKey,
    body: &[u8],
    timestamp: Option<i64>,
) -> Result<HeaderMap, KeyError> {
    let timestamp = timestamp.unwrap_or_else(|| SystemClock.now_unix_seconds());
    signature_headers(scheme, key, body, timestamp)
}

/// [`sign`] with an explicit timestamp.
pub(super) fn signature_headers(
    scheme: &SignatureScheme,
    key: &WebhookKey,
    body: &[u8],
    timestamp: i64,
) -> Result<HeaderMap, KeyError> {
    use http::HeaderValue;

    scheme.check()?;
    // Unreachable after `check()` (digits, hex, base64 and a visible-ASCII prefix), but
    // handled without a panic.
    let invalid = |_| KeyError::InvalidScheme {
        reason: "a signed header value would not be a valid header value",
    };
    let mac = keyed_mac(scheme, key)?;
    let mut headers = HeaderMap::new();
    let timestamp_text = timestamp.to_string();
    let signed_timestamp = match &scheme.content {
        SignedContent::Body => None,
        SignedContent::TimestampAndBody {
            timestamp_header, ..
        } => {
            let value = HeaderValue::from_str(&timestamp_text).map_err(invalid)?;
            headers.insert(timestamp_header.clone(), value);
            Some(timestamp_text.as_str())
        }
    };
    let tag = feed(mac, signed_timestamp, body).finalize().into_bytes();
    let encoded = match scheme.encoding {
        SignatureEncoding::Hex => hex::encode(tag),
        SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(tag),
    };
    let value = format!("{}{encoded}", scheme.prefix.as_deref().unwrap_or(""));
    headers.insert(
        scheme.header.clone(),
        HeaderValue::from_str(&value).map_err(invalid)?,
    );
    Ok(headers)
}
