//! `protime trigger`: one change on demand in a running `protime sandbox`, delivered to its
//! webhooks — like `stripe trigger`. Prints what was sent.

use std::time::Duration;

use anyhow::Context as _;
use protime_sandbox::{TriggerAction, TriggerKind, TriggerRequest, Triggered};

use crate::Outcome;

/// How long the sandbox may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most of the sandbox's answer that is read (it is one small JSON object).
const MAX_ANSWER: usize = 1 << 20;

/// Arguments of `protime trigger`.
#[derive(Debug, clap::Args)]
pub(crate) struct TriggerArgs {
    /// What to trigger.
    #[arg(value_enum)]
    action: Action,
    /// The clocking to update, delete or send partially or invalidly (a random live one
    /// when absent).
    #[arg(long)]
    id: Option<u64>,
    /// The kind of an inserted clocking (random when absent).
    #[arg(long, value_enum)]
    kind: Option<Kind>,
    /// The running sandbox (`protime sandbox` prints its URL).
    #[arg(
        long,
        env = "PROTIME_BASE_URL",
        default_value = "http://127.0.0.1:8090",
        value_name = "URL"
    )]
    sandbox: String,
    /// Print what was delivered as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Actions selectable on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Action {
    /// A new clocking.
    Insert,
    /// An edit of a clocking (a new time).
    Update,
    /// A hard delete.
    Delete,
    /// An edit delivered with only `changeVersion`, `id` and `date`, as in the docs'
    /// examples.
    Partial,
    /// A delivery no profile accepts (`timeOfDayInMinutes` 4000): a dead letter.
    Invalid,
}

/// Kinds selectable on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    /// `InOut`.
    InOut,
    /// `Reason`.
    Reason,
    /// `Activity`.
    Activity,
    /// `ActivityEnd`.
    ActivityEnd,
}

fn request(args: &TriggerArgs) -> anyhow::Result<TriggerRequest> {
    let action = match args.action {
        Action::Insert => TriggerAction::Insert,
        Action::Update => TriggerAction::Update,
        Action::Delete => TriggerAction::Delete,
        Action::Partial => TriggerAction::Partial,
        Action::Invalid => TriggerAction::Invalid,
    };
    let mut request = TriggerRequest::new(action);
    if let Some(id) = args.id {
        anyhow::ensure!(
            !matches!(args.action, Action::Insert),
            "--id is for update, delete, partial and invalid: an insert makes a new clocking"
        );
        request = request.id(id);
    }
    if let Some(kind) = args.kind {
        anyhow::ensure!(
            matches!(args.action, Action::Insert),
            "--kind is for insert only"
        );
        request = request.kind(match kind {
            Kind::InOut => TriggerKind::InOut,
            Kind::Reason => TriggerKind::Reason,
            Kind::Activity => TriggerKind::Activity,
            Kind::ActivityEnd => TriggerKind::ActivityEnd,
        });
    }
    Ok(request)
}

/// The error message of a refused trigger: the sandbox's own words when it gave them.
fn refusal(status: reqwest::StatusCode, body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| {
            value
                .pointer("/error/message")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        });
    match (status.as_u16(), message) {
        (404, None) => "this sandbox has no trigger route: is --sandbox a `protime sandbox` (not a real tenant)?".to_owned(),
        (_, Some(message)) => message,
        (status, None) => format!("the sandbox answered HTTP {status}"),
    }
}

pub(crate) async fn run(args: TriggerArgs) -> anyhow::Result<Outcome> {
    let request = request(&args)?;
    let url = format!("{}/sandbox/trigger", args.sandbox.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .context("cannot make an HTTP client")?;
    let mut response = client
        .post(&url)
        .json(&request)
        .send()
        .await
        .map_err(|error| {
            anyhow::anyhow!(
                "cannot reach the sandbox at {} ({}): start one with `protime sandbox`, or give its URL with --sandbox",
                args.sandbox,
                if error.is_timeout() { "timed out" } else if error.is_connect() { "connection refused" } else { "request failed" }
            )
        })?;
    let status = response.status();
    // The answer is one small JSON object: read at most MAX_ANSWER bytes of it.
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .context("cannot read the sandbox's answer")?
    {
        anyhow::ensure!(
            body.len() + chunk.len() <= MAX_ANSWER,
            "the sandbox's answer is larger than {MAX_ANSWER} bytes"
        );
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        anyhow::bail!("{}", refusal(status, &body));
    }
    let triggered: Triggered =
        serde_json::from_slice(&body).context("the sandbox's answer is not a trigger result")?;
    if args.json {
        println!("{}", serde_json::to_string(&triggered)?);
    } else {
        println!(
            "{} of clocking {} (version {}), delivered to {} webhook(s):",
            format!("{:?}", triggered.action).to_lowercase(),
            triggered.id,
            triggered.change_version,
            triggered.subscribers
        );
        println!("{}", serde_json::to_string_pretty(&triggered.body)?);
    }
    if triggered.subscribers == 0 {
        eprintln!(
            "warning: the sandbox has no enabled clockings webhook, so nothing was delivered: run `protime sync` or `protime webhooks create` against it first"
        );
    }
    Ok(Outcome::Success)
}
