//! The signature scheme as the command line and the configuration file give it: the same
//! settings for `protime receive`, `protime serve` (flags, or a subscription's `signature`
//! table), `protime sandbox` (what it signs with) — and what `protime doctor signature`
//! prints when it finds the scheme of captured deliveries.

use std::time::Duration;

use anyhow::Context as _;
use axum::http::HeaderName;
use protime_webhooks::signature::{KeyEncoding, SignatureEncoding, SignatureScheme, SignedContent};

/// Signature encodings selectable on the command line and in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Encoding {
    /// Hexadecimal.
    #[default]
    Hex,
    /// Standard base64.
    Base64,
    /// URL-safe base64.
    Base64url,
}

/// Key encodings selectable on the command line and in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KeyBytes {
    /// The key's UTF-8 bytes, as given.
    #[default]
    Utf8,
    /// The key decoded from base64.
    Base64,
    /// The key decoded from hexadecimal.
    Hex,
}

/// The signature scheme's flags (Protime does not document its scheme: see
/// `docs/assumptions.md`, row 37, and `protime doctor signature`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SignatureFlags {
    /// Header carrying the signature.
    #[arg(long, default_value = "x-protime-signature", value_name = "HEADER")]
    signature_header: String,
    /// Encoding of the signature.
    #[arg(long, value_enum, default_value_t = Encoding::Hex)]
    signature_encoding: Encoding,
    /// Text every signature starts with, e.g. `sha256=` or `v1,` (with a `,` in it, several
    /// signatures are separated by spaces).
    #[arg(long, value_name = "TEXT")]
    signature_prefix: Option<String>,
    /// How the webhook key becomes the HMAC key.
    #[arg(long, value_enum, default_value_t = KeyBytes::Utf8)]
    key_encoding: KeyBytes,
    /// Header of a timestamp that is signed too (`{timestamp}.{body}`).
    #[arg(long, value_name = "HEADER")]
    timestamp_header: Option<String>,
    /// Header of a message id that is signed too (`{id}.{timestamp}.{body}`, Standard
    /// Webhooks); needs --timestamp-header.
    #[arg(long, value_name = "HEADER", requires = "timestamp_header")]
    id_header: Option<String>,
    /// Largest accepted distance between a signed timestamp and this machine's clock.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    timestamp_tolerance_seconds: u64,
}

impl SignatureFlags {
    /// The scheme these flags describe.
    pub(crate) fn scheme(&self) -> anyhow::Result<SignatureScheme> {
        SignatureSettings {
            header: Some(self.signature_header.clone()),
            encoding: Some(self.signature_encoding),
            prefix: self.signature_prefix.clone(),
            key_encoding: Some(self.key_encoding),
            timestamp_header: self.timestamp_header.clone(),
            id_header: self.id_header.clone(),
            tolerance_seconds: Some(self.timestamp_tolerance_seconds),
        }
        .scheme()
    }
}

/// A subscription's `signature` table in the configuration file (every field optional;
/// missing ones take the defaults of the flags).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignatureSettings {
    pub(crate) header: Option<String>,
    pub(crate) encoding: Option<Encoding>,
    pub(crate) prefix: Option<String>,
    pub(crate) key_encoding: Option<KeyBytes>,
    pub(crate) timestamp_header: Option<String>,
    pub(crate) id_header: Option<String>,
    pub(crate) tolerance_seconds: Option<u64>,
}

fn header_name(text: &str, what: &str) -> anyhow::Result<HeaderName> {
    text.parse()
        .with_context(|| format!("{what} {text:?} is not a valid header name"))
}

impl SignatureSettings {
    /// The scheme these settings describe; refused when it could never verify anything.
    pub(crate) fn scheme(&self) -> anyhow::Result<SignatureScheme> {
        let mut scheme = SignatureScheme::default();
        if let Some(header) = &self.header {
            scheme = scheme.with_header(header_name(header, "the signature header")?);
        }
        scheme = scheme.with_encoding(match self.encoding.unwrap_or_default() {
            Encoding::Hex => SignatureEncoding::Hex,
            Encoding::Base64 => SignatureEncoding::Base64,
            Encoding::Base64url => SignatureEncoding::Base64Url,
        });
        if let Some(prefix) = &self.prefix {
            scheme = scheme.with_prefix(prefix.clone());
        }
        scheme = scheme.with_key_encoding(match self.key_encoding.unwrap_or_default() {
            KeyBytes::Utf8 => KeyEncoding::Utf8,
            KeyBytes::Base64 => KeyEncoding::Base64,
            KeyBytes::Hex => KeyEncoding::Hex,
        });
        let tolerance = Duration::from_secs(self.tolerance_seconds.unwrap_or(300));
        scheme = match (&self.timestamp_header, &self.id_header) {
            (None, None) => scheme,
            (Some(timestamp), None) => {
                scheme.with_timestamp(header_name(timestamp, "the timestamp header")?, tolerance)
            }
            (Some(timestamp), Some(id)) => scheme.with_content(SignedContent::IdTimestampAndBody {
                id_header: header_name(id, "the id header")?,
                timestamp_header: header_name(timestamp, "the timestamp header")?,
                tolerance,
            }),
            (None, Some(_)) => anyhow::bail!("an id header needs a timestamp header"),
        };
        // A scheme that cannot sign cannot verify either: say so now.
        let probe = protime_webhooks::WebhookKey::new("00112233445566778899aabbccddeeff")?;
        protime_webhooks::signature::sign(&scheme, &probe, b"{}", Some(0))
            .map_err(|error| anyhow::anyhow!("the signature settings cannot work: {error}"))?;
        Ok(scheme)
    }
}

/// The name of a signature encoding on the command line and in the configuration.
fn encoding_name(encoding: SignatureEncoding) -> &'static str {
    match encoding {
        SignatureEncoding::Hex => "hex",
        SignatureEncoding::Base64 => "base64",
        SignatureEncoding::Base64Url => "base64url",
    }
}

/// The name of a key encoding on the command line and in the configuration.
fn key_encoding_name(encoding: KeyEncoding) -> &'static str {
    match encoding {
        KeyEncoding::Utf8 => "utf8",
        KeyEncoding::Base64 => "base64",
        KeyEncoding::Hex => "hex",
    }
}

/// `scheme` as the flags that select it (only those that differ from the defaults).
pub(crate) fn as_flags(scheme: &SignatureScheme) -> String {
    let mut flags = Vec::new();
    if scheme.header != SignatureScheme::DEFAULT_HEADER {
        flags.push(format!("--signature-header {}", scheme.header));
    }
    if scheme.encoding != SignatureEncoding::Hex {
        flags.push(format!(
            "--signature-encoding {}",
            encoding_name(scheme.encoding)
        ));
    }
    if let Some(prefix) = &scheme.prefix {
        flags.push(format!("--signature-prefix '{prefix}'"));
    }
    if scheme.key_encoding != KeyEncoding::Utf8 {
        flags.push(format!(
            "--key-encoding {}",
            key_encoding_name(scheme.key_encoding)
        ));
    }
    match &scheme.content {
        SignedContent::Body => {}
        SignedContent::TimestampAndBody {
            timestamp_header, ..
        } => flags.push(format!("--timestamp-header {timestamp_header}")),
        SignedContent::IdTimestampAndBody {
            id_header,
            timestamp_header,
            ..
        } => flags.push(format!(
            "--timestamp-header {timestamp_header} --id-header {id_header}"
        )),
    }
    if flags.is_empty() {
        "(the defaults: no flag needed)".into()
    } else {
        flags.join(" ")
    }
}

/// `scheme` as a subscription's `signature` table in the configuration file.
pub(crate) fn as_toml(scheme: &SignatureScheme) -> String {
    let mut lines = vec![
        "[subscription.signature]".to_owned(),
        format!("header = \"{}\"", scheme.header),
    ];
    lines.push(format!("encoding = \"{}\"", encoding_name(scheme.encoding)));
    if let Some(prefix) = &scheme.prefix {
        lines.push(format!("prefix = \"{prefix}\""));
    }
    lines.push(format!(
        "key_encoding = \"{}\"",
        key_encoding_name(scheme.key_encoding)
    ));
    match &scheme.content {
        SignedContent::Body => {}
        SignedContent::TimestampAndBody {
            timestamp_header, ..
        } => lines.push(format!("timestamp_header = \"{timestamp_header}\"")),
        SignedContent::IdTimestampAndBody {
            id_header,
            timestamp_header,
            ..
        } => {
            lines.push(format!("timestamp_header = \"{timestamp_header}\""));
            lines.push(format!("id_header = \"{id_header}\""));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_the_printed_toml() {
        let settings = SignatureSettings {
            header: Some("webhook-signature".into()),
            encoding: Some(Encoding::Base64),
            prefix: Some("v1,".into()),
            key_encoding: Some(KeyBytes::Base64),
            timestamp_header: Some("webhook-timestamp".into()),
            id_header: Some("webhook-id".into()),
            tolerance_seconds: Some(300),
        };
        let scheme = settings.scheme().unwrap();
        let toml_text = as_toml(&scheme);
        let table: toml::Table = toml::from_str(&toml_text).unwrap();
        let parsed: SignatureSettings = table["subscription"]["signature"]
            .clone()
            .try_into()
            .unwrap();
        assert_eq!(parsed.scheme().unwrap(), scheme);
        assert!(as_flags(&scheme).contains("--id-header webhook-id"));
        assert_eq!(
            as_flags(&SignatureScheme::default()),
            "(the defaults: no flag needed)"
        );
        assert!(
            SignatureSettings {
                id_header: Some("x".into()),
                ..SignatureSettings::default()
            }
            .scheme()
            .is_err()
        );
    }
}
