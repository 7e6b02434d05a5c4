//! The subscriptions `serve` runs: one from the flags, or several from a TOML file whose
//! values the environment can override.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;
use protime_client::{ClockingsFilter, ProtimeClient};

use protime_webhooks::signature::SignatureScheme;

use super::ServeArgs;
use crate::signature_settings::SignatureSettings;
use crate::store::StoreLocation;

/// The configuration file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigFile {
    /// Address to listen on (the `--bind` flag wins).
    pub(super) bind: Option<std::net::IpAddr>,
    /// Port to listen on (the `--port` flag, when given, wins).
    pub(super) port: Option<u16>,
    /// Admin address (the `--admin` flag wins).
    pub(super) admin: Option<std::net::SocketAddr>,
    /// Where and when to alert (the `--alert-url` flag, when given, wins with its flags).
    alerts: Option<AlertsConfig>,
    #[serde(rename = "subscription")]
    subscriptions: Vec<SubscriptionConfig>,
}

/// The `[alerts]` table: every field but `url` optional, with the flags' defaults.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsConfig {
    url: String,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    repeat_seconds: Option<u64>,
    expiring_seconds: Option<u64>,
    dead_letters_above: Option<u64>,
    signature_failures_above: Option<u64>,
    signature_window_seconds: Option<u64>,
}

/// The alert settings: from the flags when `--alert-url` is given, else from the file's
/// `[alerts]`; `None` when neither asks for alerts.
pub(super) fn alert_settings(
    flags: &super::AlertArgs,
    file: Option<&ConfigFile>,
) -> anyhow::Result<Option<crate::alerts::Settings>> {
    let from_file = file.and_then(|f| f.alerts.as_ref());
    let (url, secret_env, secret_file) = match (&flags.alert_url, from_file) {
        (Some(url), _) => (
            url.as_str(),
            flags.alert_secret_env.as_deref(),
            flags.alert_secret_file.as_deref(),
        ),
        (None, Some(table)) => (
            table.url.as_str(),
            table.secret_env.as_deref(),
            table.secret_file.as_deref(),
        ),
        (None, None) => return Ok(None),
    };
    let url: reqwest::Url = url
        .parse()
        .with_context(|| format!("alerts: {url:?} is not a URL"))?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "alerts: the URL must be http:// or https://"
    );
    let secret = match (secret_env, secret_file) {
        (Some(variable), None) => Some(std::env::var(variable).with_context(|| {
            format!("alerts: the environment variable {variable} (the alert secret) is not set")
        })?),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("alerts: cannot read the secret file {}", path.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        ),
        (None, None) => None,
        (Some(_), Some(_)) => {
            anyhow::bail!("alerts: give a secret variable or a secret file, not both")
        }
    };
    if secret.as_deref() == Some("") {
        anyhow::bail!("alerts: the alert secret is empty");
    }
    let mut settings = crate::alerts::Settings::new(url);
    settings.secret = secret.map(secrecy::SecretString::from);
    let pick = |file: Option<u64>, flag: u64| {
        if flags.alert_url.is_some() {
            flag
        } else {
            file.unwrap_or(flag)
        }
    };
    let table = from_file.filter(|_| flags.alert_url.is_none());
    settings.repeat_after = Duration::from_secs(pick(
        table.and_then(|t| t.repeat_seconds),
        flags.alert_repeat_seconds,
    ));
    settings.expiring_within = Duration::from_secs(pick(
        table.and_then(|t| t.expiring_seconds),
        flags.alert_expiring_seconds,
    ));
    settings.dead_letters_above = pick(
        table.and_then(|t| t.dead_letters_above),
        flags.alert_dead_letters,
    );
    settings.signature_failures_above = pick(
        table.and_then(|t| t.signature_failures_above),
        flags.alert_signature_failures,
    );
    settings.signature_window = Duration::from_secs(
        pick(
            table.and_then(|t| t.signature_window_seconds),
            flags.alert_signature_window_seconds,
        )
        .max(1),
    );
    Ok(Some(settings))
}

/// One subscription of the configuration file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionConfig {
    name: String,
    tenant: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    base_url: Option<String>,
    token_url: Option<String>,
    client_id: String,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    user_agent: String,
    destination: String,
    path: String,
    store: String,
    state_dir: Option<PathBuf>,
    from: DateField,
    to: DateField,
    lead_time_seconds: Option<u64>,
    check_seconds: Option<u64>,
    #[serde(default)]
    allow_insecure_destinations: bool,
    /// The signature scheme (defaults: the `--signature-*` flags' defaults).
    signature: Option<SignatureSettings>,
    /// Retention limits (`[subscription.retention]`); none: keep everything.
    #[serde(default)]
    retention: super::retention::RetentionConfig,
    /// Validate deliveries and synced clockings with the strict profile (`person`, `date`,
    /// `timeOfDayInMinutes` and `kind` required); default false: only what the docs require.
    #[serde(default)]
    strict: bool,
    /// Keep a Protime delta open behind the webhooks and apply what it returns (see
    /// `reconcile.rs`); default false, since Protime allows one active delta per collection.
    #[serde(default)]
    reconcile: bool,
    /// Seconds between two delta requests (default: `--reconcile-interval-seconds`).
    reconcile_interval_seconds: Option<u64>,
    /// Seconds a delta's changes wait before they are applied, so that webhooks in flight
    /// arrive first (default: `--reconcile-grace-seconds`).
    reconcile_grace_seconds: Option<u64>,
}

/// A day in the configuration: a TOML date (`from = 2026-01-01`) or a string
/// (`from = "2026-01-01"`).
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum DateField {
    Toml(toml::value::Datetime),
    Text(NaiveDate),
}

impl DateField {
    fn day(&self, subscription: &str, field: &str) -> anyhow::Result<NaiveDate> {
        match self {
            Self::Text(day) => Ok(*day),
            Self::Toml(datetime) => datetime
                .date
                .filter(|_| datetime.time.is_none())
                .and_then(|d| {
                    NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                })
                .with_context(|| {
                    format!("subscription {subscription}: {field} must be a date (YYYY-MM-DD)")
                }),
        }
    }
}

/// One subscription, ready to run.
pub(super) struct Plan {
    pub(super) name: String,
    pub(super) client: ProtimeClient,
    pub(super) destination: String,
    pub(super) path: String,
    pub(super) store: StoreLocation,
    /// Where keys and state live for an SQLite store; for PostgreSQL they live in the store
    /// and this directory, when given, is only imported from once.
    pub(super) state_dir: Option<PathBuf>,
    pub(super) filter: ClockingsFilter,
    pub(super) lead_time: Duration,
    pub(super) check: Duration,
    pub(super) forced_interval: Duration,
    /// How deliveries are signed.
    pub(super) scheme: SignatureScheme,
    /// Retention limits of its store and how often they are applied.
    pub(super) retention: (crate::retention::Limits, Duration),
    /// How deliveries (and the clockings of its syncs) are validated.
    pub(super) profile: protime_model::Profile,
    /// Reconciliation through a delta, when enabled.
    pub(super) reconcile: Option<super::reconcile::Settings>,
}

impl Plan {
    fn checked(self) -> anyhow::Result<Self> {
        if let Some(reconcile) = &self.reconcile {
            reconcile
                .check()
                .with_context(|| format!("subscription {}", self.name))?;
        }
        if matches!(self.store, StoreLocation::Sqlite(_)) && self.state_dir.is_none() {
            anyhow::bail!(
                "subscription {}: an SQLite store needs a state directory (--state-dir or state_dir) for its webhook keys; a PostgreSQL store keeps them itself",
                self.name
            );
        }
        Ok(self)
    }
}

fn secret_of(config: &SubscriptionConfig) -> anyhow::Result<String> {
    match (&config.client_secret_env, &config.client_secret_file) {
        (Some(variable), None) => std::env::var(variable).with_context(|| {
            format!("subscription {}: the environment variable {variable} (client_secret_env) is not set", config.name)
        }),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|secret| secret.trim().to_owned())
            .with_context(|| {
                format!("subscription {}: cannot read client_secret_file {}", config.name, path.display())
            }),
        _ => anyhow::bail!(
            "subscription {}: give exactly one of client_secret_env and client_secret_file (never the secret itself)",
            config.name
        ),
    }
}

fn plan_of(config: &SubscriptionConfig, defaults: &ServeArgs) -> anyhow::Result<Plan> {
    let secret = secret_of(config)?;
    let sandbox_environment = match config.environment.as_deref() {
        None | Some("production") => false,
        Some("sandbox") => true,
        Some(other) => anyhow::bail!(
            "subscription {}: environment {other:?} is not production or sandbox",
            config.name
        ),
    };
    let client = crate::api::build_client(&crate::api::ClientSettings {
        tenant: config.tenant.as_deref(),
        sandbox_environment,
        base_url: config.base_url.as_deref(),
        token_url: config.token_url.as_deref(),
        client_id: Some(&config.client_id),
        client_secret: Some(&secret),
        user_agent: Some(&config.user_agent),
        allow_insecure_destinations: config.allow_insecure_destinations,
        profile: crate::api::profile_of(config.strict),
    })
    .with_context(|| format!("subscription {}", config.name))?;
    let store = config
        .store
        .parse::<StoreLocation>()
        .map_err(|e| anyhow::anyhow!("subscription {}: store: {e}", config.name))?;
    anyhow::ensure!(
        config.path.starts_with('/'),
        "subscription {}: path must start with '/'",
        config.name
    );
    Plan {
        name: config.name.clone(),
        client,
        destination: config.destination.clone(),
        path: config.path.clone(),
        store,
        state_dir: config.state_dir.clone(),
        filter: ClockingsFilter::between(
            config.from.day(&config.name, "from")?,
            config.to.day(&config.name, "to")?,
        )
        .with_context(|| format!("subscription {}: from/to", config.name))?,
        lead_time: Duration::from_secs(
            config
                .lead_time_seconds
                .unwrap_or(defaults.lead_time_seconds),
        ),
        check: Duration::from_secs(
            config
                .check_seconds
                .unwrap_or(defaults.check_seconds)
                .max(1),
        ),
        forced_interval: Duration::from_secs(defaults.forced_renewal_interval_seconds),
        scheme: match &config.signature {
            Some(settings) => settings
                .scheme()
                .with_context(|| format!("subscription {}: signature", config.name))?,
            None => defaults.signature.scheme()?,
        },
        retention: config.retention.plan(&config.name)?,
        profile: crate::api::profile_of(config.strict),
        reconcile: config.reconcile.then(|| {
            super::reconcile::Settings::new(
                config
                    .reconcile_interval_seconds
                    .unwrap_or(defaults.reconcile_interval_seconds),
                config
                    .reconcile_grace_seconds
                    .unwrap_or(defaults.reconcile_grace_seconds),
            )
        }),
    }
    .checked()
}

/// The prefix of the environment variables that override one subscription's settings:
/// `PROTIME_SUBSCRIPTION_<NAME>_<FIELD>`, the name upper-cased with every character that
/// is not a letter or digit as `_` (e.g. `PROTIME_SUBSCRIPTION_ACME_EU_STORE` for the
/// `store` of subscription `acme-eu`).
fn override_prefix(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("PROTIME_SUBSCRIPTION_{name}_")
}

/// Applies the environment's overrides to the parsed file: each variable's value is read
/// as a TOML value when it is one (`true`, `30`, `2026-01-01`) and as a string otherwise.
/// Unknown fields are then refused like unknown keys in the file.
fn apply_overrides(
    document: &mut toml::Table,
    variables: &[(String, String)],
) -> anyhow::Result<Vec<String>> {
    let mut applied = Vec::new();
    let Some(toml::Value::Array(subscriptions)) = document.get_mut("subscription") else {
        return Ok(applied);
    };
    for subscription in subscriptions {
        let toml::Value::Table(table) = subscription else {
            continue;
        };
        let Some(name) = table.get("name").and_then(toml::Value::as_str) else {
            continue;
        };
        let prefix = override_prefix(name);
        for (variable, value) in variables {
            let Some(field) = variable.strip_prefix(&prefix) else {
                continue;
            };
            let field = field.to_ascii_lowercase();
            anyhow::ensure!(
                field != "name",
                "{variable}: a subscription's name cannot be overridden"
            );
            let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .filter(|v| !matches!(v, toml::Value::Table(_) | toml::Value::Array(_)))
                .unwrap_or_else(|| toml::Value::String(value.clone()));
            // `…_RETENTION_<KEY>`: a key of the subscription's `[retention]` table.
            if let Some(key) = field.strip_prefix("retention_") {
                let nested = table
                    .entry("retention")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(nested) = nested {
                    nested.insert(key.to_owned(), parsed);
                    applied.push(variable.clone());
                    continue;
                }
            }
            table.insert(field, parsed);
            applied.push(variable.clone());
        }
    }
    Ok(applied)
}

/// The subscriptions to run, from the configuration file or the flags, checked.
pub(super) fn plans(args: &ServeArgs) -> anyhow::Result<(Vec<Plan>, Option<ConfigFile>)> {
    let Some(path) = &args.config else {
        let (Some(destination), Some(from), Some(to)) = (&args.destination, args.from, args.to)
        else {
            anyhow::bail!("--destination, --from and --to are needed without --config");
        };
        let plan = Plan {
            name: "default".into(),
            client: args
                .connection
                .client_with_profile(crate::api::profile_of(args.strict))?,
            destination: destination.clone(),
            path: args.path.clone(),
            store: args.store.clone(),
            state_dir: args.state_dir.clone(),
            filter: ClockingsFilter::between(from, to)?,
            lead_time: Duration::from_secs(args.lead_time_seconds),
            check: Duration::from_secs(args.check_seconds.max(1)),
            forced_interval: Duration::from_secs(args.forced_renewal_interval_seconds),
            scheme: args.signature.scheme()?,
            retention: args.retention.plan(),
            profile: crate::api::profile_of(args.strict),
            reconcile: args.reconcile.then(|| {
                super::reconcile::Settings::new(
                    args.reconcile_interval_seconds,
                    args.reconcile_grace_seconds,
                )
            }),
        };
        return Ok((vec![plan.checked()?], None));
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration {}", path.display()))?;
    let mut document: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let variables: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| name.starts_with("PROTIME_SUBSCRIPTION_"))
        .collect();
    let overridden = apply_overrides(&mut document, &variables)
        .with_context(|| format!("{}: environment overrides", path.display()))?;
    for variable in overridden {
        tracing::info!(%variable, "a configuration value is overridden by the environment");
    }
    let file: ConfigFile = document.try_into().map_err(|e| {
        anyhow::anyhow!("{} (with the environment's overrides): {e}", path.display())
    })?;
    anyhow::ensure!(
        !file.subscriptions.is_empty(),
        "{}: no [[subscription]]",
        path.display()
    );
    let mut problems = Vec::new();
    let mut plans = Vec::new();
    for config in &file.subscriptions {
        match plan_of(config, args) {
            Ok(plan) => plans.push(plan),
            Err(error) => problems.push(format!("{error:#}")),
        }
    }
    let mut names = std::collections::BTreeSet::new();
    let mut paths = std::collections::BTreeSet::new();
    let mut states = std::collections::BTreeSet::new();
    let mut stores = std::collections::BTreeSet::new();
    for config in &file.subscriptions {
        if !names.insert(config.name.clone()) {
            problems.push(format!("subscription name {:?} is used twice", config.name));
        }
        if !paths.insert(config.path.clone()) {
            problems.push(format!("path {:?} is used twice", config.path));
        }
        if let Some(state_dir) = &config.state_dir
            && !states.insert(state_dir.clone())
        {
            problems.push(format!("state_dir {} is used twice", state_dir.display()));
        }
    }
    for plan in &plans {
        // One store holds one subscription (its clockings, keys and lease).
        if !stores.insert(plan.store.clone()) {
            problems.push(format!(
                "store {} is used by two subscriptions (give each its own file or ?schema=)",
                plan.store
            ));
        }
    }
    if !problems.is_empty() {
        anyhow::bail!("{}:\n  {}", path.display(), problems.join("\n  "));
    }
    Ok((plans, Some(file)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_overrides_one_subscription_field_by_field() {
        let mut document: toml::Table = toml::from_str(
            r#"
[[subscription]]
name = "acme-eu"
store = "a.sqlite"
check_seconds = 5

[[subscription]]
name = "other"
store = "b.sqlite"
"#,
        )
        .unwrap();
        let variables = [
            ("PROTIME_SUBSCRIPTION_ACME_EU_STORE", "postgres://db/x"),
            ("PROTIME_SUBSCRIPTION_ACME_EU_CHECK_SECONDS", "30"),
            ("PROTIME_SUBSCRIPTION_ACME_EU_FROM", "2026-01-01"),
            ("PROTIME_SUBSCRIPTION_ACME_EU_USER_AGENT", "Svc/1.0 (x = y)"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let applied = apply_overrides(&mut document, &variables).unwrap();
        assert_eq!(applied.len(), 4);
        let subscriptions = document["subscription"].as_array().unwrap();
        let acme = subscriptions[0].as_table().unwrap();
        assert_eq!(acme["store"].as_str(), Some("postgres://db/x"));
        assert_eq!(acme["check_seconds"].as_integer(), Some(30));
        assert!(acme["from"].as_datetime().is_some());
        assert_eq!(acme["user_agent"].as_str(), Some("Svc/1.0 (x = y)"));
        let other = subscriptions[1].as_table().unwrap();
        assert_eq!(other["store"].as_str(), Some("b.sqlite"));

        let renamed = [("PROTIME_SUBSCRIPTION_OTHER_NAME".to_owned(), "x".to_owned())];
        assert!(apply_overrides(&mut document, &renamed).is_err());
    }

    #[test]
    fn retention_is_a_table_per_subscription_and_its_keys_can_be_overridden() {
        let mut document: toml::Table = toml::from_str(
            r#"
[[subscription]]
name = "acme"
[subscription.retention]
raw_bodies = "30d"
"#,
        )
        .unwrap();
        let variables = [
            ("PROTIME_SUBSCRIPTION_ACME_RETENTION_RAW_BODIES", "14d"),
            ("PROTIME_SUBSCRIPTION_ACME_RETENTION_INTERVAL", "15m"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(apply_overrides(&mut document, &variables).unwrap().len(), 2);
        let retention = document["subscription"].as_array().unwrap()[0]["retention"].clone();
        let config: super::super::retention::RetentionConfig = retention.try_into().unwrap();
        let (limits, interval) = config.plan("acme").unwrap();
        assert_eq!(limits.raw_bodies, Some(Duration::from_secs(14 * 86_400)));
        assert_eq!((limits.change_log, limits.dead_letters), (None, None));
        assert_eq!(interval, Duration::from_secs(900));

        let bad: super::super::retention::RetentionConfig =
            toml::from_str(r#"change_log = "180""#).unwrap();
        let error = format!("{:#}", bad.plan("acme").unwrap_err());
        assert!(error.contains("retention.change_log"), "{error}");
        assert!(
            toml::from_str::<super::super::retention::RetentionConfig>("ttl = \"1d\"").is_err()
        );
    }
}
