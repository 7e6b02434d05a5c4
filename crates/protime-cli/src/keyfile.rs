//! Webhook key files: one key per line, each used exactly as written (only the line end,
//! `\n` or `\r\n`, is not part of it; empty lines are skipped), mode 600.
//! A new key is added to the file, never written over the previous ones: a receiver that
//! still gets deliveries for an older webhook keeps verifying them. Each change writes a
//! temporary file beside it, syncs it, and renames it over the old one, so a crash leaves
//! either the old file or the new one, never a torn or empty one.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use protime_webhooks::signature::WebhookKey;

/// The keys in `path`, in file order.
pub(crate) fn read_keys(path: &Path) -> anyhow::Result<Vec<WebhookKey>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    // `lines` drops the `\n` and a `\r` before it; nothing else is trimmed.
    let keys = text
        .lines()
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(n, line)| {
            WebhookKey::new(line)
                .with_context(|| format!("{}: key {} is not usable", path.display(), n + 1))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(
        !keys.is_empty(),
        "the key file {} holds no key",
        path.display()
    );
    Ok(keys)
}

/// Adds `key` to the file at `path` (created with mode 600 if missing), keeping every key
/// already there; does nothing if the key is there already.
pub(crate) fn add_key(path: &Path, key: &WebhookKey) -> anyhow::Result<()> {
    let secret = key.expose_secret();
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", path.display()));
        }
    };
    if existing.lines().any(|line| line == secret) {
        return Ok(());
    }
    let mut content = existing;
    if !content.is_empty() && !content.ends_with('\n') {
        content.push('\n');
    }
    content.push_str(secret);
    content.push('\n');

    write_private(path, content.as_bytes())
}

/// Keeps only the keys of `path` whose fingerprint is in `keep` (at least one must stay).
pub(crate) fn retain_keys(path: &Path, keep: &[String]) -> anyhow::Result<()> {
    let keys = read_keys(path)?;
    let kept: Vec<&WebhookKey> = keys
        .iter()
        .filter(|key| keep.contains(&key.fingerprint()))
        .collect();
    if kept.is_empty() || kept.len() == keys.len() {
        return Ok(());
    }
    let mut content = String::new();
    for key in kept {
        content.push_str(key.expose_secret());
        content.push('\n');
    }
    write_private(path, content.as_bytes())
}

/// Replaces the file at `path` with `content`, atomically and durably, readable by the owner
/// only: a temporary file beside it (mode 600 from its creation), synced, renamed over it,
/// and the directory synced.
pub(crate) fn write_private(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let temporary = directory.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Never readable by others, not even for a moment.
        options.mode(0o600);
    }
    let written = (|| {
        let mut file = options.open(&temporary)?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        // The rename itself is durable once the directory is synced.
        std::fs::File::open(directory)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_added_never_replaced_and_stay_private() {
        let dir = std::env::temp_dir().join(format!("protime-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("webhook.key");
        let _ = std::fs::remove_file(&path);
        let first = WebhookKey::new("first-key").unwrap();
        let second = WebhookKey::new("second-key").unwrap();
        add_key(&path, &first).unwrap();
        add_key(&path, &second).unwrap();
        add_key(&path, &second).unwrap();
        let keys: Vec<String> = read_keys(&path)
            .unwrap()
            .iter()
            .map(|k| k.expose_secret().to_owned())
            .collect();
        assert_eq!(keys, ["first-key", "second-key"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::write(&path, "\n\n").unwrap();
        assert!(read_keys(&path).unwrap_err().to_string().contains("no key"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
