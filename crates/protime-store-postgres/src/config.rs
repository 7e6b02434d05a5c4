//! Where the store's database is and how it is used: a connection string (URL or libpq
//! key/value form) completed from the standard `PG*` environment variables, the schema, and
//! the limits of the pool and the writers.

use std::fmt;
use std::str::FromStr as _;
use std::time::Duration;

use crate::StoreError;

/// The `PG*` environment variables read for what the connection string leaves out (libpq's
/// names and meaning).
const ENVIRONMENT: [&str; 7] = [
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGAPPNAME",
    "PGCONNECT_TIMEOUT",
];

/// Settings of a [`crate::PgStore`].
///
/// ```
/// use protime_store_postgres::PgStoreConfig;
/// let config = PgStoreConfig::from_url("postgres://app:secret@db.internal:5433/payroll")?
///     .with_schema("tenant_acme")?
///     .with_writers(2);
/// assert_eq!(config.target(), "app@db.internal:5433/payroll (schema tenant_acme)");
/// assert!(!format!("{config:?}").contains("secret"));
/// # Ok::<(), protime_store_postgres::StoreError>(())
/// ```
#[derive(Clone)]
pub struct PgStoreConfig {
    pub(crate) pg: tokio_postgres::Config,
    pub(crate) schema: Option<String>,
    pub(crate) writers: usize,
    pub(crate) max_connections: usize,
    pub(crate) statement_timeout: Duration,
    pub(crate) wait_timeout: Duration,
    pub(crate) queue_bound: usize,
}

impl fmt::Debug for PgStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `target()` never includes the password.
        f.debug_struct("PgStoreConfig")
            .field("target", &self.target())
            .field("writers", &self.writers)
            .field("max_connections", &self.max_connections)
            .field("statement_timeout", &self.statement_timeout)
            .finish_non_exhaustive()
    }
}

/// Takes a `schema=NAME` query parameter out of a `postgres://` URL (the driver does not know
/// it): `postgres://host/db?schema=tenant_a` keeps the store in schema `tenant_a`.
fn split_schema(url: &str) -> (String, Option<String>) {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("schema=") {
            Some(name) => {
                schema = Some(name.to_owned());
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    if rest.is_empty() {
        (base.to_owned(), schema)
    } else {
        (format!("{base}?{}", rest.join("&")), schema)
    }
}

impl PgStoreConfig {
    /// Settings from a connection string — `postgres://user:password@host:port/database`,
    /// `postgresql://…`, or libpq's `host=… user=…` form — with whatever it leaves out taken
    /// from `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGAPPNAME` and
    /// `PGCONNECT_TIMEOUT`, and then libpq's defaults (`localhost`, 5432, the user's login
    /// name). TLS is not built in: `sslmode=require` fails at connect time with that reason.
    ///
    /// ```
    /// use protime_store_postgres::PgStoreConfig;
    /// assert!(PgStoreConfig::from_url("postgres://ci@127.0.0.1/ci").is_ok());
    /// assert!(PgStoreConfig::from_url("postgres://[::1:5432").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        Self::from_url_and_env(url, |name| std::env::var(name).ok())
    }

    /// Settings from the `PG*` environment variables alone (see [`Self::from_url`]).
    pub fn from_env() -> Result<Self, StoreError> {
        Self::from_url_and_env("", |name| std::env::var(name).ok())
    }

    /// [`Self::from_url`] with the environment given as a lookup function (for tests, or a
    /// configuration system of your own).
    ///
    /// ```
    /// use protime_store_postgres::PgStoreConfig;
    /// let env = |name: &str| (name == "PGPASSWORD").then(|| "from-env".to_string());
    /// let config = PgStoreConfig::from_url_and_env("postgres://ci@127.0.0.1/ci", env)?;
    /// assert_eq!(config.target(), "ci@127.0.0.1:5432/ci");
    /// # Ok::<(), protime_store_postgres::StoreError>(())
    /// ```
    pub fn from_url_and_env(
        url: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StoreError> {
        let (url, schema) = split_schema(url);
        let mut pg = if url.trim().is_empty() || url == "postgres://" || url == "postgresql://" {
            tokio_postgres::Config::new()
        } else {
            tokio_postgres::Config::from_str(&url).map_err(|e| StoreError::Config {
                // The driver's message names the offending part, never the password.
                what: format!("cannot parse the connection string: {e}"),
            })?
        };
        let env = |name: &str| env(name).filter(|value| !value.is_empty());
        debug_assert!(ENVIRONMENT.iter().all(|name| name.starts_with("PG")));
        if pg.get_hosts().is_empty() {
            let hosts = env("PGHOST").unwrap_or_else(|| "localhost".into());
            for host in hosts.split(',') {
                pg.host(host.trim());
            }
        }
        if let Some(port) = env("PGPORT").filter(|_| pg.get_ports().is_empty()) {
            let port = port.trim().parse::<u16>().map_err(|_| StoreError::Config {
                what: format!("PGPORT is not a port number: {port:?}"),
            })?;
            pg.port(port);
        }
        if pg.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .or_else(|| env("LOGNAME"))
                .ok_or_else(|| StoreError::Config {
                    what: "no user: give one in the URL or in PGUSER".into(),
                })?;
            pg.user(&user);
        }
        if let Some(password) = env("PGPASSWORD").filter(|_| pg.get_password().is_none()) {
            pg.password(password);
        }
        if let Some(dbname) = env("PGDATABASE").filter(|_| pg.get_dbname().is_none()) {
            pg.dbname(&dbname);
        }
        if pg.get_application_name().is_none() {
            pg.application_name(env("PGAPPNAME").unwrap_or_else(|| "protime".into()));
        }
        if pg.get_connect_timeout().is_none() {
            let seconds = match env("PGCONNECT_TIMEOUT") {
                Some(value) => value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| StoreError::Config {
                        what: format!("PGCONNECT_TIMEOUT is not a number of seconds: {value:?}"),
                    })?,
                None => 10,
            };
            // libpq treats 0 as "wait forever"; every wait here has a bound.
            pg.connect_timeout(Duration::from_secs(seconds.clamp(1, 300)));
        }
        // A dead server or a cut network is noticed instead of waited on forever.
        pg.keepalives(true);
        pg.keepalives_idle(Duration::from_secs(30));
        pg.tcp_user_timeout(Duration::from_secs(60));
        let config = Self {
            pg,
            schema: None,
            writers: 1,
            max_connections: 8,
            statement_timeout: Duration::from_secs(30),
            wait_timeout: Duration::from_secs(10),
            queue_bound: 1024,
        };
        match schema {
            Some(schema) => config.with_schema(&schema),
            None => Ok(config),
        }
    }

    /// Keeps the store's tables in this schema (created if missing) instead of the
    /// database's default (`public`, or the role's `search_path`): one database can hold
    /// one store per Protime tenant. Lower-case ASCII letters, digits and `_`, starting with
    /// a letter or `_`, at most 63 bytes.
    ///
    /// ```
    /// use protime_store_postgres::PgStoreConfig;
    /// let config = PgStoreConfig::from_url("postgres://ci@127.0.0.1/ci")?;
    /// assert!(config.clone().with_schema("tenant_1").is_ok());
    /// assert!(config.with_schema("Robert'); DROP TABLE").is_err());
    /// # Ok::<(), protime_store_postgres::StoreError>(())
    /// ```
    pub fn with_schema(mut self, schema: &str) -> Result<Self, StoreError> {
        let valid = !schema.is_empty()
            && schema.len() <= 63
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !schema.starts_with(|c: char| c.is_ascii_digit())
            && !schema.starts_with("pg_");
        if !valid {
            return Err(StoreError::Config {
                what: format!(
                    "schema name {schema:?}: use lower-case ASCII letters, digits and '_', starting with a letter or '_', at most 63 bytes, not 'pg_…'"
                ),
            });
        }
        self.schema = Some(schema.to_owned());
        Ok(self)
    }

    /// Concurrent write transactions of this store; at least 1, default 1. Writers take
    /// turns collecting groups: one collects what is queued, locks its rows, and hands the
    /// turn on while it commits, so the next group's transaction overlaps this commit and
    /// groups are locked in queue order. One writer makes the largest groups, and was the
    /// fastest in the receiver benchmark (every request there is the same clocking, so a
    /// second writer only waits for the first one's row lock); more may help when commits
    /// are slow and ids rarely repeat.
    #[must_use]
    pub fn with_writers(mut self, writers: usize) -> Self {
        self.writers = writers.clamp(1, 64);
        self
    }

    /// Most connections the store opens (writers and reads together); at least writers + 1,
    /// default 8.
    #[must_use]
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.clamp(2, 1024);
        self
    }

    /// Longest a statement may run on the server (`statement_timeout`), default 30 s: a
    /// writer blocked behind a row lock of a frozen replica fails instead of waiting forever.
    #[must_use]
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout.max(Duration::from_millis(100));
        self
    }

    /// Where the store connects, for messages: `user@host:port/database (schema s)`; never
    /// the password.
    pub fn target(&self) -> String {
        let host = self
            .pg
            .get_hosts()
            .iter()
            .map(|host| match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect::<Vec<_>>()
            .join(",");
        let port = self.pg.get_ports().first().copied().unwrap_or(5432);
        let user = self.pg.get_user().unwrap_or("");
        let dbname = self.pg.get_dbname().unwrap_or(user);
        let mut target = format!("{user}@{host}:{port}/{dbname}");
        if let Some(schema) = &self.schema {
            target.push_str(&format!(" (schema {schema})"));
        }
        target
    }

    /// The schema name, when one was chosen.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The driver's configuration of every store connection: the chosen schema as the
    /// search path, commits that wait for the disk (`synchronous_commit=on`, whatever the
    /// server's default), and server-side time limits.
    pub(crate) fn session(&self) -> tokio_postgres::Config {
        let mut pg = self.pg.clone();
        let mut options = pg.get_options().unwrap_or("").to_owned();
        let timeout_ms = self.statement_timeout.as_millis();
        options.push_str(&format!(
            " -c synchronous_commit=on -c statement_timeout={timeout_ms} -c idle_in_transaction_session_timeout={}",
            timeout_ms.saturating_mul(2)
        ));
        if let Some(schema) = &self.schema {
            options.push_str(&format!(" -c search_path={schema}"));
        }
        pg.options(options.trim());
        pg
    }

    /// The notification channel of this store's commits (one per schema).
    pub(crate) fn channel(&self) -> String {
        match &self.schema {
            Some(schema) => format!("protime_changes_{schema}"),
            None => "protime_changes".into(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn the_url_wins_over_the_environment() {
        let vars = [
            ("PGHOST", "elsewhere"),
            ("PGUSER", "other"),
            ("PGPORT", "1"),
        ];
        let config =
            PgStoreConfig::from_url_and_env("postgresql://ci@127.0.0.1:5433/db", env(&vars))
                .unwrap();
        assert_eq!(config.target(), "ci@127.0.0.1:5433/db");
    }

    #[test]
    fn the_environment_fills_what_the_url_leaves_out() {
        let vars = [
            ("PGHOST", "db.internal"),
            ("PGPORT", "6543"),
            ("PGUSER", "app"),
            ("PGPASSWORD", "pw"),
            ("PGDATABASE", "payroll"),
        ];
        let config = PgStoreConfig::from_url_and_env("", env(&vars)).unwrap();
        assert_eq!(config.target(), "app@db.internal:6543/payroll");
        assert_eq!(config.pg.get_password(), Some(b"pw".as_slice()));
    }

    #[test]
    fn bad_settings_are_one_clear_error() {
        let vars = [("PGUSER", "app"), ("PGPORT", "fifty")];
        let error = PgStoreConfig::from_url_and_env("", env(&vars)).unwrap_err();
        assert!(error.to_string().contains("PGPORT"), "{error}");
        let error =
            PgStoreConfig::from_url_and_env("postgres://a:b@h:notaport/db", env(&[])).unwrap_err();
        assert!(matches!(error, StoreError::Config { .. }), "{error}");
        assert!(!error.to_string().contains(":b@"), "{error}");
    }

    #[test]
    fn a_schema_parameter_names_the_schema() {
        let config = PgStoreConfig::from_url_and_env(
            "postgres://ci@h/db?schema=tenant_a&connect_timeout=3",
            env(&[]),
        )
        .unwrap();
        assert_eq!(config.schema(), Some("tenant_a"));
        assert_eq!(
            config.pg.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        let vars = [("PGUSER", "app")];
        let config = PgStoreConfig::from_url_and_env("postgres://?schema=t", env(&vars)).unwrap();
        assert_eq!(config.target(), "app@localhost:5432/app (schema t)");
        assert!(PgStoreConfig::from_url_and_env("postgres://h/db?schema=Bad", env(&vars)).is_err());
    }

    #[test]
    fn the_session_is_durable_and_bounded() {
        let config = PgStoreConfig::from_url_and_env("postgres://ci@h/db", env(&[]))
            .unwrap()
            .with_schema("t1")
            .unwrap();
        let options = config.session().get_options().unwrap().to_owned();
        assert!(options.contains("synchronous_commit=on"), "{options}");
        assert!(options.contains("statement_timeout=30000"), "{options}");
        assert!(options.contains("search_path=t1"), "{options}");
        assert_eq!(config.channel(), "protime_changes_t1");
    }
}
