//! The receiver core of `protime-webhooks` — content type → signature over the raw body →
//! `parse_delivery` → sink → HTTP answer — on arbitrary headers and bodies, with fixed keys
//! under four signature schemes. Must never panic, and:
//!
//! - a delivery the harness signed correctly is accepted by the verifier (unless the fuzzer
//!   added a header that collides with the signature or timestamp header, or moved the
//!   timestamp out of the tolerance);
//! - an unsigned or tampered delivery is never accepted;
//! - `ReceiveCore::handle` answers 415 / 401 / 400 / 200 exactly as `check_content_type`,
//!   `Verifier::verify_and_parse` and the invalid-delivery policy say, with a JSON body, and
//!   a second identical delivery is a duplicate.
//!
//! Input layout (so that seeds can be written by hand, see `scripts/fuzz_seed.sh`):
//!
//! ```text
//! byte 0  bits 0-1 scheme (0..=3, see `schemes`)
//!         bits 2-3 signing: 0 none, 1 correct, 2 correct then body tampered,
//!                  3 a wrong key's signature then the correct one ("w,c")
//!         bits 4-5 Content-Type: 0 none, 1 application/json,
//!                  2 application/vnd.protime+json; charset=utf-8, 3 text/plain
//!         bit 6    InvalidDeliveryPolicy::Reject (else DeadLetterAndAcknowledge)
//!         bit 7    ContentTypePolicy::RequireJson (else JsonIfPresent)
//! byte 1  bit 0    sign with the second key; bits 1-7 timestamp offset (signed, × 10 s)
//! byte 2  number of extra headers (mod 8), then for each: name length, name, value
//!         length, value (the name "" is the scheme's signature header, "t" its timestamp
//!         header, "c" Content-Type)
//! rest    the body
//! ```
#![no_main]

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use protime_model::ApplyOutcome;
use protime_webhooks::receive::{
    Answer, ContentTypePolicy, InvalidDeliveryPolicy, ReceiveCore, ReceiveError, check_content_type,
};
use protime_webhooks::signature::{
    FixedClock, KeyEncoding, SignatureEncoding, SignatureScheme, Verifier, WebhookKey, sign,
};
use protime_webhooks::{InMemorySink, Receipt};

/// The verifiers' clock (Unix seconds).
const NOW: i64 = 1_700_000_000;

struct Setup {
    scheme: SignatureScheme,
    /// The two configured keys, as the sender holds them.
    keys: [WebhookKey; 2],
    /// A key the verifier does not know.
    wrong_key: WebhookKey,
    verifier: Verifier,
    /// Tolerance of a timestamp scheme.
    tolerance: Option<Duration>,
}

fn key(text: &str) -> WebhookKey {
    WebhookKey::new(text).expect("a valid key")
}

fn setup(scheme: SignatureScheme, keys: [&str; 2], wrong: &str) -> Setup {
    let keys = [key(keys[0]), key(keys[1])];
    let verifier = Verifier::new(scheme.clone(), keys.clone())
        .expect("a valid scheme")
        .with_clock(Arc::new(FixedClock(NOW)));
    let tolerance = match &scheme.content {
        protime_webhooks::signature::SignedContent::TimestampAndBody { tolerance, .. } => {
            Some(*tolerance)
        }
        _ => None,
    };
    Setup {
        scheme,
        keys,
        wrong_key: key(wrong),
        verifier,
        tolerance,
    }
}

fn schemes() -> &'static [Setup; 4] {
    static SCHEMES: OnceLock<[Setup; 4]> = OnceLock::new();
    SCHEMES.get_or_init(|| {
        [
            // The default: lower-case hex HMAC-SHA256 of the body in x-protime-signature.
            setup(
                SignatureScheme::default(),
                ["fuzz-key-one", "fuzz-key-two"],
                "not-a-configured-key",
            ),
            // base64 with a prefix, in another header.
            setup(
                SignatureScheme::default()
                    .with_header(HeaderName::from_static("x-hub-signature-256"))
                    .with_encoding(SignatureEncoding::Base64)
                    .with_prefix("sha256="),
                ["fuzz-key-one", "fuzz-key-two"],
                "not-a-configured-key",
            ),
            // base64 keys, "{timestamp}.{body}" within 5 minutes.
            setup(
                SignatureScheme::default()
                    .with_key_encoding(KeyEncoding::Base64)
                    .with_timestamp(
                        SignatureScheme::DEFAULT_TIMESTAMP_HEADER,
                        SignatureScheme::DEFAULT_TOLERANCE,
                    ),
                ["ZnV6ei1rZXktb25l", "ZnV6ei1rZXktdHdv"],
                "bm90LWNvbmZpZ3VyZWQ=",
            ),
            // base64 signatures, timestamps with no tolerance at all.
            setup(
                SignatureScheme::default()
                    .with_header(HeaderName::from_static("x-sig"))
                    .with_encoding(SignatureEncoding::Base64)
                    .with_timestamp(HeaderName::from_static("x-ts"), Duration::ZERO),
                ["fuzz-key-one", "fuzz-key-two"],
                "not-a-configured-key",
            ),
        ]
    })
}

/// Runs a future that never waits (the in-memory sink answers at once) without a runtime.
fn run_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("ReceiveCore::handle waited with an in-memory sink"),
    }
}

/// Reads `len`-prefixed bytes.
fn take<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&len, rest) = input.split_first()?;
    let len = usize::from(len);
    if rest.len() < len {
        return None;
    }
    let (taken, rest) = rest.split_at(len);
    *input = rest;
    Some(taken)
}

fn timestamp_header(setup: &Setup) -> Option<&HeaderName> {
    match &setup.scheme.content {
        protime_webhooks::signature::SignedContent::TimestampAndBody {
            timestamp_header, ..
        } => Some(timestamp_header),
        _ => None,
    }
}

fn check_answer(answer: &Answer) {
    assert!(
        serde_json::from_str::<serde_json::Value>(&answer.body).is_ok(),
        "answer body is not JSON: {:?}",
        answer.body
    );
}

fuzz_target!(|data: &[u8]| {
    let [flags, aux, count, ref rest @ ..] = *data else {
        return;
    };
    let mut rest: &[u8] = rest;
    let setup = &schemes()[usize::from(flags & 0b11)];
    let sign_mode = (flags >> 2) & 0b11;
    let content_type = match (flags >> 4) & 0b11 {
        0 => None,
        1 => Some("application/json"),
        2 => Some("application/vnd.protime+json; charset=utf-8"),
        _ => Some("text/plain"),
    };
    let invalid_policy = if flags & 0x40 != 0 {
        InvalidDeliveryPolicy::Reject
    } else {
        InvalidDeliveryPolicy::DeadLetterAndAcknowledge
    };
    let content_policy = if flags & 0x80 != 0 {
        ContentTypePolicy::RequireJson
    } else {
        ContentTypePolicy::JsonIfPresent
    };
    let signing_key = &setup.keys[usize::from(aux & 1)];
    let offset = i64::from((aux as i8) >> 1) * 10;
    let timestamp = NOW + offset;

    let mut extra = Vec::new();
    for _ in 0..count % 8 {
        let (Some(name), Some(value)) = (take(&mut rest), take(&mut rest)) else {
            return;
        };
        let name = match name {
            b"" => setup.scheme.header.clone(),
            b"t" => timestamp_header(setup)
                .cloned()
                .unwrap_or(SignatureScheme::DEFAULT_TIMESTAMP_HEADER),
            b"c" => header::CONTENT_TYPE,
            other => match HeaderName::from_bytes(other) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            extra.push((name, value));
        }
    }
    let body = rest;

    // What the sender sends.
    let mut headers = HeaderMap::new();
    let mut sent_body = body.to_vec();
    if sign_mode != 0 {
        let signed = sign(&setup.scheme, signing_key, body, Some(timestamp)).expect("signs");
        headers.extend(signed);
        if sign_mode == 2 {
            match sent_body.last_mut() {
                Some(last) => *last ^= 1,
                None => sent_body.push(b' '),
            }
        } else if sign_mode == 3 {
            let wrong =
                sign(&setup.scheme, &setup.wrong_key, body, Some(timestamp)).expect("signs");
            let both = format!(
                "{},{}",
                wrong[&setup.scheme.header].to_str().expect("ASCII"),
                headers[&setup.scheme.header].to_str().expect("ASCII")
            );
            headers.insert(
                setup.scheme.header.clone(),
                HeaderValue::from_str(&both).expect("a header value"),
            );
        }
    }
    let mut collides = false;
    for (name, value) in extra {
        collides |= name == setup.scheme.header || Some(&name) == timestamp_header(setup);
        headers.append(name, value);
    }
    if let Some(content_type) = content_type {
        headers.append(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }

    // The verifier alone.
    let verdict = setup.verifier.verify_and_parse(&headers, &sent_body);
    let authentic = !matches!(verdict, Err(ReceiveError::Signature(_)));
    if sign_mode == 0 || sign_mode == 2 {
        assert!(!authentic, "an unsigned or tampered delivery was accepted");
    }
    let in_tolerance = setup
        .tolerance
        .is_none_or(|tolerance| offset.unsigned_abs() <= tolerance.as_secs());
    if (sign_mode == 1 || sign_mode == 3) && !collides && in_tolerance {
        assert!(
            authentic,
            "a correctly signed delivery was refused: {:?}",
            verdict.err()
        );
    }
    if let Ok(change) = &verdict {
        assert_eq!(
            protime_model::parse_delivery(&sent_body).as_ref(),
            Ok(change),
            "verify_and_parse and parse_delivery disagree"
        );
    }

    // The receive core, on a fresh sink.
    let core = ReceiveCore::new(setup.verifier.clone(), Arc::new(InMemorySink::default()))
        .with_invalid_delivery(invalid_policy)
        .with_content_type(content_policy);
    let sent = Bytes::from(sent_body);
    let answer = run_ready(core.handle(&headers, sent.clone()));
    check_answer(&answer);
    if check_content_type(&headers, content_policy).is_err() {
        assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        return;
    }
    match (&verdict, invalid_policy) {
        (Err(ReceiveError::Signature(_)), _) => {
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        }
        (Ok(_), _) => {
            assert_eq!(answer.status, StatusCode::OK);
            assert_eq!(
                answer.receipt,
                Some(Receipt::Applied(ApplyOutcome::Applied))
            );
            let again = run_ready(core.handle(&headers, sent));
            check_answer(&again);
            assert_eq!(
                again.receipt,
                Some(Receipt::Applied(ApplyOutcome::Duplicate))
            );
        }
        (Err(_), InvalidDeliveryPolicy::Reject) => {
            assert_eq!(answer.status, StatusCode::BAD_REQUEST);
            assert_eq!(answer.receipt, None);
        }
        (Err(_), _) => {
            assert_eq!(answer.status, StatusCode::OK);
            assert_eq!(answer.receipt, Some(Receipt::DeadLettered));
        }
    }
});
