//! Why a signature or a key was refused; never carries a key or a MAC.

/// Why a delivery's signature was rejected. Messages are meant for operators' logs; they
/// never contain a key or an expected MAC.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The signature header is absent.
    #[error("signature header `{header}` is missing")]
    MissingHeader {
        /// Name of the expected header.
        header: String,
    },
    /// The signature header is present but unusable (repeated, not visible ASCII, missing the
    /// prefix, not decodable, too many signatures, …).
    #[error("signature header `{header}` is malformed: {reason}")]
    MalformedHeader {
        /// Name of the header.
        header: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A signature decodes to the wrong number of bytes (checked before any MAC is computed).
    #[error("signature is {found} bytes long, expected {expected} (HMAC-SHA256)")]
    WrongLength {
        /// Bytes an HMAC-SHA256 tag has: 32.
        expected: usize,
        /// Bytes the signature decoded to.
        found: usize,
    },
    /// The scheme signs a timestamp and its header is absent.
    #[error("timestamp header `{header}` is missing")]
    MissingTimestamp {
        /// Name of the expected header.
        header: String,
    },
    /// The timestamp header is repeated or not decimal Unix seconds.
    #[error("timestamp header `{header}` is not a single decimal Unix timestamp in seconds")]
    MalformedTimestamp {
        /// Name of the header.
        header: String,
    },
    /// The timestamp is further in the past than the tolerance (a replay, or clock skew).
    #[error(
        "delivery timestamp is {age_seconds} s old, beyond the {tolerance_seconds} s tolerance \
         (replayed delivery or clock skew)"
    )]
    TooOld {
        /// How far in the past the timestamp is.
        age_seconds: u64,
        /// The scheme's tolerance.
        tolerance_seconds: u64,
    },
    /// The timestamp is further in the future than the tolerance (clock skew).
    #[error(
        "delivery timestamp is {ahead_seconds} s in the future, beyond the {tolerance_seconds} s \
         tolerance (clock skew)"
    )]
    TooNew {
        /// How far in the future the timestamp is.
        ahead_seconds: u64,
        /// The scheme's tolerance.
        tolerance_seconds: u64,
    },
    /// No signature matches any configured key: a forged or altered delivery, a wrong key, or
    /// a scheme that differs from the sender's.
    #[error("signature does not match any configured webhook key")]
    Mismatch,
}
