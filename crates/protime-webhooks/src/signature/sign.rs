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
    // A message id derived from the body: the same delivery retried keeps its id.
    let digest: String = hex::encode(Sha256::digest(body)).chars().take(24).collect();
    let id_text = format!("msg_{digest}");
    let mut parts: Vec<&str> = Vec::with_capacity(2);
    if let Some(id_header) = scheme.content.id_header() {
        headers.insert(
            id_header.clone(),
            HeaderValue::from_str(&id_text).map_err(invalid)?,
        );
        parts.push(&id_text);
    }
    if let Some((timestamp_header, _)) = scheme.content.timestamp() {
        headers.insert(
            timestamp_header.clone(),
            HeaderValue::from_str(&timestamp_text).map_err(invalid)?,
        );
        parts.push(&timestamp_text);
    }
    let tag = feed(mac, &parts, body).finalize().into_bytes();
    let encoded = match scheme.encoding {
        SignatureEncoding::Hex => hex::encode(tag),
        SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(tag),
        SignatureEncoding::Base64Url => {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
        }
    };
    let value = format!("{}{encoded}", scheme.prefix.as_deref().unwrap_or(""));
    headers.insert(
        scheme.header.clone(),
        HeaderValue::from_str(&value).map_err(invalid)?,
    );
    Ok(headers)
}
