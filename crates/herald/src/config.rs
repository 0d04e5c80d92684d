//! Configuration: defaults, then `herald.toml`, then `HERALD_*` environment variables, then
//! command-line flags, parsed once at start-up into typed settings.
//!
//! A bad value stops start-up with a message naming the setting and where it came from. No
//! other module reads the environment or the configuration file.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::worker::ssrf::{AddressPolicy, Cidr};

mod ingest;
mod keys;
mod tls;
pub(crate) mod values;

use keys::KEYS;

pub use self::ingest::IngestConfig;
pub use self::tls::TlsFiles;
use self::tls::parse_tls;

pub use self::values::parse_duration;
use self::values::{
    parse_bool, parse_database_url, parse_frame_ancestors, parse_positive_duration, read_ca_file,
};

/// The commented default configuration file, printed by `herald config default`.
pub const DEFAULT_FILE: &str = include_str!("default-config.toml");

/// The file read when no `--config` is given and it exists in the working directory.
const IMPLICIT_FILE: &str = "herald.toml";

/// Where a setting's value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Environment(String),
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the default"),
            Self::File(path) => write!(f, "the configuration file {}", path.display()),
            Self::Environment(name) => write!(f, "the environment variable {name}"),
            Self::Flag(name) => write!(f, "the command-line flag {name}"),
        }
    }
}

/// A configuration problem, naming the setting and its source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value for `{key}` (from {origin}): {reason}")]
    Invalid { key: String, origin: Source, reason: String },
    #[error("unknown setting `{key}` in {origin}; `herald config default` lists the settings")]
    Unknown { key: String, origin: Source },
    #[error("could not read the configuration file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// How the database is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseConfig {
    /// An embedded SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL database shared by several nodes; the URL may hold a password.
    Postgres(herald_core::secret::SecretString),
}

/// What a `herald serve` process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Serves the API only; other nodes deliver.
    Api,
    /// Delivers only (and answers health checks).
    Worker,
    /// Both.
    All,
}

impl Role {
    pub fn serves_api(self) -> bool {
        matches!(self, Self::Api | Self::All)
    }

    pub fn delivers(self) -> bool {
        matches!(self, Self::Worker | Self::All)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where `/metrics` (and the health probes) are served on a listener of their own; `None`
    /// serves `/metrics` on the API listener.
    pub metrics_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    /// Accepted as an organisation token as given; never logged.
    pub admin_token: Option<herald_core::secret::SecretString>,
    /// Base64 key; `None` means the key file in the data directory.
    pub encryption_key: Option<herald_core::secret::SecretString>,
    /// Base URL for links Herald hands out; `None` means `http://<listen>`.
    pub public_url: Option<Url>,
    pub max_body_bytes: usize,
    /// How the API listener treats connections: caps, timeouts, the shutdown grace.
    pub http: HttpConfig,
    pub portal_token_ttl: Duration,
    /// CSP `frame-ancestors` sources of the portal page (`portal_frame_ancestors`).
    pub portal_frame_ancestors: String,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Where OpenTelemetry traces go (OTLP/HTTP), in builds with the `otlp` feature.
    pub otlp_endpoint: Option<Url>,
    pub role: Role,
    /// Connections this node opens to PostgreSQL at most.
    pub database_max_connections: u32,
    pub delivery: DeliveryConfig,
    pub ingest: IngestConfig,
    /// HTTPS on the API listener: the certificate chain and key files (`tls_cert_file`,
    /// `tls_key_file`); `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Things worth telling the operator once logging is set up: `HERALD_*` variables that
    /// name no setting (a typo leaves the setting at its default without this).
    pub warnings: Vec<String>,
}

/// The API listener's bounds. Each exists because a client that misbehaves (or many at once)
/// must not hold the server: memory, sockets or shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Connections served at once; more wait in the kernel's accept queue (`max_connections`).
    pub max_connections: usize,
    /// Requests handled at once; more are answered 503 (`max_concurrent_requests`).
    pub max_concurrent_requests: usize,
    /// Time a client has to send a request's headers (`header_read_timeout`).
    pub header_read_timeout: Duration,
    /// A connection on which nothing is read or written for this long is closed
    /// (`idle_connection_timeout`).
    pub idle_connection_timeout: Duration,
    /// Time requests in flight get to finish at shutdown before their connections are closed
    /// (`api_shutdown_grace`).
    pub shutdown_grace: Duration,
}

/// Delivery settings.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub allowed_cidrs: Vec<Cidr>,
    /// Refuse (422) an endpoint URL the SSRF guard would refuse, instead of warning
    /// (`refuse_unroutable_endpoints`).
    pub refuse_unroutable_endpoints: bool,
    /// Certificate authorities trusted for deliveries besides the built-in roots (`extra_ca_file`).
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_response_body_bytes: usize,
    pub endpoint_concurrency: usize,
    /// Attempts in flight on this node at most, over every endpoint (each holds its payload).
    pub max_attempts_in_flight: usize,
    /// Consecutive failures that open an endpoint's circuit; 0: never.
    pub circuit_breaker_failures: u32,
    pub retry_schedule: Vec<Duration>,
    pub disable_endpoint_after: Duration,
    pub svix_headers: bool,
    pub payload_retention: Duration,
    pub message_retention: Duration,
    pub attempt_retention: Duration,
    pub lease_duration: Duration,
    pub shutdown_grace: Duration,
    pub operational_webhook: Option<(Url, herald_core::secret::SigningSecret)>,
    /// Whether endpoints must consent before they receive anything, unless an endpoint says
    /// otherwise (`consent`).
    pub consent: herald_core::consent::ConsentMode,
    /// The name Herald announces in `WebHook-Request-Origin` (`consent_origin`); `None`: the
    /// host of the public URL.
    pub consent_origin: Option<String>,
    /// Limits of one run of a converter or transformation (`script_time_limit`,
    /// `script_memory_limit`).
    pub script_limits: herald_script::Limits,
    /// Threads running scripts (`script_threads`).
    pub script_threads: usize,
    /// The header naming the payload version a delivery holds (`payload_version_header`).
    pub payload_version_header: http::HeaderName,
    /// Check every message's payload against its version's schema, whatever the event type
    /// says (`validate_payloads`).
    pub validate_payloads: bool,
    /// Endpoint URLs must be `https://`; `http://` ones are refused with 422
    /// (`endpoint_https_only`).
    pub endpoint_https_only: bool,
}

/// Values given on the command line; `None` where the flag was not used.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub values: Vec<(&'static str, &'static str, String)>,
}

impl Overrides {
    /// Records a flag's value: the setting it sets, the flag's name, the value.
    pub fn set(&mut self, key: &'static str, flag: &'static str, value: Option<String>) {
        if let Some(value) = value {
            self.values.push((key, flag, value));
        }
    }
}

/// Raw values with their sources, before parsing.
type Raw = BTreeMap<String, (String, Source)>;

impl Config {
    /// Loads configuration from every source, reading the process environment.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(overrides, &env)
    }

    /// Loads configuration with the given environment (tests pass their own).
    pub fn load_from(overrides: &Overrides, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut raw = Raw::new();
        merge_file(&mut raw, DEFAULT_FILE, Source::Default)?;

        let env_file = env.iter().find(|(k, _)| k == "HERALD_CONFIG").map(|(_, v)| PathBuf::from(v));
        let file = overrides
            .config_file
            .clone()
            .or(env_file)
            .or_else(|| Path::new(IMPLICIT_FILE).exists().then(|| PathBuf::from(IMPLICIT_FILE)));
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::File { path: path.clone(), reason: e.to_string() })?;
            merge_file(&mut raw, &text, Source::File(path))?;
        }

        for key in KEYS {
            let name = format!("HERALD_{}", key.to_uppercase());
            if let Some((_, value)) = env.iter().find(|(k, _)| *k == name) {
                raw.insert((*key).to_owned(), (value.clone(), Source::Environment(name)));
            }
        }
        for (key, flag, value) in &overrides.values {
            raw.insert((*key).to_owned(), (value.clone(), Source::Flag((*flag).to_owned())));
        }
        let mut config = parse(&raw)?;
        config.warnings = unknown_variables(env);
        Ok(config)
    }

    /// The name announced in the consent handshake's `WebHook-Request-Origin`: `consent_origin`,
    /// or the host of the public URL.
    pub fn consent_origin(&self, bound: SocketAddr) -> String {
        if let Some(origin) = &self.delivery.consent_origin {
            return origin.clone();
        }
        Url::parse(&self.public_base_url(bound))
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| bound.ip().to_string())
    }

    /// The base URL used in links Herald hands out.
    pub fn public_base_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None if self.tls.is_some() => format!("https://{bound}"),
            None => format!("http://{bound}"),
        }
    }
}

/// `HERALD_*` variables in `env` that are neither a setting nor one of the other variables
/// Herald's commands read, each as a warning naming it.
fn unknown_variables(env: &[(String, String)]) -> Vec<String> {
    /// Read by the CLI client and the test harnesses, not by `herald serve`'s settings.
    const OTHER: &[&str] = &[
        "HERALD_CONFIG",
        "HERALD_URL",
        "HERALD_TOKEN",
        "HERALD_CLIENT_CONFIG",
        "HERALD_BIN",
        "HERALD_BLESS",
    ];
    const OTHER_PREFIXES: &[&str] = &["HERALD_TEST_", "HERALD_REQUIRE_", "HERALD_PYTHON_", "HERALD_CHROM"];
    let mut unknown: Vec<String> = env
        .iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("HERALD_"))
        .filter(|name| !KEYS.iter().any(|key| name[7..].eq_ignore_ascii_case(key)))
        .filter(|name| !OTHER.contains(&name.as_str()) && !OTHER_PREFIXES.iter().any(|p| name.starts_with(p)))
        .map(|name| {
            format!(
                "the environment variable {name} names no setting and is ignored (the settings are listed by \
                 `herald config default`; as variables they are HERALD_ and the name in capitals)"
            )
        })
        .collect();
    unknown.sort();
    unknown
}

/// `line L, column C: message` for a TOML error in `text`.
fn toml_error(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {}", error.message())
        }
        None => error.message().to_owned(),
    }
}

fn merge_file(raw: &mut Raw, text: &str, source: Source) -> Result<(), ConfigError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| match &source {
        Source::File(path) => ConfigError::File { path: path.clone(), reason: toml_error(text, &e) },
        _ => ConfigError::File { path: PathBuf::from("<built-in defaults>"), reason: e.to_string() },
    })?;
    for (key, value) in table {
        if !KEYS.contains(&key.as_str()) {
            return Err(ConfigError::Unknown { key, origin: source });
        }
        let text = match value {
            toml::Value::String(s) => s,
            other => other.to_string(),
        };
        raw.insert(key, (text, source.clone()));
    }
    Ok(())
}

/// Parses one raw setting with `parse`, naming the key and source on failure.
fn field<T>(raw: &Raw, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, ConfigError> {
    let (value, source) = raw.get(key).cloned().unwrap_or((String::new(), Source::Default));
    parse(value.trim()).map_err(|reason| ConfigError::Invalid { key: key.to_owned(), origin: source, reason })
}

fn parse(raw: &Raw) -> Result<Config, ConfigError> {
    let data_dir = field(raw, "data_dir", |v| {
        if v.is_empty() { Err("must not be empty".to_owned()) } else { Ok(PathBuf::from(v)) }
    })?;
    let database = field(raw, "database_url", |v| parse_database_url(v, &data_dir))?;
    let optional_secret = |v: &str| Ok((!v.is_empty()).then(|| herald_core::secret::SecretString::new(v)));
    let encryption_key = field(raw, "encryption_key", |v| {
        if !v.is_empty() {
            herald_core::secret::Cipher::from_base64(v).map_err(|e| e.to_string())?;
        }
        optional_secret(v)
    })?;
    Ok(Config {
        listen: field(raw, "listen", |v| {
            v.parse().map_err(|_| format!("`{v}` is not an address:port such as 127.0.0.1:8040"))
        })?,
        metrics_listen: field(raw, "metrics_listen", |v| {
            if v.is_empty() {
                return Ok(None);
            }
            v.parse().map(Some).map_err(|_| format!("`{v}` is not an address:port such as 127.0.0.1:9040"))
        })?,
        data_dir,
        admin_token: field(raw, "admin_token", |v| {
            if !v.is_empty() && v.len() < 16 {
                return Err("an admin token must be at least 16 characters long".to_owned());
            }
            optional_secret(v)
        })?,
        encryption_key,
        public_url: field(raw, "public_url", |v| {
            if v.is_empty() {
                return Ok(None);
            }
            let url = Url::parse(v).map_err(|e| format!("`{v}` is not a URL: {e}"))?;
            match url.scheme() {
                "http" | "https" => Ok(Some(url)),
                other => Err(format!("the scheme must be http or https, not `{other}`")),
            }
        })?,
        max_body_bytes: field(raw, "max_body_bytes", |v| {
            let bytes: usize = v.parse().map_err(|_| format!("`{v}` is not a number of bytes"))?;
            if bytes < 1024 { Err("must be at least 1024".to_owned()) } else { Ok(bytes) }
        })?,
        http: parse_http(raw)?,
        portal_token_ttl: field(raw, "portal_token_ttl", parse_duration)?,
        portal_frame_ancestors: field(raw, "portal_frame_ancestors", parse_frame_ancestors)?,
        log_format: field(raw, "log_format", |v| match v {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("`{other}` is not one of \"text\", \"json\"")),
        })?,
        log_level: field(raw, "log_level", |v| {
            tracing_subscriber::EnvFilter::try_new(v).map_err(|e| e.to_string())?;
            Ok(v.to_owned())
        })?,
        otlp_endpoint: field(raw, "otlp_endpoint", |v| {
            if v.is_empty() {
                return Ok(None);
            }
            let url = Url::parse(v).map_err(|e| format!("`{v}` is not a URL: {e}"))?;
            match url.scheme() {
                "http" | "https" => Ok(Some(url)),
                other => Err(format!("the scheme must be http or https, not `{other}`")),
            }
        })?,
        role: field(raw, "role", |v| match v {
            "all" => Ok(Role::All),
            "api" | "worker" if matches!(database, DatabaseConfig::Sqlite(_)) => Err(format!(
                "`{v}` needs a database shared by several nodes (PostgreSQL); with SQLite one process does both"
            )),
            "api" => Ok(Role::Api),
            "worker" => Ok(Role::Worker),
            other => Err(format!("`{other}` is not one of \"all\", \"api\", \"worker\"")),
        })?,
        database_max_connections: field(raw, "database_max_connections", |v| match v.parse::<u32>() {
            Ok(n) if n >= 2 => Ok(n),
            _ => Err(format!("`{v}` is not a number of connections (at least 2)")),
        })?,
        database,
        delivery: parse_delivery(raw)?,
        ingest: ingest::parse(raw)?,
        tls: parse_tls(raw)?,
        warnings: Vec::new(),
    })
}

fn parse_http(raw: &Raw) -> Result<HttpConfig, ConfigError> {
    let positive = |v: &str| -> Result<usize, String> {
        match v.parse::<usize>() {
            // A semaphore holds at most this many permits.
            Ok(n) if n > 0 && n <= tokio::sync::Semaphore::MAX_PERMITS => Ok(n),
            _ => Err(format!("`{v}` is not a positive whole number")),
        }
    };
    Ok(HttpConfig {
        max_connections: field(raw, "max_connections", positive)?,
        max_concurrent_requests: field(raw, "max_concurrent_requests", positive)?,
        header_read_timeout: field(raw, "header_read_timeout", parse_positive_duration)?,
        idle_connection_timeout: field(raw, "idle_connection_timeout", parse_positive_duration)?,
        shutdown_grace: field(raw, "api_shutdown_grace", parse_duration)?,
    })
}

fn parse_delivery(raw: &Raw) -> Result<DeliveryConfig, ConfigError> {
    let positive = |v: &str| -> Result<usize, String> {
        match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("`{v}` is not a positive whole number")),
        }
    };
    let request_timeout = field(raw, "request_timeout", parse_positive_duration)?;
    let lease_duration = field(raw, "lease_duration", parse_positive_duration)?;
    if lease_duration < request_timeout * 2 {
        let origin = raw.get("lease_duration").map_or(Source::Default, |(_, s)| s.clone());
        return Err(ConfigError::Invalid {
            key: "lease_duration".to_owned(),
            origin,
            reason: format!(
                "must be at least twice request_timeout ({} s), or deliveries could be leased twice",
                request_timeout.as_secs()
            ),
        });
    }
    let url = field(raw, "operational_webhook_url", |v| {
        if v.is_empty() {
            return Ok(None);
        }
        let url = Url::parse(v).map_err(|e| format!("`{v}` is not a URL: {e}"))?;
        match url.scheme() {
            "http" | "https" => Ok(Some(url)),
            other => Err(format!("the scheme must be http or https, not `{other}`")),
        }
    })?;
    let secret = field(raw, "operational_webhook_secret", |v| {
        if v.is_empty() {
            return Ok(None);
        }
        herald_core::secret::SigningSecret::parse(v).map(Some).map_err(|e| e.to_string())
    })?;
    let operational_webhook = match (url, secret) {
        (None, _) => None,
        (Some(url), Some(secret)) => Some((url, secret)),
        (Some(_), None) => {
            let origin = raw.get("operational_webhook_secret").map_or(Source::Default, |(_, s)| s.clone());
            return Err(ConfigError::Invalid {
                key: "operational_webhook_secret".to_owned(),
                origin,
                reason: "a whsec_ secret is needed to sign operational webhooks".to_owned(),
            });
        }
    };
    Ok(DeliveryConfig {
        allowed_cidrs: field(raw, "allowed_cidrs", |v| {
            AddressPolicy::parse_list(v).map_err(|e| e.to_string())
        })?,
        refuse_unroutable_endpoints: field(raw, "refuse_unroutable_endpoints", parse_bool)?,
        extra_roots: field(raw, "extra_ca_file", read_ca_file)?,
        request_timeout,
        connect_timeout: field(raw, "connect_timeout", parse_positive_duration)?,
        max_response_body_bytes: field(raw, "max_response_body_bytes", |v| {
            v.parse::<usize>().map_err(|_| format!("`{v}` is not a number of bytes"))
        })?,
        endpoint_concurrency: field(raw, "endpoint_concurrency", positive)?,
        max_attempts_in_flight: field(raw, "max_attempts_in_flight", positive)?,
        circuit_breaker_failures: field(raw, "circuit_breaker_failures", |v| {
            v.parse::<u32>().map_err(|_| format!("`{v}` is not a whole number of failures"))
        })?,
        retry_schedule: field(raw, "retry_schedule", |v| {
            v.split(',').map(str::trim).filter(|d| !d.is_empty()).map(parse_duration).collect()
        })?,
        disable_endpoint_after: field(raw, "disable_endpoint_after", parse_positive_duration)?,
        svix_headers: field(raw, "svix_headers", parse_bool)?,
        payload_retention: field(raw, "payload_retention", parse_positive_duration)?,
        message_retention: field(raw, "message_retention", parse_positive_duration)?,
        attempt_retention: field(raw, "attempt_retention", parse_positive_duration)?,
        lease_duration,
        shutdown_grace: field(raw, "shutdown_grace", parse_duration)?,
        operational_webhook,
        consent: field(raw, "consent", herald_core::consent::ConsentMode::parse)?,
        endpoint_https_only: field(raw, "endpoint_https_only", |v| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(format!("`{other}` is not true or false")),
        })?,
        consent_origin: field(raw, "consent_origin", |v| {
            if v.is_empty() {
                return Ok(None);
            }
            // A DNS name (or an address), as the handshake's header carries it.
            if v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')) {
                Ok(Some(v.to_owned()))
            } else {
                Err(format!("`{v}` is not a host name such as webhooks.example.com"))
            }
        })?,
        script_limits: herald_script::Limits {
            time: field(raw, "script_time_limit", values::parse_script_time_limit)?,
            memory_bytes: field(raw, "script_memory_limit", values::parse_script_memory_limit)?,
        },
        script_threads: field(raw, "script_threads", values::parse_script_threads)?,
        payload_version_header: field(raw, "payload_version_header", values::parse_header_name)?,
        validate_payloads: field(raw, "validate_payloads", parse_bool)?,
    })
}

#[cfg(test)]
mod tests;
