//! `herald app|endpoint|event-type|message|send|attempt|status|verify|token list|token revoke`: a command-line client of
//! Herald's HTTP API for operators and scripts.
//!
//! This module owns the connection settings shared by every client subcommand. It talks to
//! a server only through the public HTTP API, the same as any other client, and never opens
//! a store or reads the server's configuration.

pub mod application;
pub mod attempt;
pub mod endpoint;
mod endpoint_test;
pub mod event_type;
mod http;
pub mod message;
pub mod source;
pub mod status;
mod table;
pub mod token;
pub mod verify;

use clap::Args;

pub(crate) use self::http::segment;
pub use self::http::{ApiClient, ApiError};

/// The server `herald` talks to when neither `--url`, `HERALD_URL` nor the client
/// configuration file says otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8040";

/// Where the server is, how to authenticate, and how to print answers. Global, so the flags
/// can follow the subcommand (`herald app list --json`).
#[derive(Debug, Args)]
pub struct Connection {
    /// The server's base URL (default http://127.0.0.1:8040).
    #[arg(long = "url", env = "HERALD_URL", global = true)]
    pub server_url: Option<String>,
    /// An API token (`sk_…`); sent as `Authorization: Bearer`.
    #[arg(long, env = "HERALD_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// A TOML file with `url` and `token`, used for what neither the flags nor the environment
    /// give (default: ~/.config/herald/client.toml when it exists).
    #[arg(long, env = "HERALD_CLIENT_CONFIG", global = true)]
    pub client_config: Option<std::path::PathBuf>,
    /// Print the server's JSON instead of a table (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
}

/// The client configuration file's settings.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    url: Option<String>,
    token: Option<String>,
}

impl Connection {
    /// A client for the configured server: flags, then the environment, then the file.
    pub fn client(&self) -> anyhow::Result<ApiClient> {
        let file = self.file()?;
        let url = self.server_url.clone().or(file.url).unwrap_or_else(|| DEFAULT_URL.to_owned());
        ApiClient::new(&url, self.token.clone().or(file.token))
    }

    fn file(&self) -> anyhow::Result<ClientFile> {
        use anyhow::Context as _;
        let (path, required) = match &self.client_config {
            Some(path) => (path.clone(), true),
            None => match std::env::var_os("HOME") {
                Some(home) => (std::path::PathBuf::from(home).join(".config/herald/client.toml"), false),
                None => return Ok(ClientFile::default()),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if !required && error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ClientFile::default());
            }
            Err(error) => return Err(error).with_context(|| format!("could not read {}", path.display())),
        };
        // The parser's message quotes the offending line, which may hold the token: not shown.
        toml::from_str(&text).map_err(|_| {
            anyhow::anyhow!(
                "{} is not a valid client configuration (TOML with `url` and `token`)",
                path.display()
            )
        })
    }
}

/// Prints `value` as pretty JSON when `--json` was given, otherwise calls `print_table`.
fn output(connection: &Connection, value: &serde_json::Value, print_table: impl FnOnce(&serde_json::Value)) {
    if connection.json {
        println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
    } else {
        print_table(value);
    }
}

/// The text of a JSON field for a table cell: strings without quotes, `-` for null/absent.
fn cell(value: &serde_json::Value, field: &str) -> String {
    match value.get(field) {
        None | Some(serde_json::Value::Null) => "-".to_owned(),
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

/// The `data` array of a list answer (empty when absent).
fn list_items(value: &serde_json::Value) -> &[serde_json::Value] {
    value.get("data").and_then(serde_json::Value::as_array).map_or(&[], Vec::as_slice)
}

/// Prints one row per item of a list answer, with the given columns (header, JSON field).
fn print_list(value: &serde_json::Value, columns: &[(&str, &str)]) {
    let rows = list_items(value)
        .iter()
        .map(|item| columns.iter().map(|(_, field)| cell(item, field)).collect())
        .collect();
    table::print(&columns.iter().map(|(header, _)| *header).collect::<Vec<_>>(), rows);
    // The next page, when there is one, is a flag away.
    if value["done"] == serde_json::Value::Bool(false)
        && let Some(iterator) = value["iterator"].as_str()
    {
        println!("More: add --iterator {iterator}");
    }
}

/// Prints one object as `field  value` lines.
fn print_object(value: &serde_json::Value, fields: &[(&str, &str)]) {
    let rows = fields.iter().map(|(header, field)| vec![(*header).to_owned(), cell(value, field)]).collect();
    table::print_plain(rows);
}

/// A query string `?limit=N` when a limit was given.
/// The query string of one page of a list: `--limit` and the `--iterator` a previous page
/// printed.
fn page_query(limit: Option<u32>, iterator: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(limit) = limit {
        query.append_pair("limit", &limit.to_string());
    }
    if let Some(iterator) = iterator {
        query.append_pair("iterator", iterator);
    }
    let query = query.finish();
    if query.is_empty() { query } else { format!("?{query}") }
}

/// Parses a wait such as `30s`, `2m` or `500ms`.
fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    crate::config::values::parse_duration(text)
}
