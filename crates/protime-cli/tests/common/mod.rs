//! What the CLI's process tests share: a child that dies with the test, its standard error
//! read line by line, the URL it announces, a free port, and a SIGTERM that must end it.
#![allow(dead_code, clippy::unwrap_used, clippy::panic, missing_docs)]

pub(crate) mod load;

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the child when the test ends, whichever way.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A started `protime` process: the child, the URL from its first `http://` line, and the
/// rest of its standard error, line by line.
pub(crate) struct Started {
    pub(crate) child: Running,
    pub(crate) url: String,
    pub(crate) lines: mpsc::Receiver<String>,
}

/// A fresh, empty directory for one test: `protime-test-{name}-{pid}` in the temp dir.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("protime-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Points `command` at `sandbox`: its URLs and client credentials, a test `user_agent`, and
/// no log filter inherited from the environment.
pub(crate) fn with_sandbox_env<'a>(
    command: &'a mut Command,
    sandbox: &protime_sandbox::RunningSandbox,
    user_agent: &str,
) -> &'a mut Command {
    let credentials = sandbox.client_credentials();
    command
        .env("PROTIME_BASE_URL", sandbox.base_url())
        .env("PROTIME_TOKEN_URL", sandbox.token_url())
        .env("PROTIME_CLIENT_ID", &credentials.client_id)
        .env("PROTIME_CLIENT_SECRET", &credentials.client_secret)
        .env("PROTIME_USER_AGENT", user_agent)
        .env_remove("PROTIME_LOG")
}

/// A command's standard output read as JSON lines.
pub(crate) fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// `protime` with `args`.
pub(crate) fn protime(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_protime"));
    command.args(args).env_remove("PROTIME_LOG");
    command
}

/// Spawns `command` with standard error piped into a channel (read to the end even when
/// nobody listens any more, so the child never blocks on a full pipe), and waits up to 10 s
/// for the line that names its `http://` URL.
pub(crate) fn start(mut command: Command) -> Started {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let url = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no URL announced; saw:\n{}", seen.join("\n")));
        if let Some(url) = url_in(&line) {
            break url;
        }
        seen.push(line);
    };
    Started {
        child: Running(child),
        url,
        lines,
    }
}

/// The child's standard error, line by line.
pub(crate) fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    lines
}

/// The first `http://…` word of `line`.
pub(crate) fn url_in(line: &str) -> Option<String> {
    line.split_whitespace()
        .find(|word| word.starts_with("http://"))
        .map(str::to_owned)
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends SIGTERM and waits up to `limit` for the child to exit; panics if it does not.
pub(crate) fn terminate(child: &mut Running, limit: Duration) -> ExitStatus {
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "still running {limit:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `limit` for a line of `lines` containing `text`; returns every line seen
/// until then, the matching one last.
pub(crate) fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    text: &str,
    limit: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {text:?} within {limit:?}; saw:\n{}", seen.join("\n")));
        let found = line.contains(text);
        seen.push(line);
        if found {
            return seen;
        }
    }
}

/// The `host:port` of an `http://host:port/…` URL.
pub(crate) fn address_of(url: &str) -> String {
    let rest = url.trim_start_matches("http://");
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// Changes made in `sandbox` all along (3 every 50 ms) until the returned sender is told
/// `true`; the task answers how many were made.
pub(crate) fn changes_all_along(
    sandbox: &protime_sandbox::Sandbox,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<usize>,
) {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let sandbox = sandbox.clone();
    let generator = tokio::spawn(async move {
        let mut made = 0;
        while !*stopped.borrow() {
            made += sandbox.generate(3).len();
            let _ = tokio::time::timeout(Duration::from_millis(50), stopped.changed()).await;
        }
        made
    });
    (stop, generator)
}

/// Each current clocking of `sandbox`: id → version.
pub(crate) fn sandbox_versions(
    sandbox: &protime_sandbox::Sandbox,
) -> std::collections::BTreeMap<i64, String> {
    sandbox
        .current_clockings()
        .into_iter()
        .map(|c| {
            let c = protime_client::convert::clocking_from_raw(c).unwrap();
            (c.id.get(), c.change_version.as_str().to_owned())
        })
        .collect()
}

/// How far `stored` (id → version) is from `expected`: the ids whose stored version differs
/// (or that are missing) plus the stored ids not expected.
pub(crate) fn differences(
    expected: &std::collections::BTreeMap<i64, String>,
    stored: &std::collections::BTreeMap<i64, String>,
) -> usize {
    expected
        .iter()
        .filter(|(id, version)| stored.get(id) != Some(version))
        .count()
        + stored
            .keys()
            .filter(|id| !expected.contains_key(id))
            .count()
}

/// How far the SQLite store at `store` is from `sandbox`'s current clockings (see
/// [`differences`]); with the sizes of both, for messages.
pub(crate) fn store_differences(
    sandbox: &protime_sandbox::Sandbox,
    store: &std::path::Path,
) -> (usize, usize, usize) {
    let expected = sandbox_versions(sandbox);
    let opened = protime_store_sqlite::SqliteStore::open(store).unwrap();
    let stored: std::collections::BTreeMap<i64, String> = opened
        .clockings()
        .unwrap()
        .into_iter()
        .map(|c| (c.id.get(), c.change_version.as_str().to_owned()))
        .collect();
    drop(opened);
    (
        differences(&expected, &stored),
        stored.len(),
        expected.len(),
    )
}
