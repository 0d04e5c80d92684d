//! The local record of received webhooks: one JSON object per line, appended as each request
//! arrives and read back by `herald listen replay`. Knows nothing of HTTP servers or clients.
//!
//! The file holds the headers as received, including any `Authorization` token, so that a
//! replay is faithful; it is meant for a developer's machine only.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One received request, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredWebhook {
    /// When `herald listen` received it.
    pub received_at: DateTime<Utc>,
    /// The HTTP method (POST for webhooks).
    pub method: String,
    /// The request path and query, e.g. `/hooks?x=1`.
    pub path: String,
    /// `webhook-id` (or `svix-id`) when present: the key `replay --id` selects by.
    pub webhook_id: Option<String>,
    /// Every header in arrival order as `[name, value]` pairs (values that are not UTF-8 are
    /// converted lossily).
    pub headers: Vec<(String, String)>,
    /// The body as text (converted lossily if it was not UTF-8).
    pub body: String,
}

impl StoredWebhook {
    /// The record of one request received now.
    pub fn received(method: &str, path: &str, headers: &HeaderMap, body: &[u8]) -> StoredWebhook {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            })
            .collect();
        let webhook_id = ["webhook-id", "svix-id"].iter().find_map(|wanted| {
            headers.iter().find(|(name, _)| name == wanted).map(|(_, value)| value.clone())
        });
        StoredWebhook {
            received_at: herald_core::clock::system_now(),
            method: method.to_owned(),
            path: path.to_owned(),
            webhook_id,
            headers,
            body: String::from_utf8_lossy(body).into_owned(),
        }
    }
}

/// The append-only file `herald listen` writes to; shared by the request handlers.
#[derive(Debug)]
pub(crate) struct StoreFile {
    /// Where the file is, for messages.
    path: PathBuf,
    /// Appends are serialised so that two requests can never interleave their lines.
    file: Mutex<File>,
}

impl StoreFile {
    /// Opens (creating if needed) the file for appending.
    pub(crate) fn open(path: &Path) -> anyhow::Result<StoreFile> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("could not open the store file {}", path.display()))?;
        Ok(StoreFile { path: path.to_owned(), file: Mutex::new(file) })
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line, written with a single call and flushed, so a crash loses at most the
    /// request being written.
    pub(crate) fn append(&self, webhook: &StoredWebhook) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(webhook).context("could not encode the webhook")?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(&line).and_then(|()| file.flush()).context("could not append to the store file")
    }
}

/// Every webhook in the file, oldest first. A line that does not parse is an error naming
/// its number: a silently skipped webhook would be worse than a refusal.
pub(crate) fn read_all(path: &Path) -> anyhow::Result<Vec<StoredWebhook>> {
    let file =
        File::open(path).with_context(|| format!("could not open the store file {}", path.display()))?;
    let mut webhooks = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("could not read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let webhook = serde_json::from_str(&line)
            .with_context(|| format!("{} line {} is not a stored webhook", path.display(), index + 1))?;
        webhooks.push(webhook);
    }
    Ok(webhooks)
}
