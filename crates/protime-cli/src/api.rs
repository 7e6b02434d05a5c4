//! `protime webhooks …` and `protime sync`: talk to a Protime tenant (or a sandbox) with the
//! ergonomic client, configured by flags or environment variables.

use std::path::PathBuf;

use anyhow::Context as _;
use chrono::NaiveDate;
use protime_client::ExposeSecret as _;
use protime_client::{
    ClientSecret, ClockingsFilter, Environment, ExternalReference, ProtimeClient, WebhookFilter,
};
use protime_raw::types::{CollectionName, WebhookStatus};
use protime_webhooks::signature::{SignatureScheme, Verifier, WebhookKey};
use protime_webhooks::subscription::Subscription;

use crate::Outcome;
use crate::store::StoreLocation;

/// Where and as whom to connect.
#[derive(Debug, clap::Args)]
pub(crate) struct Connection {
    /// Tenant name (the subdomain of your myProtime URL).
    #[arg(long, env = "PROTIME_TENANT", conflicts_with = "base_url")]
    tenant: Option<String>,
    /// Environment of the tenant.
    #[arg(long, value_enum, env = "PROTIME_ENVIRONMENT", default_value_t = Env::Production)]
    environment: Env,
    /// API base URL instead of a tenant, e.g. a local sandbox `http://127.0.0.1:8080`.
    #[arg(long, env = "PROTIME_BASE_URL")]
    base_url: Option<String>,
    /// Token URL (client-credentials grant) when `--base-url` is used.
    #[arg(long, env = "PROTIME_TOKEN_URL")]
    token_url: Option<String>,
    /// OAuth2 client id.
    #[arg(long, env = "PROTIME_CLIENT_ID")]
    client_id: Option<String>,
    /// OAuth2 client secret (prefer the environment variable).
    #[arg(long, env = "PROTIME_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Mandatory User-Agent, `ServiceName/Version (Company Name)`.
    #[arg(long, env = "PROTIME_USER_AGENT")]
    user_agent: Option<String>,
    /// Allow `http://` webhook destinations (local testing against a sandbox only).
    #[arg(long)]
    allow_insecure_destinations: bool,
}

/// Environments selectable on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Env {
    /// `<tenant>.myprotime.eu`.
    Production,
    /// `<tenant>.myprotimesandbox.eu`.
    Sandbox,
}

/// What a Protime client needs, from flags or from a configuration file.
pub(crate) struct ClientSettings<'a> {
    pub(crate) tenant: Option<&'a str>,
    pub(crate) sandbox_environment: bool,
    pub(crate) base_url: Option<&'a str>,
    pub(crate) token_url: Option<&'a str>,
    pub(crate) client_id: Option<&'a str>,
    pub(crate) client_secret: Option<&'a str>,
    pub(crate) user_agent: Option<&'a str>,
    pub(crate) allow_insecure_destinations: bool,
    /// How the clockings the client reads (sync pages) are validated.
    pub(crate) profile: protime_model::Profile,
}

/// A client from `settings`, or one clear error naming what is missing.
pub(crate) fn build_client(settings: &ClientSettings<'_>) -> anyhow::Result<ProtimeClient> {
    let (Some(client_id), Some(secret)) = (settings.client_id, settings.client_secret) else {
        anyhow::bail!(
            "missing credentials: set --client-id and --client-secret (or PROTIME_CLIENT_ID and PROTIME_CLIENT_SECRET)"
        );
    };
    let user_agent = settings.user_agent.context(
        "missing User-Agent: set --user-agent or PROTIME_USER_AGENT to \"ServiceName/Version (Company Name)\"",
    )?;
    let mut builder = ProtimeClient::builder()
        .client_credentials(
            client_id,
            ClientSecret::new(secret),
            ProtimeClient::WEBHOOK_SCOPES,
        )
        .user_agent(user_agent)
        .allow_insecure_destinations(settings.allow_insecure_destinations)
        .profile(settings.profile);
    builder = match (settings.tenant, settings.base_url) {
        (_, Some(base_url)) => {
            let token_url = settings
                .token_url
                .context("--base-url needs --token-url (or PROTIME_TOKEN_URL)")?;
            builder.base_url(base_url).token_url(token_url)
        }
        (Some(tenant), None) => builder.tenant(
            tenant,
            if settings.sandbox_environment {
                Environment::Sandbox
            } else {
                Environment::Production
            },
        ),
        (None, None) => anyhow::bail!(
            "missing tenant: set --tenant (or PROTIME_TENANT), or --base-url and --token-url"
        ),
    };
    Ok(builder.build()?)
}

impl Connection {
    pub(crate) fn client(&self) -> anyhow::Result<ProtimeClient> {
        self.client_with_profile(protime_model::Profile::Documented)
    }

    /// A client that validates the clockings it reads under `profile`.
    pub(crate) fn client_with_profile(
        &self,
        profile: protime_model::Profile,
    ) -> anyhow::Result<ProtimeClient> {
        build_client(&ClientSettings {
            tenant: self.tenant.as_deref(),
            sandbox_environment: matches!(self.environment, Env::Sandbox),
            base_url: self.base_url.as_deref(),
            token_url: self.token_url.as_deref(),
            client_id: self.client_id.as_deref(),
            client_secret: self.client_secret.as_deref(),
            user_agent: self.user_agent.as_deref(),
            allow_insecure_destinations: self.allow_insecure_destinations,
            profile,
        })
    }
}

/// `protime webhooks …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum WebhooksCommand {
    /// Create a clockings webhook; prints its id, expiry and the key (returned only once).
    Create {
        #[command(flatten)]
        connection: Connection,
        /// HTTPS URL Protime POSTs each change to.
        #[arg(long)]
        destination: String,
        /// External reference `collection,reference`, e.g. `people,@badge-number`; repeatable.
        #[arg(long = "external-reference", value_name = "COLLECTION,REFERENCE")]
        external_references: Vec<String>,
        /// Add the key to this file (mode 600; keys already there are kept) instead of
        /// printing it; `protime receive --key-file` reads it.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// Create it even when an enabled clockings webhook already delivers to the same
        /// destination (by default that is refused: the receiver there — e.g. a running
        /// `protime serve` — does not have the new key and would refuse its deliveries).
        #[arg(long)]
        allow_second: bool,
        /// Print one JSON object: `id`, `validUntil`, and `key` (or `keyFile` and
        /// `keyFingerprint` with --key-file).
        #[arg(long)]
        json: bool,
    },
    /// List webhooks.
    List {
        #[command(flatten)]
        connection: Connection,
        /// Only webhooks with this status.
        #[arg(long, value_enum)]
        status: Option<Status>,
        /// One JSON object per line, each webhook as Protime returns it.
        #[arg(long)]
        json: bool,
    },
    /// Show one webhook.
    Get {
        #[command(flatten)]
        connection: Connection,
        /// Webhook id.
        id: String,
        /// The webhook as one JSON object, as Protime returns it.
        #[arg(long)]
        json: bool,
    },
    /// Delete (soft) a webhook.
    Delete {
        #[command(flatten)]
        connection: Connection,
        /// Webhook id.
        id: String,
        /// Print `{"deleted": ID}`.
        #[arg(long)]
        json: bool,
    },
}

/// Webhook statuses selectable on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Status {
    /// Delivering.
    Enabled,
    /// Expired or given up.
    Disabled,
}

/// A client error in the CLI's words: what failed, and the flag or command that fixes it.
pub(crate) fn explained(error: protime_client::Error) -> anyhow::Error {
    use protime_client::Error;
    let fix = match &error {
        Error::Token { status: None, .. } => {
            "check the token URL (--tenant and --environment, or --token-url; PROTIME_TOKEN_URL) and the network"
        }
        Error::Token { .. } => {
            "check --client-id and --client-secret (PROTIME_CLIENT_ID, PROTIME_CLIENT_SECRET) and the token URL (--tenant, or --token-url)"
        }
        Error::Api {
            operation: "get_webhook" | "delete_webhook",
            status: 404,
            ..
        } => "`protime webhooks list` shows the webhooks there are",
        Error::Api { status: 401, .. } => {
            "check --client-id and --client-secret (PROTIME_CLIENT_ID, PROTIME_CLIENT_SECRET)"
        }
        Error::Api { status: 403, .. } => {
            "the API client lacks a scope: it needs connector-protimeapi-webhooks.read/.write and connector-protimeapi-clockings.read"
        }
        Error::Transport { .. } => {
            "check --tenant and --environment, or --base-url (PROTIME_TENANT, PROTIME_BASE_URL), and the network"
        }
        Error::RateLimited { .. } => "wait and run the command again",
        _ => return error.into(),
    };
    anyhow::anyhow!("{error}; {fix}")
}

fn external_reference(text: &str) -> anyhow::Result<ExternalReference> {
    let (collection, reference) = text
        .split_once(',')
        .with_context(|| format!("--external-reference {text:?} is not `collection,reference`"))?;
    Ok(ExternalReference::new(collection.trim(), reference.trim()))
}

fn print_webhook(webhook: &protime_raw::types::Webhook, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(webhook)?);
        return Ok(());
    }
    println!(
        "{}  {:<9} valid until {}  {} -> {}",
        webhook.id,
        webhook.status,
        webhook.valid_until,
        webhook.collection_name,
        webhook.destination_url
    );
    Ok(())
}

/// The enabled clockings webhooks that deliver to `destination`.
pub(crate) async fn enabled_webhooks_to(
    client: &protime_client::ProtimeClient,
    destination: &str,
) -> Result<Vec<protime_raw::types::Webhook>, protime_client::Error> {
    let filter = WebhookFilter::default()
        .collection(CollectionName::Clockings)
        .status(WebhookStatus::Enabled);
    let mut webhooks = client.list_webhooks(&filter).await?;
    webhooks.retain(|w| w.destination_url == destination);
    Ok(webhooks)
}

/// `--destination` as Protime would take it, with the CLI's own words when it is not.
fn destination_allowed(
    client: &protime_client::ProtimeClient,
    destination: &str,
) -> anyhow::Result<()> {
    if reqwest::Url::parse(destination).is_err() {
        anyhow::bail!(
            "--destination {destination:?} is not a URL: give the https:// URL Protime should POST the changes to, e.g. https://hooks.example.com/protime"
        );
    }
    match client.check_destination(destination) {
        Ok(()) => Ok(()),
        Err(protime_client::Error::InsecureDestination { url }) => anyhow::bail!(
            "--destination {url:?} is not an https:// URL, which Protime requires; against a local sandbox, add --allow-insecure-destinations"
        ),
        Err(error) => Err(error.into()),
    }
}

/// Fails when an enabled clockings webhook already delivers to `destination`: whoever
/// receives there verifies with that webhook's key only, so the deliveries of a second
/// webhook would be refused — the way a running `protime serve` gets stranded.
async fn refuse_a_second_webhook(
    client: &protime_client::ProtimeClient,
    destination: &str,
) -> anyhow::Result<()> {
    let existing = enabled_webhooks_to(client, destination)
        .await
        .map_err(explained)?;
    if let Some(webhook) = existing.first() {
        anyhow::bail!(
            "webhook {} (enabled, valid until {}) already delivers clockings to {destination}; the receiver there (e.g. a running `protime serve`, which renews on its own) does not have a new webhook's key and would refuse its deliveries. Pass --allow-second to create one anyway",
            webhook.id,
            webhook.valid_until
        );
    }
    Ok(())
}

pub(crate) async fn run_webhooks(command: WebhooksCommand) -> anyhow::Result<Outcome> {
    match command {
        WebhooksCommand::Create {
            connection,
            destination,
            external_references,
            key_file,
            allow_second,
            json,
        } => {
            let references = external_references
                .iter()
                .map(|r| external_reference(r))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let client = connection.client()?;
            destination_allowed(&client, &destination)?;
            if !allow_second {
                refuse_a_second_webhook(&client, &destination).await?;
            }
            let created = client
                .create_webhook(&destination, CollectionName::Clockings, &references)
                .await
                .map_err(explained)?;
            let mut printed = serde_json::Map::new();
            printed.insert("id".into(), created.id.clone().into());
            printed.insert(
                "validUntil".into(),
                serde_json::to_value(created.valid_until)?,
            );
            if !json {
                println!("id           {}", created.id);
                println!("valid until  {}", created.valid_until);
            }
            match key_file {
                Some(path) => {
                    let key = WebhookKey::from_secret(created.key)?;
                    crate::keyfile::add_key(&path, &key)?;
                    if json {
                        printed.insert("keyFile".into(), path.display().to_string().into());
                        printed.insert("keyFingerprint".into(), key.fingerprint().into());
                    } else {
                        println!(
                            "key          written to {} (fingerprint {})",
                            path.display(),
                            key.fingerprint()
                        );
                    }
                }
                None if json => {
                    printed.insert("key".into(), created.key.expose_secret().into());
                }
                None => println!(
                    "key          {}   <- shown once: store it now (e.g. as PROTIME_WEBHOOK_KEY)",
                    created.key.expose_secret()
                ),
            }
            if json {
                println!("{}", serde_json::to_string(&printed)?);
            }
        }
        WebhooksCommand::List {
            connection,
            status,
            json,
        } => {
            let mut filter = WebhookFilter::default();
            if let Some(status) = status {
                filter = filter.status(match status {
                    Status::Enabled => WebhookStatus::Enabled,
                    Status::Disabled => WebhookStatus::Disabled,
                });
            }
            let webhooks = connection
                .client()?
                .list_webhooks(&filter)
                .await
                .map_err(explained)?;
            for webhook in &webhooks {
                print_webhook(webhook, json)?;
            }
            if !json {
                eprintln!("{} webhook(s)", webhooks.len());
            }
        }
        WebhooksCommand::Get {
            connection,
            id,
            json,
        } => {
            let webhook = connection
                .client()?
                .get_webhook(&id)
                .await
                .map_err(explained)?;
            print_webhook(&webhook, json)?;
        }
        WebhooksCommand::Delete {
            connection,
            id,
            json,
        } => {
            connection
                .client()?
                .delete_webhook(&id)
                .await
                .map_err(explained)?;
            if json {
                println!("{}", serde_json::json!({ "deleted": id }));
            } else {
                println!("deleted {id}");
            }
        }
    }
    Ok(Outcome::Success)
}

/// Arguments of `protime sync`.
#[derive(Debug, clap::Args)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    connection: Connection,
    /// First day to load (YYYY-MM-DD).
    #[arg(long)]
    from: NaiveDate,
    /// Last day to load (YYYY-MM-DD); at most one year after `--from`.
    #[arg(long)]
    to: NaiveDate,
    /// The store: an SQLite file (a path or `sqlite:PATH`) or `postgres://…` (see
    /// `protime receive --help`).
    #[arg(
        long,
        env = "PROTIME_STORE",
        default_value = "protime.sqlite",
        value_name = "STORE"
    )]
    store: StoreLocation,
    /// HTTPS URL of your receiver, for the new webhook.
    #[arg(long)]
    destination: String,
    /// The key file the new webhook's key is added to (mode 600; keys already there are
    /// kept); run `protime receive --key-file` with it.
    #[arg(long, value_name = "FILE", default_value = "protime-webhook.key")]
    key_file: PathBuf,
    /// Print the result as one JSON object (webhook, validity, counts, key file and
    /// fingerprint) instead of sentences.
    #[arg(long)]
    json: bool,
    /// Validate the listed clockings with the strict profile: an item without
    /// `changeVersion`, `person`, `date`, `timeOfDayInMinutes` or `kind` is skipped as
    /// invalid. By default only what the Protime docs require of a listed clocking (`id`) is
    /// mandatory; one without `changeVersion` is stored as the oldest version of its id
    /// (reported as unversioned).
    #[arg(long)]
    strict: bool,
}

/// The profile a `--strict` flag selects.
pub(crate) fn profile_of(strict: bool) -> protime_model::Profile {
    if strict {
        protime_model::Profile::Strict
    } else {
        protime_model::Profile::Documented
    }
}

pub(crate) async fn run_sync(args: SyncArgs) -> anyhow::Result<Outcome> {
    let filter = ClockingsFilter::between(args.from, args.to)?;
    let client = args
        .connection
        .client_with_profile(profile_of(args.strict))?;
    // Every argument is checked before anything is created on disk.
    destination_allowed(&client, &args.destination)?;
    let store = args.store.open(None).await?;
    // A running `protime serve` owns the subscription in this store: a second webhook and
    // sync from here would leave it with a webhook whose key it does not have.
    let Some(_owner) = store.try_claim_owner().await? else {
        anyhow::bail!(
            "a `protime serve` owns the subscription in the store {}: it subscribes and renews on its own; stop it first to re-initialize by hand",
            args.store
        );
    };
    let verifier = Verifier::without_keys(SignatureScheme::default())?;
    let progress = indicatif::ProgressBar::new_spinner();
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} {human_pos} clockings loaded ({per_sec}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    progress.set_message("creating the webhook…");
    progress.enable_steady_tick(std::time::Duration::from_millis(120));
    let bar = progress.clone();
    let subscription = Subscription::new(client, &args.destination, verifier).with_progress(
        std::sync::Arc::new(move |totals| {
            bar.set_position(totals.synced);
            bar.set_message(format!(
                "— {} pages, {} applied, {} invalid",
                totals.pages, totals.applied, totals.invalid
            ));
        }),
    );
    let started = std::time::Instant::now();
    let report = subscription.reinitialize(&filter, &store).await;
    progress.finish_and_clear();
    store.close().await?;
    let report = report.map_err(|error| match error {
        protime_webhooks::subscription::Error::Client(error) => explained(error),
        other => other.into(),
    })?;
    let seconds = started.elapsed().as_secs_f64();
    // The key comes back from Protime only once: kept before anything else can fail.
    crate::keyfile::add_key(&args.key_file, &report.key)?;
    if args.json {
        let value = serde_json::json!({
            "webhookId": report.state.webhook_id,
            "validUntil": report.state.valid_until,
            "from": args.from,
            "to": args.to,
            "synced": report.synced,
            "applied": report.applied,
            "notNewer": report.not_newer,
            "invalid": report.invalid,
            "unversioned": report.unversioned,
            "seconds": seconds,
            "keyFile": args.key_file.display().to_string(),
            "keyFingerprint": report.state.key_fingerprint,
        });
        println!("{value}");
    } else {
        println!(
            "webhook {} valid until {}; {} clockings loaded ({} applied, {} not newer, {} invalid, {} unversioned) in {seconds:.1} s ({:.0} clockings/s)",
            report.state.webhook_id,
            report.state.valid_until,
            report.synced,
            report.applied,
            report.not_newer,
            report.invalid,
            report.unversioned,
            report.synced as f64 / seconds.max(1e-9),
        );
        eprintln!(
            "the webhook key (fingerprint {}) was added to {}: run `protime receive --key-file {} --store …` with the same store ({}), or send SIGHUP to one running with it",
            report.state.key_fingerprint,
            args.key_file.display(),
            args.key_file.display(),
            args.store
        );
    }
    if report.unversioned > 0 {
        eprintln!(
            "warning: {} clockings came from Protime without a changeVersion and were stored as the oldest version of their id: a later sync does not refresh them (another unversioned copy is a duplicate), only versioned changes do (webhook events, delta changes)",
            report.unversioned
        );
    }
    if report.invalid > 0 {
        eprintln!(
            "warning: {} clockings from Protime failed validation and were not stored (each is logged above with its violations)",
            report.invalid
        );
    } else if report.synced == 0 {
        eprintln!(
            "warning: Protime has no clocking dated {}..={}, so nothing was loaded (the webhook was created and delivers changes from now on); check --from and --to — `protime sandbox` prints the range of its data when it starts",
            args.from, args.to
        );
    }
    Ok(Outcome::Success)
}
