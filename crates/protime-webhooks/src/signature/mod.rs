//! HMAC signature verification of webhook deliveries.
//!
//! Protime signs each delivery with an HMAC keyed by the *private webhook key* returned once by
//! the webhook's create call (`201`). The public docs name the topic ("HMAC signature format")
//! but not its content: the header name, the value's encoding and prefix, the signed content,
//! the hash algorithm, how the key becomes bytes and any replay window are all unknown (see
//! assumption 37 in `docs/assumptions.md`). Everything unknown is therefore a field of
//! [`SignatureScheme`], with a documented default:
//!
//! | part | default | alternatives |
//! |---|---|---|
//! | header | `x-protime-signature` ([`SignatureScheme::DEFAULT_HEADER`]) | any header name |
//! | value encoding | lower-case hex (upper case accepted on input) | standard or URL-safe base64, padded or not |
//! | prefix | none | e.g. `sha256=`, `v1,` (then several signatures are separated by spaces) |
//! | key bytes | the key's UTF-8 bytes | the key decoded from standard base64, or from hex |
//! | signed content | the raw body bytes | `"{timestamp}.{body}"` with a timestamp header and a tolerance; `"{id}.{timestamp}.{body}"` (Standard Webhooks) |
//! | algorithm | HMAC-SHA256 (fixed) | — |
//!
//! Confirm these settings against a real sandbox delivery before relying on them.
//!
//! A [`Verifier`] holds one scheme and one or more keys (several during a key rotation) and
//! checks a delivery's headers and **raw** body bytes — verify before parsing, and never
//! re-serialize the body first. Comparisons are constant-time; failures are logged through
//! `tracing` at debug level with key fingerprints at most, never a key or a MAC.

mod clock;
mod error;
mod key;
mod scheme;
mod sign;
#[cfg(test)]
mod tests;
mod verify;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::SignatureError;
pub use key::{KeyError, WebhookKey};
pub use scheme::{KeyEncoding, SignatureEncoding, SignatureScheme, SignedContent};
pub use sign::sign;
pub use verify::{VerifiedBy, Verifier};

#[cfg(test)]
use sign::signature_headers;
use verify::{feed, keyed_mac};

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Length in bytes of an HMAC-SHA256 tag.
const MAC_LEN: usize = 32;

/// Most signatures accepted in one header value; more is treated as malformed, which bounds the
/// work an unauthenticated request can cause.
const MAX_SIGNATURES: usize = 16;

/// URL-safe base64 alphabet; decoding accepts the value with or without `=` padding.
const BASE64_URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 alphabet; decoding accepts the value with or without `=` padding.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
