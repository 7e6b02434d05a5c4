//! Framework-agnostic receipt of one delivery: verify the signature over the raw body, then
//! parse and validate it. Use it from any HTTP stack; the axum receiver is built on it.

use crate::error::ValidationErrors;
use crate::model::ClockingChange;
use crate::signature::{SignatureError, Verifier};

/// Why a delivery was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The signature is missing or wrong: the request may be forged. Answer 401 and keep
    /// the details in your logs (they help an operator, and a forger).
    #[error("signature check failed: {0}")]
    Signature(#[from] SignatureError),
    /// The delivery is authentic but breaks the validation rules. Store it as a dead letter
    /// and acknowledge it, or Protime retries it until the webhook is disabled.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
}

impl Verifier {
    /// Verifies the signature of `body` (the raw bytes, exactly as received), then parses and
    /// validates it with [`crate::parse_delivery`]. The signature is checked first, so an
    /// unauthenticated body is never parsed.
    ///
    /// ```
    /// use hmac::{Hmac, Mac};
    /// use protime_webhooks::receive::ReceiveError;
    /// use protime_webhooks::signature::{SignatureScheme, Verifier, WebhookKey};
    ///
    /// let key = WebhookKey::new("the key from the create call").unwrap();
    /// let verifier = Verifier::new(SignatureScheme::default(), [key]).unwrap();
    /// let body = br#"{"changeType":"Delete","data":{"changeVersion":"0000090200004BD0000C","id":1001}}"#;
    ///
    /// let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"the key from the create call").unwrap();
    /// mac.update(body);
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-protime-signature", hex::encode(mac.finalize().into_bytes()).parse().unwrap());
    ///
    /// let change = verifier.verify_and_parse(&headers, body).unwrap();
    /// assert_eq!(change.id().get(), 1001);
    ///
    /// let forged = verifier.verify_and_parse(&http::HeaderMap::new(), body);
    /// assert!(matches!(forged, Err(ReceiveError::Signature(_))));
    /// ```
    pub fn verify_and_parse(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<ClockingChange, ReceiveError> {
        self.verify(headers, body)?;
        Ok(crate::parse_delivery(body)?)
    }
}
