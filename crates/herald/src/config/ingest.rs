//! The ingest gateway's settings: the largest body a source accepts, the deduplication window,
//! and how long a rotated ingest token keeps working.

use std::time::Duration;

use super::values::parse_positive_duration;
use super::{ConfigError, Raw, field};

/// How the ingest gateway receives (`ingest_*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestConfig {
    /// The largest body accepted at an ingest URL; larger ones get 413 (`ingest_max_body_bytes`).
    pub max_body_bytes: usize,
    /// An event whose provider delivery id was accepted this recently is a duplicate
    /// (`ingest_dedup_window`).
    pub dedup_window: Duration,
    /// How long a source's previous token still works after a rotation (`ingest_token_grace`).
    pub token_grace: Duration,
}

pub(super) fn parse(raw: &Raw) -> Result<IngestConfig, ConfigError> {
    Ok(IngestConfig {
        max_body_bytes: field(raw, "ingest_max_body_bytes", |v| {
            let bytes: usize = v.parse().map_err(|_| format!("`{v}` is not a number of bytes"))?;
            if bytes < 1024 { Err("must be at least 1024".to_owned()) } else { Ok(bytes) }
        })?,
        dedup_window: field(raw, "ingest_dedup_window", parse_positive_duration)?,
        token_grace: field(raw, "ingest_token_grace", super::values::parse_duration)?,
    })
}
