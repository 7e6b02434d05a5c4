//! `protime purge` (retention) and `protime forget` (erasure), and what `serve`'s background
//! retention job shares with them: the age limits and one purge run.
//!
//! Retention is off unless a limit is given: a store keeps everything, as before. Limits are
//! ages (`30d`, `12h`, `90m`, `45s`, `2w`); what was received longer ago goes. The current
//! state is never purged (see the stores' `purge`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use crate::Outcome;
use crate::store::StoreArg;

/// Parses an age: digits and one unit, `s`, `m`, `h`, `d` or `w` (`30d`, `12h`). Strict:
/// no spaces, no fractions, no sign, no unit-less number.
pub(crate) fn parse_age(text: &str) -> Result<Duration, String> {
    let usage = || {
        format!("{text:?} is not an age: write digits and a unit s, m, h, d or w (e.g. 30d, 12h)")
    };
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(usage)?;
    let (digits, unit) = text.split_at(unit_at);
    if digits.is_empty() {
        return Err(usage());
    }
    let seconds_per_unit: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(usage()),
    };
    let count: u64 = digits.parse().map_err(|_| usage())?;
    let seconds = count
        .checked_mul(seconds_per_unit)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .ok_or_else(|| format!("{text:?} is too long an age (at most 100 years)"))?;
    Ok(Duration::from_secs(seconds))
}

/// The retention limits of one store (each `None`: keep that kind for ever).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) raw_bodies: Option<Duration>,
    pub(crate) change_log: Option<Duration>,
    pub(crate) dead_letters: Option<Duration>,
    /// The capture directory and the age of the capture files to delete.
    pub(crate) captures: Option<(PathBuf, Duration)>,
}

impl Limits {
    /// No limit at all: retention is off.
    pub(crate) fn is_off(&self) -> bool {
        self.raw_bodies.is_none()
            && self.change_log.is_none()
            && self.dead_letters.is_none()
            && self.captures.is_none()
    }

    fn touches_store(&self) -> bool {
        self.raw_bodies.is_some() || self.change_log.is_some() || self.dead_letters.is_some()
    }
}

/// What one purge removed (or, dry, would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Removed {
    pub(crate) raw_bodies: u64,
    pub(crate) change_log_entries: u64,
    pub(crate) dead_letters: u64,
    pub(crate) captures: u64,
}

fn cutoff(
    now: chrono::DateTime<chrono::Utc>,
    age: Duration,
) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    let age = chrono::Duration::from_std(age).context("the age is too long")?;
    now.checked_sub_signed(age).context("the age is too long")
}

/// One purge of `store` (opened) and the capture directory, by `limits`, as of now.
pub(crate) async fn purge_once(
    store: Option<&crate::store::Store>,
    limits: &Limits,
    dry_run: bool,
) -> anyhow::Result<Removed> {
    let now = chrono::Utc::now();
    let mut removed = Removed::default();
    if let Some(store) = store.filter(|_| limits.touches_store()) {
        let ages = crate::store::PurgeCutoffs {
            raw_bodies: limits.raw_bodies.map(|age| cutoff(now, age)).transpose()?,
            change_log: limits.change_log.map(|age| cutoff(now, age)).transpose()?,
            dead_letters: limits
                .dead_letters
                .map(|age| cutoff(now, age))
                .transpose()?,
        };
        let counts = store.purge(ages, dry_run).await?;
        removed.raw_bodies = counts.raw_bodies;
        removed.change_log_entries = counts.change_log_entries;
        removed.dead_letters = counts.dead_letters;
    }
    if let Some((dir, age)) = &limits.captures {
        let dir = dir.clone();
        let age = *age;
        removed.captures =
            tokio::task::spawn_blocking(move || purge_captures(&dir, age, dry_run)).await??;
    }
    Ok(removed)
}

/// Deletes the capture files (`request-*.json`, as `--capture` names them) in `dir` last
/// modified longer than `age` ago; other files are left alone. A missing directory holds
/// nothing.
pub(crate) fn purge_captures(dir: &Path, age: Duration, dry_run: bool) -> anyhow::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => {
            return Err(error)
                .with_context(|| format!("cannot read the capture directory {}", dir.display()));
        }
    };
    let limit = SystemTime::now()
        .checked_sub(age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut removed = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("request-") && name.ends_with(".json")) {
            continue;
        }
        let metadata = entry.metadata()?;
        if !metadata.is_file() || metadata.modified()? >= limit {
            continue;
        }
        if !dry_run {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => {
                    return Err(error)
                        .with_context(|| format!("cannot delete {}", entry.path().display()));
                }
            }
        }
        removed += 1;
    }
    Ok(removed)
}

/// Arguments of `protime purge`.
#[derive(Debug, clap::Args)]
pub(crate) struct PurgeArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Purge the webhook bodies of change-log entries received longer ago than this (e.g.
    /// `30d`); the entries stay (id, version, outcome), the current clockings' bodies too.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    raw_bodies_older_than: Option<Duration>,
    /// Remove change-log entries received longer ago than this (e.g. `180d`), except those
    /// that make the current state.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    change_log_older_than: Option<Duration>,
    /// Remove dead letters received longer ago than this (e.g. `90d`).
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    dead_letters_older_than: Option<Duration>,
    /// The `--capture` directory of `receive`/`serve`, for `--captures-older-than`.
    #[arg(long, value_name = "DIR", requires = "captures_older_than")]
    capture_dir: Option<PathBuf>,
    /// Delete capture files (`request-*.json` in `--capture-dir`) older than this (e.g. `7d`).
    #[arg(long, value_name = "AGE", value_parser = parse_age, requires = "capture_dir")]
    captures_older_than: Option<Duration>,
    /// Count what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// One JSON object with the counts.
    #[arg(long)]
    json: bool,
}

impl PurgeArgs {
    fn limits(&self) -> Limits {
        Limits {
            raw_bodies: self.raw_bodies_older_than,
            change_log: self.change_log_older_than,
            dead_letters: self.dead_letters_older_than,
            captures: self.capture_dir.clone().zip(self.captures_older_than),
        }
    }
}

/// `protime purge`.
pub(crate) async fn run_purge(args: PurgeArgs) -> anyhow::Result<Outcome> {
    let limits = args.limits();
    if limits.is_off() {
        eprintln!(
            "error: no limit given: retention is off unless you give at least one of --raw-bodies-older-than, --change-log-older-than, --dead-letters-older-than, --captures-older-than"
        );
        return Ok(Outcome::Incomplete);
    }
    let store = if limits.touches_store() {
        Some(args.store.open_existing().await?)
    } else {
        None
    };
    let removed = purge_once(store.as_ref(), &limits, args.dry_run).await;
    if let Some(store) = store {
        store.close().await?;
    }
    let removed =
        removed.context("the purge failed (what was removed before the failure stays removed)")?;
    if args.json {
        let mut value = serde_json::to_value(removed)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("dry_run".into(), args.dry_run.into());
        }
        println!("{value}");
    } else {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        println!(
            "{verb}: {} raw bodies, {} change-log entries, {} dead letters, {} capture files",
            removed.raw_bodies, removed.change_log_entries, removed.dead_letters, removed.captures
        );
    }
    Ok(Outcome::Success)
}

/// Arguments of `protime forget`.
#[derive(Debug, clap::Args)]
pub(crate) struct ForgetArgs {
    #[command(flatten)]
    store: StoreArg,
    /// The person's id (`data.person.id` of their clockings).
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(i64).range(1..))]
    person: i64,
    /// Count what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// One JSON object with the counts.
    #[arg(long)]
    json: bool,
}

/// `protime forget`.
pub(crate) async fn run_forget(args: ForgetArgs) -> anyhow::Result<Outcome> {
    let store = args.store.open_existing().await?;
    let erased = store.forget_person(args.person, args.dry_run).await;
    store.close().await?;
    let erased = erased.context("the erasure failed: run it again to finish it")?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "dry_run": args.dry_run,
                "clockings": erased.clockings,
                "change_log_entries": erased.change_log_entries,
                "dead_letters": erased.dead_letters,
            })
        );
    } else {
        let verb = if args.dry_run {
            "would erase"
        } else {
            "erased"
        };
        println!(
            "{verb}: {} clockings (kept as erased tombstones: id and version), {} change-log entries, {} dead letters",
            erased.clockings, erased.change_log_entries, erased.dead_letters
        );
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_digits_and_one_unit() {
        assert_eq!(parse_age("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_age("12h").unwrap(), Duration::from_secs(12 * 3_600));
        assert_eq!(parse_age("90m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_age("45s").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_age("2w").unwrap(), Duration::from_secs(14 * 86_400));
        assert_eq!(parse_age("0s").unwrap(), Duration::ZERO);
        for bad in [
            "",
            "30",
            "d",
            "30 d",
            " 30d",
            "30D",
            "1.5d",
            "-1d",
            "+1d",
            "30dd",
            "1y",
            "99999999999999999999d",
            "40000d",
        ] {
            assert!(parse_age(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_old_capture_files_go() {
        let dir = std::env::temp_dir().join(format!("protime-captures-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join("request-1-000001.json");
        let other = dir.join("notes.txt");
        std::fs::write(&old, "{}").unwrap();
        std::fs::write(&other, "keep").unwrap();
        let past = SystemTime::now() - Duration::from_secs(3 * 86_400);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(past)
            .unwrap();
        std::fs::File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_modified(past)
            .unwrap();
        let new = dir.join("request-1-000002.json");
        std::fs::write(&new, "{}").unwrap();

        let age = Duration::from_secs(86_400);
        assert_eq!(purge_captures(&dir, age, true).unwrap(), 1);
        assert!(old.exists());
        assert_eq!(purge_captures(&dir, age, false).unwrap(), 1);
        assert!(!old.exists() && new.exists() && other.exists());
        assert_eq!(purge_captures(&dir.join("missing"), age, false).unwrap(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
