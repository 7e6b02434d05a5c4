//! `protime validate FILE…`: the model's rules on delivery bodies, as a human report or JSON.
//!
//! Every input gets a verdict — valid, invalid, or an error when it cannot be read — and the
//! command goes on after an unreadable one. Inputs are read defensively: only regular files
//! (checked before and again after opening, so a FIFO is never opened and a device never
//! read) and standard input, and never more than `--max-bytes` + 1 bytes of either, so that
//! no input can block the command or exhaust its memory.
//!
//! Exit codes: 0 when every input is valid; 1 when at least one is invalid and every one
//! could be read; 2 when any input could not be read (or on a usage error, from clap).

use std::fs::{FileType, Metadata};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use protime_model::{
    Clocking, ClockingChange, ClockingStatus, MinuteOfDay, Profile, ValidationErrors,
    parse_delivery_with,
};
use protime_webhooks::receiver::ReceiverConfig;
use serde_json::{Value, json};

use crate::Outcome;

/// Arguments of `protime validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    /// Delivery bodies to check: regular files (a FIFO, directory, device or socket is
    /// refused without being read), or `-` for standard input (once). Every input is
    /// reported, in the order given, even after one that cannot be read.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Print a JSON report instead of text: an array with one object per input, in the order
    /// given, each with `file` and `status` (`valid`, `invalid` or `error`) and, by status,
    /// `change` (the parsed change), `errors` (the violations, each with its JSON Pointer and
    /// code) or `error` (why the input could not be read).
    #[arg(long)]
    json: bool,
    /// Validate with the strict profile: an `InsertOrUpdate` must also carry `person`,
    /// `date`, `timeOfDayInMinutes` and `kind`. By default only what the Protime docs require
    /// (`changeType`, `data.id`, `data.changeVersion`) is mandatory, and every other field is
    /// checked when present (docs/validation-rules.md).
    #[arg(long)]
    strict: bool,
    /// Largest input accepted, in bytes; a larger one is an error (exit 2) and at most N + 1
    /// of its bytes are read. The default is the receiver's body limit (1 MiB), so that
    /// `validate` accepts exactly the sizes `protime receive` does.
    #[arg(
        long,
        value_name = "N",
        default_value_t = default_max_bytes(),
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    max_bytes: u64,
}

/// The receiver's body limit: the largest delivery `protime receive` accepts.
fn default_max_bytes() -> u64 {
    u64::try_from(ReceiverConfig::default().body_limit).unwrap_or(u64::MAX)
}

/// What one input turned out to be.
enum Verdict {
    Valid(ClockingChange),
    Invalid(ValidationErrors),
    /// The input could not be read; the message says why.
    Error(String),
}

/// What a file is, for the "not a regular file" message.
fn describe(file_type: FileType) -> &'static str {
    if file_type.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    "neither a file nor a directory"
}

/// Refuses anything but a regular file, and a regular file known to be over the cap.
fn check_metadata(metadata: &Metadata, cap: u64) -> Result<(), String> {
    if !metadata.is_file() {
        return Err(format!(
            "not a regular file ({})",
            describe(metadata.file_type())
        ));
    }
    if metadata.len() > cap {
        return Err(too_large(cap));
    }
    Ok(())
}

fn too_large(cap: u64) -> String {
    format!("larger than {cap} bytes (--max-bytes)")
}

/// Reads at most `cap` + 1 bytes; more than `cap` is an error.
fn read_capped(reader: impl Read, cap: u64, size_hint: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(usize::try_from(size_hint.min(cap)).unwrap_or(0));
    reader
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| error.to_string())?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > cap {
        return Err(too_large(cap));
    }
    Ok(bytes)
}

/// A regular file, checked before it is opened (so a FIFO is never opened) and again
/// through the open handle (so a file swapped for something else in between is still
/// refused before a single byte is read). On Unix the open itself does not wait
/// (`O_NONBLOCK`): a FIFO swapped in between the check and the open cannot block it.
fn read_file(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    let before = std::fs::metadata(path).map_err(|error| error.to_string())?;
    check_metadata(&before, cap)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|error| error.to_string())?;
    let after = file.metadata().map_err(|error| error.to_string())?;
    check_metadata(&after, cap)?;
    read_capped(file, cap, after.len())
}

fn read_input(path: &Path, cap: u64, stdin_read: &mut bool) -> Result<Vec<u8>, String> {
    if path.as_os_str() == "-" {
        if std::mem::replace(stdin_read, true) {
            return Err("standard input was already read (give `-` once)".to_owned());
        }
        read_capped(std::io::stdin().lock(), cap, 0)
            .map_err(|reason| format!("cannot read standard input: {reason}"))
    } else {
        read_file(path, cap).map_err(|reason| format!("cannot read {}: {reason}", path.display()))
    }
}

/// `HH:MM` on the clocking's day given by [`MinuteOfDay::day_offset`].
fn wall_clock(minute: MinuteOfDay) -> String {
    minute.wall_clock().format("%H:%M").to_string()
}

fn day_text(minute: MinuteOfDay) -> &'static str {
    match minute.day_offset() {
        -1 => " previous day",
        0 => "",
        1 => " next day",
        _ => " +2 days",
    }
}

/// When a clocking happened, as far as it says: `2026-01-15 08:30, 510 min`, or with `no
/// date` / `no time of day` for what it did not carry.
fn when(clocking: &Clocking) -> String {
    let time = clocking
        .time_of_day
        .map(|t| format!("{}{}, {t} min", wall_clock(t), day_text(t)));
    match (clocking.date, time) {
        (Some(date), Some(time)) => format!("{date} {time}"),
        (Some(date), None) => format!("{date}, no time of day"),
        (None, Some(time)) => format!("no date, {time}"),
        (None, None) => "no date, no time of day".to_owned(),
    }
}

fn summary(change: &ClockingChange) -> String {
    match change {
        ClockingChange::InsertOrUpdate(clocking) => format!(
            "InsertOrUpdate clocking {} ({}, {}, {}{})",
            clocking.id,
            clocking.kind.as_ref().map_or("no kind", |kind| kind.name()),
            clocking
                .person
                .as_ref()
                .map_or_else(|| "no person".to_owned(), |p| format!("person {}", p.id)),
            when(clocking),
            if clocking.is_deleted() {
                ", soft-deleted"
            } else {
                ""
            }
        ),
        ClockingChange::Delete { id, .. } => format!("Delete clocking {id}"),
    }
}

/// The parsed change as structured JSON, with the wire names of its fields (`null` for a
/// field the body did not carry).
fn change_json(change: &ClockingChange) -> Value {
    match change {
        ClockingChange::InsertOrUpdate(clocking) => json!({
            "changeType": change.change_type().name(),
            "id": clocking.id.get(),
            "changeVersion": clocking.change_version.as_str(),
            "kind": clocking.kind.as_ref().map(|kind| kind.name()),
            "personId": clocking.person.as_ref().map(|p| p.id.get()),
            "date": clocking.date.map(|date| date.to_string()),
            "timeOfDay": clocking.time_of_day.map(wall_clock),
            "dayOffset": clocking.time_of_day.map(MinuteOfDay::day_offset),
            "timeOfDayInMinutes": clocking.time_of_day.map(MinuteOfDay::get),
            "status": clocking.status.map(ClockingStatus::name),
            "softDeleted": clocking.is_deleted(),
        }),
        ClockingChange::Delete { id, change_version } => json!({
            "changeType": change.change_type().name(),
            "id": id.get(),
            "changeVersion": change_version.as_str(),
        }),
    }
}

/// One entry of the JSON report. `valid` (true exactly when `status` is `valid`) is kept for
/// readers of the earlier report, which had no `status`.
fn entry_json(name: &str, verdict: &Verdict) -> Value {
    match verdict {
        Verdict::Valid(change) => json!({
            "file": name, "status": "valid", "valid": true, "change": change_json(change),
        }),
        Verdict::Invalid(errors) => json!({
            "file": name, "status": "invalid", "valid": false, "errors": errors,
        }),
        Verdict::Error(message) => json!({
            "file": name, "status": "error", "valid": false, "error": message,
        }),
    }
}

/// The text report of one input: verdicts on standard output, read errors on standard error
/// (as `error: cannot read …`), each in the order of the inputs.
fn write_text(out: &mut impl Write, name: &str, verdict: &Verdict) -> std::io::Result<()> {
    match verdict {
        Verdict::Valid(change) => writeln!(out, "ok       {name}: {}", summary(change)),
        Verdict::Invalid(errors) => {
            writeln!(
                out,
                "INVALID  {name}: {} violation{}",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            )?;
            for error in errors.errors() {
                writeln!(out, "         {error}")?;
            }
            Ok(())
        }
        Verdict::Error(message) => {
            out.flush()?;
            eprintln!("error: {message}");
            Ok(())
        }
    }
}

fn report(args: &ValidateArgs) -> anyhow::Result<Outcome> {
    let mut stdout = std::io::stdout().lock();
    let mut stdin_read = false;
    let mut any_invalid = false;
    let mut any_error = false;
    let mut entries = Vec::new();
    let profile = if args.strict {
        Profile::Strict
    } else {
        Profile::Documented
    };
    for path in &args.files {
        let name = path.display().to_string();
        let verdict = match read_input(path, args.max_bytes, &mut stdin_read) {
            Ok(bytes) => match parse_delivery_with(&bytes, profile) {
                Ok(change) => Verdict::Valid(change),
                Err(errors) => Verdict::Invalid(errors),
            },
            Err(message) => Verdict::Error(message),
        };
        any_invalid |= matches!(verdict, Verdict::Invalid(_));
        any_error |= matches!(verdict, Verdict::Error(_));
        if args.json {
            entries.push(entry_json(&name, &verdict));
        } else {
            write_text(&mut stdout, &name, &verdict)?;
        }
    }
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &entries)?;
        writeln!(stdout)?;
    }
    stdout.flush()?;
    Ok(if any_error {
        Outcome::Incomplete
    } else if any_invalid {
        Outcome::Negative
    } else {
        Outcome::Success
    })
}

pub(crate) fn run(args: &ValidateArgs) -> anyhow::Result<Outcome> {
    // Exit 1 means "invalid" only: a failure to write the report (a closed pipe) is exit 2.
    Ok(report(args).unwrap_or_else(|error| {
        eprintln!("error: cannot write the report: {error:#}");
        Outcome::Incomplete
    }))
}
