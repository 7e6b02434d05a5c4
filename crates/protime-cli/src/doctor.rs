//! `protime doctor signature`: finds the signature scheme of captured deliveries by trying
//! the plausible ones with the webhook key(s) — every header that could carry a signature;
//! hex, base64 and URL-safe base64; with or without a prefix such as `sha256=` or `v1,`; the
//! body alone, a timestamp and the body, an id, a timestamp and the body (Standard
//! Webhooks); the key as given, base64-decoded or hex-decoded — and prints the settings that
//! verify them, as flags and as configuration. It also recognises an HMAC over the URL and
//! the body, which protime cannot verify yet.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use axum::http::{HeaderMap, HeaderName};
use protime_webhooks::signature::{
    FixedClock, KeyEncoding, SignatureEncoding, SignatureScheme, SignedContent, Verifier,
    WebhookKey,
};

use crate::Outcome;
use crate::capture::CapturedRequest;
use crate::signature_settings::{as_flags, as_toml};

/// `protime doctor …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum DoctorCommand {
    /// Find the signature scheme of deliveries captured with `--capture DIR`.
    Signature(SignatureArgs),
}

/// Arguments of `protime doctor signature`.
#[derive(Debug, clap::Args)]
pub(crate) struct SignatureArgs {
    /// File of webhook keys, one per line (as `protime webhooks create --key-file` writes).
    #[arg(long, value_name = "FILE", required_unless_present = "keys")]
    key_file: Option<PathBuf>,
    /// A webhook key, exactly as given (repeatable). Prefer --key-file.
    #[arg(long = "key", hide_env_values = true)]
    keys: Vec<String>,
    /// Captured requests (files written by `protime receive --capture DIR`).
    #[arg(required = true, value_name = "CAPTURE")]
    captures: Vec<PathBuf>,
}

/// Headers that never carry a webhook signature.
const NOT_SIGNATURES: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "user-agent",
    "accept",
    "accept-encoding",
    "connection",
    "traceparent",
    "tracestate",
    "forwarded",
    "via",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
    "expect",
];

/// What one capture matched.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Finding {
    /// A scheme protime can verify.
    Scheme(SignatureScheme),
    /// An HMAC-SHA256 over the URL and the body, in the given header.
    UrlAndBody { header: String, url: String },
}

/// The prefixes worth trying on a header value: none, and the leading `word=`, `word,` or
/// `word:` of its first signature.
fn prefixes(value: &str) -> Vec<Option<String>> {
    let mut found = vec![None];
    let first = value.trim().split([' ', '\t']).next().unwrap_or_default();
    if let Some(at) = first.find(['=', ',', ':'])
        && at > 0
        && at <= 16
        && first.get(..at).is_some_and(|word| {
            word.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    {
        found.push(first.get(..=at).map(str::to_owned));
    }
    found
}

/// The headers of `headers` that could be a timestamp (decimal Unix seconds) or a message
/// id (other short visible ASCII), apart from `signature`.
fn timestamp_and_id_candidates(
    headers: &HeaderMap,
    signature: &HeaderName,
) -> (Vec<(HeaderName, i64)>, Vec<HeaderName>) {
    let mut timestamps = Vec::new();
    let mut ids = Vec::new();
    for (name, value) in headers {
        if name == signature || NOT_SIGNATURES.contains(&name.as_str()) {
            continue;
        }
        let Ok(text) = value.to_str() else { continue };
        if (9..=11).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(seconds) = text.parse() {
                timestamps.push((name.clone(), seconds));
            }
        } else if !text.is_empty()
            && text.len() <= 128
            && text.bytes().all(|b| b.is_ascii_graphic())
        {
            ids.push(name.clone());
        }
    }
    (timestamps, ids)
}

/// Every scheme worth trying on `headers`, each with the clock to verify it at (the signed
/// timestamp itself, so that the tolerance never hides a match).
fn candidate_schemes(headers: &HeaderMap) -> Vec<(SignatureScheme, i64)> {
    let now = chrono::Utc::now().timestamp();
    let tolerance = Duration::from_secs(300);
    let mut schemes = Vec::new();
    for (name, value) in headers {
        if NOT_SIGNATURES.contains(&name.as_str()) {
            continue;
        }
        let Ok(text) = value.to_str() else { continue };
        let (timestamps, ids) = timestamp_and_id_candidates(headers, name);
        let mut contents = vec![(SignedContent::Body, now)];
        for (timestamp_header, at) in &timestamps {
            contents.push((
                SignedContent::TimestampAndBody {
                    timestamp_header: timestamp_header.clone(),
                    tolerance,
                },
                *at,
            ));
            for id_header in &ids {
                contents.push((
                    SignedContent::IdTimestampAndBody {
                        id_header: id_header.clone(),
                        timestamp_header: timestamp_header.clone(),
                        tolerance,
                    },
                    *at,
                ));
            }
        }
        for prefix in prefixes(text) {
            for encoding in [
                SignatureEncoding::Hex,
                SignatureEncoding::Base64,
                SignatureEncoding::Base64Url,
            ] {
                for key_encoding in [KeyEncoding::Utf8, KeyEncoding::Base64, KeyEncoding::Hex] {
                    for (content, at) in &contents {
                        let mut scheme = SignatureScheme::default()
                            .with_header(name.clone())
                            .with_encoding(encoding)
                            .with_key_encoding(key_encoding)
                            .with_content(content.clone());
                        if let Some(prefix) = &prefix {
                            scheme = scheme.with_prefix(prefix.clone());
                        }
                        schemes.push((scheme, *at));
                    }
                }
            }
        }
    }
    schemes
}

/// What `capture` matches with `keys`: every scheme that verifies it, or an HMAC over the URL
/// and the body.
fn diagnose(capture: &CapturedRequest, keys: &[WebhookKey]) -> anyhow::Result<Vec<Finding>> {
    let headers = capture.header_map();
    let body = capture.body()?;
    // One verifier per candidate, each at the capture's own timestamp. A key that the scheme
    // cannot decode (not base64, not hex) rules the scheme out.
    let verifiers: Vec<(SignatureScheme, Verifier)> = candidate_schemes(&headers)
        .into_iter()
        .filter_map(|(scheme, at)| {
            let verifier = Verifier::new(scheme.clone(), keys.iter().cloned()).ok()?;
            Some((
                scheme,
                verifier.with_clock(std::sync::Arc::new(FixedClock(at))),
            ))
        })
        .collect();
    let mut findings: Vec<Finding> = verifiers
        .iter()
        .filter(|(_, verifier)| verifier.verify(&headers, &body).is_ok())
        .map(|(scheme, _)| Finding::Scheme(scheme.clone()))
        .collect();
    if findings.is_empty() {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let urls = [
            format!("https://{host}{}", capture.path),
            format!("http://{host}{}", capture.path),
            capture.path.clone(),
        ];
        for (scheme, verifier) in &verifiers {
            if scheme.content != SignedContent::Body {
                continue;
            }
            for url in &urls {
                let signed = [url.as_bytes(), &body].concat();
                if verifier.verify(&headers, &signed).is_ok() {
                    findings.push(Finding::UrlAndBody {
                        header: scheme.header.to_string(),
                        url: url.clone(),
                    });
                }
            }
        }
    }
    Ok(findings)
}

fn keys_of(args: &SignatureArgs) -> anyhow::Result<Vec<WebhookKey>> {
    let mut keys = args
        .keys
        .iter()
        .map(|k| WebhookKey::new(k.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .context("invalid --key")?;
    if let Some(path) = &args.key_file {
        keys.extend(crate::keyfile::read_keys(path)?);
    }
    anyhow::ensure!(!keys.is_empty(), "no key given");
    Ok(keys)
}

pub(crate) fn run(command: DoctorCommand) -> anyhow::Result<Outcome> {
    let DoctorCommand::Signature(args) = command;
    let keys = keys_of(&args)?;
    let mut common: Option<Vec<SignatureScheme>> = None;
    let mut unsupported = Vec::new();
    let mut unmatched = 0;
    for path in &args.captures {
        let capture = CapturedRequest::read(path)?;
        let findings = diagnose(&capture, &keys)?;
        let schemes: Vec<SignatureScheme> = findings
            .iter()
            .filter_map(|f| match f {
                Finding::Scheme(scheme) => Some(scheme.clone()),
                Finding::UrlAndBody { .. } => None,
            })
            .collect();
        for finding in &findings {
            if let Finding::UrlAndBody { header, url } = finding {
                unsupported.push(format!(
                    "{}: header {header} is an HMAC-SHA256 of the URL {url} followed by the body",
                    path.display()
                ));
            }
        }
        if findings.is_empty() {
            unmatched += 1;
            println!("{}: no match", path.display());
            continue;
        }
        println!("{}: {} matching setting(s)", path.display(), schemes.len());
        common = Some(match common {
            None => schemes,
            Some(previous) => previous
                .into_iter()
                .filter(|s| schemes.contains(s))
                .collect(),
        });
    }
    if !unsupported.is_empty() {
        println!();
        for line in &unsupported {
            println!("{line}");
        }
        println!(
            "protime cannot verify a signature over the URL yet: please report this scheme (without the key)."
        );
        return Ok(Outcome::Negative);
    }
    let common = common.unwrap_or_default();
    if unmatched > 0 || common.is_empty() {
        println!();
        println!(
            "no match: no signature setting verified {} with the given key(s). Check that the key is the one returned when this webhook was created (a key of another webhook never verifies), and that the captures are unmodified deliveries.",
            if unmatched == args.captures.len() {
                "any capture".to_owned()
            } else {
                format!("{unmatched} of {} captures", args.captures.len())
            }
        );
        return Ok(Outcome::Negative);
    }
    // The simplest explanation first: fewer signed parts, then no prefix.
    let mut ranked = common;
    ranked.sort_by_key(|s| {
        (
            match s.content {
                SignedContent::Body => 0,
                SignedContent::TimestampAndBody { .. } => 1,
                SignedContent::IdTimestampAndBody { .. } => 2,
            },
            usize::from(s.prefix.is_some()),
        )
    });
    println!();
    println!(
        "{} setting(s) verify every capture. The first, as flags of `protime receive` / `protime serve`:",
        ranked.len()
    );
    if let Some(best) = ranked.first() {
        println!("  {}", as_flags(best));
        println!("and in a `protime serve --config` file:");
        for line in as_toml(best).lines() {
            println!("  {line}");
        }
    }
    for other in ranked.iter().skip(1) {
        println!("also matching: {}", as_flags(other));
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_taken_from_the_first_signature() {
        assert_eq!(prefixes("abcdef"), vec![None]);
        assert_eq!(
            prefixes("sha256=abcdef"),
            vec![None, Some("sha256=".into())]
        );
        assert_eq!(prefixes("v1,abc v1,def"), vec![None, Some("v1,".into())]);
        assert_eq!(prefixes("=abc"), vec![None]);
    }
}
