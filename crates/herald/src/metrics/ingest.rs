//! The ingest gateway's metrics (`herald_ingest_*`): requests accepted, refused by reason,
//! duplicates, and how long accepted events took to reach a destination.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use herald_core::ingest::RefusalReason;

use super::header;
use super::histogram::{DURATION_BUCKETS, Histogram};

/// Why a request to an ingest URL was refused, as the `reason` label says it: the source's
/// reasons, and an unknown token (no source).
const REASONS: [&str; 5] =
    ["missing_signature", "bad_signature", "stale_timestamp", "too_large", "unknown_token"];

/// Counters and the forwarding-latency histogram of the ingest gateway.
#[derive(Debug)]
pub struct IngestMetrics {
    received: AtomicU64,
    duplicates: AtomicU64,
    refused: [AtomicU64; REASONS.len()],
    forward_latency: Histogram,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        Self {
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            refused: Default::default(),
            forward_latency: Histogram::seconds(DURATION_BUCKETS),
        }
    }
}

impl IngestMetrics {
    /// An event was verified and stored.
    pub fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// A verified event repeated a delivery id seen within the window.
    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    /// A request was refused; `None` for an unknown token.
    pub fn refused(&self, reason: Option<RefusalReason>) {
        let label = reason.map_or("unknown_token", RefusalReason::name);
        if let Some(index) = REASONS.iter().position(|r| *r == label) {
            self.refused[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An ingested event reached a destination this long after it was accepted.
    pub fn forwarded(&self, latency: Duration) {
        self.forward_latency.observe_duration(latency);
    }

    pub(super) fn render(&self, out: &mut String) {
        header(
            out,
            "herald_ingest_received_total",
            "counter",
            "Events accepted at ingest URLs (verified and stored).",
        );
        let _ = writeln!(out, "herald_ingest_received_total {}", self.received.load(Ordering::Relaxed));
        header(
            out,
            "herald_ingest_duplicates_total",
            "counter",
            "Verified events answered as duplicates, not forwarded again.",
        );
        let _ = writeln!(out, "herald_ingest_duplicates_total {}", self.duplicates.load(Ordering::Relaxed));
        header(out, "herald_ingest_refused_total", "counter", "Requests to ingest URLs refused, by reason.");
        for (reason, count) in REASONS.iter().zip(&self.refused) {
            let _ = writeln!(
                out,
                "herald_ingest_refused_total{{reason=\"{reason}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        header(
            out,
            "herald_ingest_forward_latency_seconds",
            "histogram",
            "From an ingested event's acceptance to its delivery to a destination.",
        );
        self.forward_latency.render(out, "herald_ingest_forward_latency_seconds", "");
    }
}
