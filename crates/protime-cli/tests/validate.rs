//! `protime validate` on hostile inputs: exit codes 0/1/2, FIFOs, devices and directories
//! refused without blocking, the size cap on files and standard input, and a JSON report
//! with one entry per input, errors included. Every run has a deadline and, on Linux, a
//! memory ceiling, so a regression fails the test instead of hanging it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long any run may take; the bad inputs must be refused well within it.
const DEADLINE: Duration = Duration::from_secs(2);
/// Most memory (peak resident set) a run may reach: the cap is 1 MiB, so anything near this
/// means an input is being read without bound.
const MEMORY_CEILING_KIB: u64 = 256 * 1024;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// The peak resident set of a running process, where `/proc` tells it.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `command` with `stdin` (or, when `input` is given, a pipe that a thread fills with
/// it, stopping quietly when the command closes its end early), and fails the test, killing
/// the child, if it takes longer than `DEADLINE` or its memory grows past
/// `MEMORY_CEILING_KIB`.
fn run(mut command: Command, stdin: Stdio, input: Option<Vec<u8>>) -> Run {
    let started = Instant::now();
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        stdin
    };
    let child = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = common::Running(child);
    let writer = input.map(|input| {
        let mut pipe = child.0.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        })
    });
    let mut stdout = child.0.stdout.take().unwrap();
    let mut stderr = child.0.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let pid = child.0.id();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        if let Some(peak) = peak_rss_kib(pid) {
            assert!(
                peak < MEMORY_CEILING_KIB,
                "protime validate reached {peak} KiB of memory"
            );
        }
        assert!(
            started.elapsed() < DEADLINE,
            "protime validate still running after {DEADLINE:?}: it blocks"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    if let Some(writer) = writer {
        writer.join().unwrap();
    }
    Run {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn command(args: &[&str]) -> Command {
    let mut all = vec!["validate"];
    all.extend_from_slice(args);
    common::protime(&all)
}

/// `protime validate args…` with nothing on standard input.
fn validate(args: &[&str]) -> Run {
    run(command(args), Stdio::null(), None)
}

/// `protime validate args…` with `input` on standard input.
fn validate_stdin(args: &[&str], input: Vec<u8>) -> Run {
    run(command(args), Stdio::null(), Some(input))
}

fn corpus(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/clocking-changes")
        .join(path)
        .display()
        .to_string()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("protime-validate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

fn assert_no_panic(run: &Run) {
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn a_valid_delivery_exits_0() {
    let run = validate(&[&corpus("valid/inout-all-fields.json")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("ok "), "{}", run.stdout);
    assert!(run.stdout.contains("08:30"), "{}", run.stdout);
}

#[test]
fn a_partial_delivery_is_valid_by_default_and_invalid_with_strict() {
    // The docs' delta example: only changeVersion, id and date.
    let partial =
        corpus("strict-only-invalid/R7-docs-track-changes-with-delta-insert-or-update.json");
    let run = validate(&[&partial]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("(no kind, no person, 2024-12-02, no time of day)"),
        "{}",
        run.stdout
    );
    let run = validate(&["--strict", &partial]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    for pointer in ["/data/person", "/data/timeOfDayInMinutes", "/data/kind"] {
        assert!(run.stdout.contains(pointer), "{pointer}: {}", run.stdout);
    }
    // A full body is valid under both.
    let full = corpus("valid/inout-all-fields.json");
    assert_eq!(validate(&["--strict", &full]).code, Some(0));
    // The JSON report says null for what the body did not carry.
    let run = validate(&["--json", &partial]);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let change = &report[0]["change"];
    assert_eq!(change["date"], "2024-12-02");
    assert!(change["kind"].is_null() && change["personId"].is_null());
    assert!(change["timeOfDayInMinutes"].is_null());
    assert_no_panic(&run);
}

#[test]
fn an_invalid_delivery_exits_1() {
    let run = validate(&[
        &corpus("valid/inout-minimal.json"),
        &corpus("invalid/R9-time-of-day-2881.json"),
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stdout.contains("INVALID"), "{}", run.stdout);
    assert!(run.stdout.contains("/data/timeOfDayInMinutes"));
    assert_no_panic(&run);
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = temp_dir("fifo");
    let fifo = dir.join("delivery.json");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // Nobody ever writes: opening it for reading would wait forever.
    let run = validate(&[&text(&fifo), &corpus("valid/inout-minimal.json")]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("not a regular file (a FIFO)"),
        "{}",
        run.stderr
    );
    // The command goes on after the FIFO.
    assert!(run.stdout.contains("ok "), "{}", run.stdout);
    assert_no_panic(&run);
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[test]
fn dev_zero_is_refused_quickly_with_bounded_memory() {
    let run = validate(&["/dev/zero"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("not a regular file (a character device)"),
        "{}",
        run.stderr
    );
    assert_no_panic(&run);
}

#[cfg(unix)]
#[test]
fn dev_zero_on_standard_input_stops_at_the_cap() {
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let run = run(command(&["-"]), Stdio::from(zero), None);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("larger than 1048576 bytes"),
        "{}",
        run.stderr
    );
    assert_no_panic(&run);
}

#[test]
fn a_directory_is_refused() {
    let dir = temp_dir("directory");
    let run = validate(&[&text(&dir)]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("not a regular file (a directory)"),
        "{}",
        run.stderr
    );
    assert_no_panic(&run);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_file_over_max_bytes_is_refused_and_one_at_the_cap_is_read() {
    let file = corpus("valid/inout-minimal.json");
    let size = std::fs::metadata(&file).unwrap().len();
    let at_cap = size.to_string();
    let under = (size - 1).to_string();
    let run = validate(&["--max-bytes", &at_cap, &file]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = validate(&["--max-bytes", &under, &file]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("larger than {under} bytes")),
        "{}",
        run.stderr
    );
    assert_no_panic(&run);
}

#[test]
fn the_default_cap_is_the_receivers_body_limit() {
    let dir = temp_dir("default-cap");
    let big = dir.join("big.json");
    // A well-formed delivery padded with whitespace to one byte over 1 MiB.
    let body = std::fs::read(corpus("valid/inout-minimal.json")).unwrap();
    let mut padded = body.clone();
    padded.resize(1024 * 1024 + 1, b' ');
    std::fs::write(&big, &padded).unwrap();
    let run = validate(&[&text(&big)]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("larger than 1048576 bytes"),
        "{}",
        run.stderr
    );
    // One byte less is within the limit, and valid.
    padded.truncate(1024 * 1024);
    std::fs::write(&big, &padded).unwrap();
    let run = validate(&[&text(&big)]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn max_bytes_zero_is_a_usage_error() {
    let run = validate(&["--max-bytes", "0", &corpus("valid/inout-minimal.json")]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--max-bytes"), "{}", run.stderr);
}

#[test]
fn json_reports_every_input_in_order_errors_included() {
    let missing = "/nonexistent/protime-delivery.json";
    let run = validate(&[
        "--json",
        &corpus("valid/minutes-all-2880.json"),
        &corpus("invalid/R15-reason-on-inout.json"),
        missing,
    ]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let entries = report.as_array().unwrap();
    assert_eq!(entries.len(), 3, "{report:#}");

    assert_eq!(entries[0]["status"], "valid");
    assert_eq!(entries[0]["valid"], true);
    assert_eq!(
        entries[0]["file"],
        corpus("valid/minutes-all-2880.json").as_str()
    );
    let change = &entries[0]["change"];
    assert_eq!(change["changeType"], "InsertOrUpdate");
    assert!(change["id"].is_i64(), "{change:#}");
    assert!(change["changeVersion"].is_string(), "{change:#}");
    assert!(change["kind"].is_string(), "{change:#}");
    assert!(change["personId"].is_i64(), "{change:#}");
    assert!(change["date"].is_string(), "{change:#}");
    // 2880 is 24:00 of the next day: 00:00 two days after the date.
    assert_eq!(change["timeOfDayInMinutes"], 2880);
    assert_eq!(change["timeOfDay"], "00:00");
    assert_eq!(change["dayOffset"], 2);

    assert_eq!(entries[1]["status"], "invalid");
    assert_eq!(entries[1]["valid"], false);
    assert_eq!(entries[1]["errors"][0]["pointer"], "/data/reason");
    assert_eq!(entries[1]["errors"][0]["code"], "kind.forbidden_field");

    assert_eq!(entries[2]["status"], "error");
    assert_eq!(entries[2]["file"], missing);
    let message = entries[2]["error"].as_str().unwrap();
    assert!(
        message.contains(&format!("cannot read {missing}")),
        "{message}"
    );
    assert_no_panic(&run);
}

#[test]
fn json_describes_a_delete_and_an_ordinary_time() {
    let run = validate(&[
        "--json",
        &corpus("valid/inout-all-fields.json"),
        &corpus("valid/delete-minimal.json"),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let inout = &report[0]["change"];
    assert_eq!(inout["id"], 19250);
    assert_eq!(inout["changeVersion"], "0000090200004BD0000A");
    assert_eq!(inout["kind"], "InOut");
    assert_eq!(inout["personId"], 1);
    assert_eq!(inout["date"], "2026-01-15");
    assert_eq!(inout["timeOfDay"], "08:30");
    assert_eq!(inout["dayOffset"], 0);
    assert_eq!(inout["timeOfDayInMinutes"], 510);
    assert_eq!(inout["status"], "Active");
    assert_eq!(inout["softDeleted"], false);
    let delete = &report[1]["change"];
    assert_eq!(delete["changeType"], "Delete");
    assert!(delete["id"].is_i64());
    assert!(delete["changeVersion"].is_string());
    assert!(delete.get("kind").is_none(), "{delete:#}");
}

#[test]
fn text_mode_goes_on_after_an_unreadable_input() {
    let run = validate(&[
        "/nonexistent/protime-delivery.json",
        &corpus("invalid/R9-time-of-day-2881.json"),
        &corpus("valid/delete-minimal.json"),
    ]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("error: cannot read /nonexistent/protime-delivery.json"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("INVALID"), "{}", run.stdout);
    assert!(run.stdout.contains("Delete clocking"), "{}", run.stdout);
}

#[test]
fn standard_input_over_the_cap_is_refused() {
    let body = std::fs::read(corpus("valid/inout-minimal.json")).unwrap();
    let cap = body.len().to_string();
    // Exactly the cap: read and valid.
    let run = validate_stdin(&["--max-bytes", &cap, "-"], body.clone());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // One byte more: refused.
    let mut over = body;
    over.push(b' ');
    let run = validate_stdin(&["--max-bytes", &cap, "-"], over);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "cannot read standard input: larger than {cap} bytes"
        )),
        "{}",
        run.stderr
    );
    // Far more than the cap (5 MiB), with the default cap.
    let run = validate_stdin(&["-"], vec![b' '; 5 * 1024 * 1024]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("larger than 1048576 bytes"),
        "{}",
        run.stderr
    );
    assert_no_panic(&run);
}

#[test]
fn standard_input_is_read_once() {
    let run = validate_stdin(
        &["-", "-"],
        br#"{"changeType":"Delete","data":{"changeVersion":"0000090200004BD0000C","id":1001}}"#
            .to_vec(),
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stdout.contains("Delete clocking 1001"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("already read"), "{}", run.stderr);
}
