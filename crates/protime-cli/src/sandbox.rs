//! `protime sandbox`: the local Protime stand-in, on loopback, until Ctrl-C.

use std::time::Duration;

use anyhow::Context as _;
use protime_sandbox::{ReorderConfig, Sandbox, SandboxConfig};

use crate::Outcome;

/// A User-Agent the client accepts, printed for the next commands.
const SANDBOX_USER_AGENT: &str = "MyIntegration/1.0 (sandbox)";

/// Arguments of `protime sandbox`.
#[derive(Debug, clap::Args)]
pub(crate) struct SandboxArgs {
    /// Port on 127.0.0.1 (0 picks a free one). Not 8080, which `protime receive` and
    /// `protime serve` use by default.
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// Changes per second made by the activity generator (0: none; use the API instead).
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// People whose clockings are seeded.
    #[arg(long, default_value_t = 10)]
    people: u32,
    /// Days of clockings seeded.
    #[arg(long, default_value_t = 14)]
    days: u32,
    /// Probability (0..=1) that a delivery is sent twice.
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Hold back deliveries and send them in shuffled batches.
    #[arg(long)]
    reorder: bool,
    /// Probability (0..=1) that a delivery is lost on the way: never sent, never retried, the
    /// webhook left enabled (to try `protime serve` with reconciliation).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    lose_deliveries: f64,
    /// A delta expires this many seconds after its last request (its token then gets `410
    /// Gone`); Protime's is 72 hours.
    #[arg(long, default_value_t = 72 * 3600, value_name = "SECONDS")]
    delta_ttl_seconds: u64,
    /// Validity of new webhooks, in seconds.
    #[arg(long, default_value_t = 30 * 24 * 3600)]
    webhook_validity: u64,
    /// Serve list, get and delta items shaped like the docs' examples: delta items with only
    /// `changeVersion`, `id` and `date`, listed and fetched clockings without
    /// `changeVersion` (to try a sync against what the docs show).
    #[arg(long)]
    example_shaped_items: bool,
    /// How deliveries are signed (a stand-in for the scheme Protime really uses, e.g. to try
    /// `protime doctor signature`).
    #[command(flatten)]
    signature: crate::signature_settings::SignatureFlags,
}

pub(crate) fn config(args: &SandboxArgs) -> anyhow::Result<SandboxConfig> {
    if !(0.0..=1.0).contains(&args.duplicates) {
        anyhow::bail!(
            "--duplicates must be between 0 and 1, got {}",
            args.duplicates
        );
    }
    if !(0.0..=1.0).contains(&args.lose_deliveries) {
        anyhow::bail!(
            "--lose-deliveries must be between 0 and 1, got {}",
            args.lose_deliveries
        );
    }
    if !args.rate.is_finite() || args.rate < 0.0 {
        anyhow::bail!(
            "--rate must be 0 or more changes per second, got {}",
            args.rate
        );
    }
    Ok(SandboxConfig {
        port: args.port,
        seed: args.seed,
        people: args.people,
        days: args.days,
        duplicate_probability: args.duplicates,
        lose_probability: args.lose_deliveries,
        delta_token_ttl: Duration::from_secs(args.delta_ttl_seconds),
        reorder: args.reorder.then(ReorderConfig::default),
        example_shaped_items: args.example_shaped_items,
        webhook_validity: Duration::from_secs(args.webhook_validity),
        generate_every: (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate)),
        signature_scheme: args.signature.scheme()?,
        ..SandboxConfig::default()
    })
}

pub(crate) async fn run(args: SandboxArgs) -> anyhow::Result<Outcome> {
    let running = Sandbox::start(config(&args)?).await.with_context(|| {
        format!(
            "cannot start the sandbox on 127.0.0.1:{} (is the port in use?)",
            args.port
        )
    })?;
    let client = running.client_credentials();
    let settings = [
        ("PROTIME_BASE_URL", running.base_url()),
        ("PROTIME_TOKEN_URL", running.token_url()),
        ("PROTIME_CLIENT_ID", client.client_id.clone()),
        ("PROTIME_CLIENT_SECRET", client.client_secret.clone()),
        ("PROTIME_USER_AGENT", SANDBOX_USER_AGENT.to_owned()),
    ];
    println!("Protime sandbox on {}", running.base_url());
    for (name, value) in &settings {
        println!("  {name}={value}");
    }
    println!("  (sandbox credentials; webhooks may use http:// destinations here)");
    println!("In a shell:");
    let exports: Vec<String> = settings
        .iter()
        .map(|(name, value)| format!("{name}='{value}'"))
        .collect();
    println!("  export {}", exports.join(" "));
    let config = running.sandbox().config();
    let first = config.start_date;
    let last = first + chrono::Days::new(u64::from(config.days.saturating_sub(1)));
    let people = running.sandbox().person_ids();
    println!(
        "Data: {} people (ids {}..{}), clockings dated {first}..{last}: e.g. `protime sync --from {first} --to {last} …`",
        people.len(),
        people.iter().min().copied().unwrap_or_default(),
        people.iter().max().copied().unwrap_or_default(),
    );
    println!("Ctrl-C stops it.");
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    let stats = running.stats();
    running.shutdown().await;
    eprintln!(
        "stopped: {} deliveries acknowledged, {} retried, {} failed, {} lost on purpose",
        stats.delivered, stats.retried, stats.failed, stats.lost
    );
    Ok(Outcome::Success)
}
