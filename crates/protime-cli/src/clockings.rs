//! `protime clockings list|get`: what the store holds, without SQL — as a table for people
//! or as JSON lines for programs.

use std::io::Write as _;

use anyhow::Context as _;
use protime_model::{Clocking, ClockingId};
use protime_webhooks::sink::SinkRead as _;
use serde_json::Value;

use crate::Outcome;
use crate::store::StoreArg;

/// Clockings read per query.
const PAGE: usize = 1000;

/// `protime clockings …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ClockingsCommand {
    /// List the clockings that currently exist, by id (deleted ones are not listed; `get`
    /// shows a deletion).
    List {
        #[command(flatten)]
        store: StoreArg,
        /// Only clockings with an id greater than this (to page: the last id printed).
        #[arg(long, value_name = "ID")]
        after: Option<i64>,
        /// At most this many.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// One JSON object per line, each clocking as Protime delivers it (`data`).
        #[arg(long)]
        json: bool,
    },
    /// Show one clocking as stored: its last applied version and the clocking, or that
    /// its last applied change deleted it. Exit 1 when the store knows nothing of the id.
    Get {
        #[command(flatten)]
        store: StoreArg,
        /// Clocking id.
        id: i64,
        /// A JSON object: `{"id", "changeVersion", "deleted", "clocking"}`.
        #[arg(long)]
        json: bool,
    },
}

fn clocking_id(id: i64) -> anyhow::Result<ClockingId> {
    ClockingId::new(id).map_err(|error| anyhow::anyhow!("clocking id {id}: {error}"))
}

/// `08:30`; a time on the day before or after its date gets `-1d` / `+1d` (the
/// `timeOfDayInMinutes` range is -1440..=2880).
pub(crate) fn time_of_day(minutes: i64) -> String {
    let day = minutes.div_euclid(1440);
    let minute = minutes.rem_euclid(1440);
    let time = format!("{:02}:{:02}", minute / 60, minute % 60);
    match day {
        0 => time,
        day if day > 0 => format!("{time} +{day}d"),
        day => format!("{time} {day}d"),
    }
}

/// One table row from a clocking in its wire form, whatever fields it carries.
pub(crate) fn row(data: &Value) -> String {
    let text = |value: Option<&Value>| match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    };
    let time = data
        .get("timeOfDayInMinutes")
        .and_then(Value::as_i64)
        .map_or_else(|| "-".to_owned(), time_of_day);
    format!(
        "{:<10} {:<10} {:<12} {:<8} {:<11} {:<8} {}",
        text(data.get("id")),
        text(data.get("date")),
        time,
        text(data.get("person").and_then(|p| p.get("id"))),
        text(data.get("kind")),
        text(data.get("status")),
        text(data.get("changeVersion")),
    )
}

const HEADER: &str = "ID         DATE       TIME         PERSON   KIND        STATUS   VERSION";

fn wire(clocking: &Clocking) -> anyhow::Result<Value> {
    serde_json::to_value(clocking).context("cannot serialize a clocking")
}

/// Writes `text` and a newline; `Ok(false)` when standard output was closed (`| head`).
fn emit(out: &mut impl std::io::Write, text: &str) -> bool {
    writeln!(out, "{text}").is_ok()
}

pub(crate) async fn run(command: ClockingsCommand) -> anyhow::Result<Outcome> {
    match command {
        ClockingsCommand::List {
            store,
            after,
            limit,
            json,
        } => {
            let after = after.map(clocking_id).transpose()?;
            let store = store.open_existing().await?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            if !json && !emit(&mut out, HEADER) {
                return Ok(Outcome::Success);
            }
            let mut cursor = after;
            let mut remaining = limit.unwrap_or(usize::MAX);
            let mut printed = 0_u64;
            'pages: while remaining > 0 {
                let want = PAGE.min(remaining);
                let page = store
                    .list(cursor, want)
                    .await
                    .context("cannot read the clockings")?;
                for clocking in &page {
                    // JSON lines straight from the clocking; a table row reads its wire form.
                    let text = if json {
                        serde_json::to_string(clocking)?
                    } else {
                        row(&wire(clocking)?)
                    };
                    if !emit(&mut out, &text) {
                        break 'pages;
                    }
                    printed += 1;
                }
                remaining -= page.len();
                match page.last() {
                    Some(last) if page.len() == want => cursor = Some(last.id),
                    _ => break,
                }
            }
            let _ = out.flush();
            drop(out);
            if !json {
                eprintln!("{printed} clocking(s)");
            }
            store.close().await?;
            Ok(Outcome::Success)
        }
        ClockingsCommand::Get { store, id, json } => {
            let id = clocking_id(id)?;
            let store = store.open_existing().await?;
            let state = store.state(id).await.context("cannot read the clocking")?;
            store.close().await?;
            let Some(state) = state else {
                if json {
                    println!("null");
                }
                eprintln!("the store has no clocking {id}: no change of it was received or synced");
                return Ok(Outcome::Negative);
            };
            let data = state.clocking.as_ref().map(wire).transpose()?;
            if json {
                let mut value = serde_json::json!({
                    "id": id.get(),
                    "changeVersion": state.change_version,
                    "deleted": data.is_none(),
                    "clocking": data,
                });
                // A clocking synced without a changeVersion has none to show (as in the API).
                if state.change_version.is_absent()
                    && let Some(fields) = value.as_object_mut()
                {
                    fields.remove("changeVersion");
                }
                println!("{}", serde_json::to_string(&value)?);
            } else {
                match data {
                    Some(data) => {
                        println!("{HEADER}");
                        println!("{}", row(&data));
                        println!("{}", serde_json::to_string_pretty(&data)?);
                    }
                    None => println!(
                        "clocking {id} was deleted (version {})",
                        state.change_version
                    ),
                }
            }
            Ok(Outcome::Success)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_the_day_they_fall_on() {
        assert_eq!(time_of_day(0), "00:00");
        assert_eq!(time_of_day(510), "08:30");
        assert_eq!(time_of_day(1439), "23:59");
        assert_eq!(time_of_day(1800), "06:00 +1d");
        assert_eq!(time_of_day(2880), "00:00 +2d");
        assert_eq!(time_of_day(-30), "23:30 -1d");
        assert_eq!(time_of_day(-1440), "00:00 -1d");
    }

    #[test]
    fn rows_tolerate_missing_fields() {
        let data = serde_json::json!({"id": 7, "changeVersion": "00A", "date": "2026-01-05"});
        let text = row(&data);
        assert!(text.starts_with("7 "), "{text}");
        assert!(
            text.contains("2026-01-05") && text.contains("00A"),
            "{text}"
        );
        assert!(text.contains(" - "), "{text}");
    }
}
