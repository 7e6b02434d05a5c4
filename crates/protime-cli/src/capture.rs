//! `--capture DIR` of `protime receive` and `protime serve`: every request whose body the
//! receiver has read is written to its own file — method, path, headers and the raw body —
//! for `protime doctor signature` to examine. A capture holds what the request held and
//! nothing else (no key: keys are never in a request), in files readable by the owner only;
//! they hold personal data (the clockings), so capture for diagnosis, not for ever.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use protime_webhooks::receiver::RequestObserver;

/// Most requests captured by one process (then capturing stops, with one warning).
pub(crate) const MAX_CAPTURES: u64 = 1000;

/// One captured request.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct CapturedRequest {
    /// When it was received (RFC 3339).
    pub(crate) received_at: String,
    pub(crate) method: String,
    /// The path and query as the client sent them.
    pub(crate) path: String,
    /// Every header in order; values as text when they are visible ASCII, else in
    /// `value_base64`.
    pub(crate) headers: Vec<CapturedHeader>,
    /// The raw body, in base64.
    pub(crate) body_base64: String,
}

/// One header of a captured request.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct CapturedHeader {
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) value_base64: Option<String>,
}

impl CapturedRequest {
    /// Reads a capture file.
    pub(crate) fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the capture {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a capture written by --capture", path.display()))
    }

    /// The headers as an HTTP header map (unusable names or values are left out).
    pub(crate) fn header_map(&self) -> axum::http::HeaderMap {
        let mut map = axum::http::HeaderMap::new();
        for header in &self.headers {
            let Ok(name) = header.name.parse::<axum::http::HeaderName>() else {
                continue;
            };
            let bytes = match (&header.value, &header.value_base64) {
                (Some(text), _) => text.as_bytes().to_vec(),
                (None, Some(encoded)) => STANDARD.decode(encoded).unwrap_or_default(),
                (None, None) => Vec::new(),
            };
            if let Ok(value) = axum::http::HeaderValue::from_bytes(&bytes) {
                map.append(name, value);
            }
        }
        map
    }

    /// The raw body.
    pub(crate) fn body(&self) -> anyhow::Result<Vec<u8>> {
        STANDARD
            .decode(&self.body_base64)
            .context("the capture's body_base64 is not base64")
    }
}

/// An observer that writes each request into `dir` (created with mode 700), one file per
/// request with mode 600, up to [`MAX_CAPTURES`].
pub(crate) fn observer(dir: &Path) -> anyhow::Result<RequestObserver> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the capture directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
    }
    let dir: Arc<PathBuf> = Arc::new(dir.to_path_buf());
    let count = Arc::new(AtomicU64::new(0));
    let process = std::process::id();
    Ok(RequestObserver::new(move |parts, body| {
        let n = count.fetch_add(1, Ordering::Relaxed);
        if n >= MAX_CAPTURES {
            if n == MAX_CAPTURES {
                tracing::warn!(
                    "{MAX_CAPTURES} requests captured in {}: capturing stops",
                    dir.display()
                );
            }
            return;
        }
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.to_string(), |original| original.0.to_string());
        let captured = CapturedRequest {
            received_at: chrono::Utc::now().to_rfc3339(),
            method: parts.method.to_string(),
            path,
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| match value.to_str() {
                    Ok(text) => CapturedHeader {
                        name: name.to_string(),
                        value: Some(text.to_owned()),
                        value_base64: None,
                    },
                    Err(_) => CapturedHeader {
                        name: name.to_string(),
                        value: None,
                        value_base64: Some(STANDARD.encode(value.as_bytes())),
                    },
                })
                .collect(),
            body_base64: STANDARD.encode(body),
        };
        let file = dir.join(format!("request-{process}-{n:06}.json"));
        if let Err(error) = write_new_private(&file, &captured) {
            tracing::warn!(file = %file.display(), error = %format!("{error:#}"), "a request could not be captured");
        }
    }))
}

fn write_new_private(path: &Path, captured: &CapturedRequest) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(serde_json::to_string_pretty(captured)?.as_bytes())?;
    file.write_all(b"\n")?;
    Ok(())
}
