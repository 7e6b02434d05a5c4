//! `protime dead-letters list|show|replay`: the authentic deliveries that failed validation,
//! kept with their errors; after a fix (the default profile for what a `--strict` receiver
//! refused, a newer protime, corrected rules) a replay validates them again and records those
//! that pass, like a delivery.

use std::io::Write as _;

use anyhow::Context as _;
use bytes::Bytes;
use protime_model::ClockingChange;
use protime_webhooks::sink::{Delivery, DeliverySink as _, WebhookOrigin};
use serde_json::Value;

use crate::Outcome;
use crate::store::{Store, StoreArg, StoredDeadLetter};

/// `protime dead-letters …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum DeadLettersCommand {
    /// List the dead letters in arrival order: id, when received, whether replayed, the
    /// first violation.
    List {
        #[command(flatten)]
        store: StoreArg,
        /// Only those not replayed yet.
        #[arg(long)]
        pending: bool,
        /// One JSON object per line (the errors as a JSON array, the body as text).
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter: every violation and the body exactly as received.
    Show {
        #[command(flatten)]
        store: StoreArg,
        /// Dead letter id (from `list`).
        id: i64,
        /// A JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Validate dead letters again and record those that pass, like a delivery (the
    /// ordering rule decides: applied, duplicate or stale). Exit 1 when some are still
    /// invalid.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "all"])))]
    Replay {
        #[command(flatten)]
        store: StoreArg,
        /// Dead letter ids (from `list`).
        ids: Vec<i64>,
        /// Every dead letter not replayed yet.
        #[arg(long)]
        all: bool,
        /// Validate only; record nothing.
        #[arg(long)]
        dry_run: bool,
        /// Validate with the strict profile (`person`, `date`, `timeOfDayInMinutes` and
        /// `kind` required). By default only what the Protime docs require is mandatory.
        #[arg(long)]
        strict: bool,
        /// One JSON object per dead letter.
        #[arg(long)]
        json: bool,
    },
}

/// The stored violations, or the stored text when it is not the expected JSON.
fn errors_of(letter: &StoredDeadLetter) -> Value {
    serde_json::from_str(&letter.errors_json)
        .unwrap_or_else(|_| Value::String(letter.errors_json.clone()))
}

/// `/data/kind enum.unknown: …` for one stored violation.
fn violation_line(error: &Value) -> String {
    let field = |name: &str| error.get(name).and_then(Value::as_str).unwrap_or_default();
    let pointer = match field("pointer") {
        "" => "(body)",
        pointer => pointer,
    };
    format!("{pointer} {}: {}", field("code"), field("message"))
}

fn first_violation(letter: &StoredDeadLetter) -> String {
    match errors_of(letter) {
        Value::Array(errors) => {
            let first = errors.first().map(violation_line).unwrap_or_default();
            match errors.len() {
                0 | 1 => first,
                n => format!("{first} (and {} more)", n - 1),
            }
        }
        other => other.to_string(),
    }
}

fn status(letter: &StoredDeadLetter) -> String {
    match (&letter.replayed_at, &letter.replay_outcome) {
        (Some(_), Some(outcome)) => format!("replayed:{outcome}"),
        _ => "pending".to_owned(),
    }
}

/// The body as text (it is UTF-8 unless R25 refused it), else as lossy text with a note.
fn body_text(letter: &StoredDeadLetter) -> (String, bool) {
    match std::str::from_utf8(&letter.raw_body) {
        Ok(text) => (text.to_owned(), true),
        Err(_) => (
            String::from_utf8_lossy(&letter.raw_body).into_owned(),
            false,
        ),
    }
}

fn as_json(letter: &StoredDeadLetter) -> Value {
    let (body, utf8) = body_text(letter);
    serde_json::json!({
        "id": letter.id,
        "received_at": letter.received_at,
        "key_fingerprint": letter.key_fingerprint,
        "replayed_at": letter.replayed_at,
        "replay_outcome": letter.replay_outcome,
        "errors": errors_of(letter),
        "body": body,
        "body_is_utf8": utf8,
    })
}

async fn letter(store: &Store, id: i64) -> anyhow::Result<StoredDeadLetter> {
    store
        .dead_letter(id)
        .await?
        .with_context(|| format!("there is no dead letter {id} (see `protime dead-letters list`)"))
}

/// What one replay did.
enum Replayed {
    /// Recorded with this receipt name (`applied`, `duplicate`, `stale`).
    Recorded(&'static str, ClockingChange),
    /// Valid; not recorded (`--dry-run`).
    Valid(ClockingChange),
    /// Still invalid under the current rules.
    Invalid(protime_model::ValidationErrors),
    /// Replayed before; left alone.
    LeftAlone(String),
}

async fn replay_one(
    store: &Store,
    letter: &StoredDeadLetter,
    dry_run: bool,
    profile: protime_model::Profile,
) -> anyhow::Result<Replayed> {
    if let Some(outcome) = &letter.replay_outcome {
        return Ok(Replayed::LeftAlone(outcome.clone()));
    }
    let change = match protime_model::parse_delivery_with(&letter.raw_body, profile) {
        Ok(change) => change,
        Err(errors) => return Ok(Replayed::Invalid(errors)),
    };
    if dry_run {
        return Ok(Replayed::Valid(change));
    }
    let fingerprint = letter
        .key_fingerprint
        .clone()
        .unwrap_or_else(|| "unknown".to_owned());
    let origin = WebhookOrigin::new(Bytes::from(letter.raw_body.clone()), fingerprint);
    let receipt = store
        .record(Delivery::webhook(change.clone(), origin))
        .await
        .with_context(|| format!("dead letter {}: the store refused the replay", letter.id))?;
    store.mark_replayed(letter.id, receipt).await?;
    Ok(Replayed::Recorded(receipt.name(), change))
}

fn change_summary(change: &ClockingChange) -> (Value, Value, &'static str) {
    match change {
        ClockingChange::InsertOrUpdate(clocking) => (
            Value::from(clocking.id.get()),
            serde_json::to_value(&clocking.change_version).unwrap_or(Value::Null),
            "InsertOrUpdate",
        ),
        ClockingChange::Delete { id, change_version } => (
            Value::from(id.get()),
            serde_json::to_value(change_version).unwrap_or(Value::Null),
            "Delete",
        ),
    }
}

fn report(id: i64, replayed: &Replayed, json: bool) -> anyhow::Result<String> {
    let (result, change, errors) = match replayed {
        Replayed::Recorded(name, change) => (*name, Some(change), None),
        Replayed::Valid(change) => ("valid", Some(change), None),
        Replayed::Invalid(errors) => ("invalid", None, Some(errors)),
        Replayed::LeftAlone(_) => ("already_replayed", None, None),
    };
    let summary = change.map(change_summary);
    if json {
        let mut value = serde_json::Map::new();
        value.insert("id".into(), Value::from(id));
        value.insert("result".into(), Value::from(result));
        if let Some((clocking_id, version, change_type)) = &summary {
            value.insert("clocking_id".into(), clocking_id.clone());
            value.insert("change_version".into(), version.clone());
            value.insert("change_type".into(), Value::from(*change_type));
        }
        if let Some(errors) = errors {
            value.insert("errors".into(), serde_json::to_value(errors)?);
        }
        return Ok(serde_json::to_string(&value)?);
    }
    Ok(match (replayed, summary) {
        (Replayed::Recorded(name, _), Some((clocking_id, version, change_type))) => format!(
            "dead letter {id}: {name} ({change_type} of clocking {clocking_id}, version {version})"
        ),
        (Replayed::Valid(_), Some((clocking_id, version, change_type))) => format!(
            "dead letter {id}: valid now, not recorded (--dry-run): {change_type} of clocking {clocking_id}, version {version}"
        ),
        (Replayed::Invalid(errors), _) => format!("dead letter {id}: still invalid: {errors}"),
        (Replayed::LeftAlone(outcome), _) => {
            format!("dead letter {id}: already replayed ({outcome}); left alone")
        }
        _ => format!("dead letter {id}: {result}"),
    })
}

pub(crate) async fn run(command: DeadLettersCommand) -> anyhow::Result<Outcome> {
    match command {
        DeadLettersCommand::List {
            store,
            pending,
            json,
        } => {
            let store = store.open_existing().await?;
            let mut letters = store.dead_letters().await?;
            store.close().await?;
            if pending {
                letters.retain(|letter| letter.replay_outcome.is_none());
            }
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            if !json {
                let _ = writeln!(
                    out,
                    "{:<8} {:<28} {:<18} FIRST VIOLATION",
                    "ID", "RECEIVED", "STATUS"
                );
            }
            for letter in &letters {
                let line = if json {
                    serde_json::to_string(&as_json(letter))?
                } else {
                    format!(
                        "{:<8} {:<28} {:<18} {}",
                        letter.id,
                        letter.received_at,
                        status(letter),
                        first_violation(letter)
                    )
                };
                if writeln!(out, "{line}").is_err() {
                    return Ok(Outcome::Success);
                }
            }
            let _ = out.flush();
            if !json {
                eprintln!("{} dead letter(s)", letters.len());
            }
            Ok(Outcome::Success)
        }
        DeadLettersCommand::Show { store, id, json } => {
            let store = store.open_existing().await?;
            let letter = letter(&store, id).await;
            store.close().await?;
            let letter = letter?;
            if json {
                println!("{}", serde_json::to_string(&as_json(&letter))?);
                return Ok(Outcome::Success);
            }
            println!("dead letter  {}", letter.id);
            println!("received     {}", letter.received_at);
            println!(
                "key          {}",
                letter
                    .key_fingerprint
                    .as_deref()
                    .unwrap_or("(not recorded)")
            );
            println!("status       {}", status(&letter));
            println!("violations");
            match errors_of(&letter) {
                Value::Array(errors) => {
                    for error in &errors {
                        println!("  {}", violation_line(error));
                    }
                }
                other => println!("  {other}"),
            }
            let (body, utf8) = body_text(&letter);
            println!(
                "body ({} bytes{})",
                letter.raw_body.len(),
                if utf8 {
                    ""
                } else {
                    ", not UTF-8: shown lossily"
                }
            );
            println!("{body}");
            Ok(Outcome::Success)
        }
        DeadLettersCommand::Replay {
            store,
            ids,
            all,
            dry_run,
            strict,
            json,
        } => {
            let profile = crate::api::profile_of(strict);
            let store = store.open_existing().await?;
            let letters = if all {
                let mut letters = store.dead_letters().await?;
                letters.retain(|letter| letter.replay_outcome.is_none());
                letters
            } else {
                let mut letters = Vec::with_capacity(ids.len());
                for id in &ids {
                    letters.push(letter(&store, *id).await?);
                }
                letters
            };
            let mut still_invalid = 0_usize;
            let mut result = Ok(());
            for letter in &letters {
                match replay_one(&store, letter, dry_run, profile).await {
                    Ok(replayed) => {
                        if matches!(replayed, Replayed::Invalid(_)) {
                            still_invalid += 1;
                        }
                        println!("{}", report(letter.id, &replayed, json)?);
                    }
                    Err(error) => {
                        result = Err(error);
                        break;
                    }
                }
            }
            store.close().await?;
            result?;
            if !json {
                eprintln!(
                    "{} dead letter(s) looked at, {still_invalid} still invalid",
                    letters.len()
                );
            }
            Ok(if still_invalid == 0 {
                Outcome::Success
            } else {
                Outcome::Negative
            })
        }
    }
}
