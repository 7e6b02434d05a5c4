//! The signature scheme: every unknown of Protime's signing as a setting with a default.

#[allow(clippy::wildcard_imports)]
use super::*;

/// How the MAC is written in the signature header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SignatureEncoding {
    /// Hexadecimal. Lower case when signing; upper or lower case accepted when verifying.
    #[default]
    Hex,
    /// Standard base64 alphabet (`+`, `/`). Padded when signing; padding optional when
    /// verifying.
    Base64,
    /// URL-safe base64 alphabet (`-`, `_`). Unpadded when signing; padding optional when
    /// verifying.
    Base64Url,
}

/// How the webhook key string becomes the HMAC key bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum KeyEncoding {
    /// The key string's UTF-8 bytes, as they are.
    #[default]
    Utf8,
    /// The key string decoded from standard base64 (padding optional).
    Base64,
    /// The key string decoded from hexadecimal (either case).
    Hex,
}

/// What the HMAC is computed over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum SignedContent {
    /// The raw body bytes, exactly as received.
    #[default]
    Body,
    /// `"{timestamp}.{body}"` (Stripe style), where `timestamp` is the value of
    /// `timestamp_header` exactly as sent: decimal Unix seconds, digits only. A delivery whose
    /// timestamp is more than `tolerance` away from the verifier's clock (in either direction)
    /// is rejected, which limits replays. Sub-second parts of `tolerance` are ignored.
    TimestampAndBody {
        /// Header carrying the timestamp (must differ from the signature header).
        timestamp_header: HeaderName,
        /// Largest accepted difference between the timestamp and the verifier's clock.
        tolerance: Duration,
    },
    /// `"{id}.{timestamp}.{body}"` (Standard Webhooks style), where `id` is the value of
    /// `id_header` (visible ASCII, as sent) and `timestamp` that of `timestamp_header`, with
    /// the same tolerance as [`Self::TimestampAndBody`].
    IdTimestampAndBody {
        /// Header carrying the message id.
        id_header: HeaderName,
        /// Header carrying the timestamp.
        timestamp_header: HeaderName,
        /// Largest accepted difference between the timestamp and the verifier's clock.
        tolerance: Duration,
    },
}

impl SignedContent {
    /// The timestamp header and tolerance, when the content signs a timestamp.
    pub(super) fn timestamp(&self) -> Option<(&HeaderName, Duration)> {
        match self {
            Self::Body => None,
            Self::TimestampAndBody {
                timestamp_header,
                tolerance,
            }
            | Self::IdTimestampAndBody {
                timestamp_header,
                tolerance,
                ..
            } => Some((timestamp_header, *tolerance)),
        }
    }

    /// The id header, when the content signs a message id.
    pub(super) fn id_header(&self) -> Option<&HeaderName> {
        match self {
            Self::IdTimestampAndBody { id_header, .. } => Some(id_header),
            _ => None,
        }
    }
}

/// Everything Protime does not document about its signatures, as configuration.
///
/// The default is HMAC-SHA256 over the raw body, lower-case hex without prefix in the
/// `x-protime-signature` header, keyed with the key's UTF-8 bytes.
///
/// The header may carry several signatures separated by `,` (a sender rotating its keys sends
/// one per key) — or by spaces when the prefix itself contains a `,` (Standard Webhooks:
/// `v1,aa… v1,bb…`); whitespace around each is ignored and a delivery is accepted when
/// **any** of them matches **any** of the verifier's keys. With a [`prefix`](Self::prefix),
/// every one of them must start with it (`sha256=aa…,sha256=bb…`). Every signature must be well-formed
/// (decodable, 32 bytes): one malformed signature rejects the whole header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignatureScheme {
    /// Header carrying the signature(s). It must occur exactly once.
    pub header: HeaderName,
    /// Encoding of each signature.
    pub encoding: SignatureEncoding,
    /// Text each signature starts with, compared case-sensitively (e.g. `sha256=`, `v1,`). It
    /// must be visible ASCII (no spaces); with a `,` in it, signatures are separated by spaces.
    pub prefix: Option<String>,
    /// How the key string becomes HMAC key bytes.
    pub key_encoding: KeyEncoding,
    /// What the HMAC is computed over.
    pub content: SignedContent,
}

impl SignatureScheme {
    /// Default signature header: `x-protime-signature` (an assumption; not documented).
    pub const DEFAULT_HEADER: HeaderName = HeaderName::from_static("x-protime-signature");
    /// Suggested timestamp header for [`SignedContent::TimestampAndBody`]:
    /// `x-protime-timestamp` (an assumption; not documented).
    pub const DEFAULT_TIMESTAMP_HEADER: HeaderName = HeaderName::from_static("x-protime-timestamp");
    /// Suggested tolerance for [`SignedContent::TimestampAndBody`]: 5 minutes.
    pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

    /// Replaces the signature header.
    #[must_use]
    pub fn with_header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }

    /// Replaces the signature encoding.
    #[must_use]
    pub fn with_encoding(mut self, encoding: SignatureEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Requires every signature to start with `prefix` (e.g. `sha256=`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Signatures carry no prefix.
    #[must_use]
    pub fn without_prefix(mut self) -> Self {
        self.prefix = None;
        self
    }

    /// Replaces the key encoding.
    #[must_use]
    pub fn with_key_encoding(mut self, key_encoding: KeyEncoding) -> Self {
        self.key_encoding = key_encoding;
        self
    }

    /// Replaces the signed content.
    #[must_use]
    pub fn with_content(mut self, content: SignedContent) -> Self {
        self.content = content;
        self
    }

    /// Signs `"{timestamp}.{body}"` with the timestamp in `timestamp_header`, accepted within
    /// `tolerance` of the verifier's clock.
    #[must_use]
    pub fn with_timestamp(mut self, timestamp_header: HeaderName, tolerance: Duration) -> Self {
        self.content = SignedContent::TimestampAndBody {
            timestamp_header,
            tolerance,
        };
        self
    }

    /// Rejects a scheme that could never verify anything.
    pub(super) fn check(&self) -> Result<(), KeyError> {
        if let Some(prefix) = &self.prefix {
            let visible = prefix.bytes().all(|b| b.is_ascii_graphic());
            if !visible || prefix.is_empty() {
                return Err(KeyError::InvalidScheme {
                    reason: "the prefix must be visible ASCII without spaces",
                });
            }
        }
        if let Some((timestamp_header, _)) = self.content.timestamp()
            && *timestamp_header == self.header
        {
            return Err(KeyError::InvalidScheme {
                reason: "the timestamp header must differ from the signature header",
            });
        }
        if let Some(id_header) = self.content.id_header()
            && (*id_header == self.header
                || self
                    .content
                    .timestamp()
                    .is_some_and(|(t, _)| t == id_header))
        {
            return Err(KeyError::InvalidScheme {
                reason: "the id header must differ from the signature and timestamp headers",
            });
        }
        Ok(())
    }

    /// Whether several signatures in the header are separated by spaces (a prefix with a
    /// `,`) rather than by commas.
    pub(super) fn separated_by_spaces(&self) -> bool {
        self.prefix.as_deref().is_some_and(|p| p.contains(','))
    }
}

impl Default for SignatureScheme {
    fn default() -> Self {
        Self {
            header: Self::DEFAULT_HEADER,
            encoding: SignatureEncoding::Hex,
            prefix: None,
            key_encoding: KeyEncoding::Utf8,
            content: SignedContent::Body,
        }
    }
}
