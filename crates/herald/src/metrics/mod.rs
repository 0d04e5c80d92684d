//! Prometheus metrics: counters and histograms kept in atomics, rendered in the text
//! exposition format (0.0.4) when `/metrics` is scraped.
//!
//! One [`Metrics`] is created by the app and shared (an `Arc`) by the API and the worker; there
//! are no global statics. This module knows no HTTP types: the API's middleware and the
//! worker's lanes hand it plain values. Every label set is bounded: outcomes are an enum, routes
//! are the router's static templates, methods outside the standard ones are counted as `OTHER`.

mod histogram;
mod ingest;

pub use self::ingest::IngestMetrics;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use herald_core::stats::{CommitObserver, QueueStats};

use self::histogram::{BATCH_BUCKETS, COMMIT_BUCKETS, DURATION_BUCKETS, Histogram};

/// What one delivery attempt came to, as the `outcome` label says it (classified once, by
/// `herald_core::settle`).
pub use herald_core::settle::AttemptClass as AttemptOutcome;

/// Where an attempt class is counted.
trait Indexed {
    fn index(self) -> usize;
}

impl Indexed for AttemptOutcome {
    fn index(self) -> usize {
        Self::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// One API request, as the HTTP metrics label it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RequestKey {
    route: String,
    method: &'static str,
    status: u16,
}

/// The HTTP series: one counter per route, method and status, one histogram per route and
/// status class.
#[derive(Debug, Default)]
struct HttpSeries {
    requests: BTreeMap<RequestKey, u64>,
    durations: BTreeMap<(String, &'static str), Histogram>,
}

/// What the retention job removes, as the `kind` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionKind {
    /// Message payloads past their retention (the message stays).
    Payloads,
    /// Whole messages, with their deliveries and attempts.
    Messages,
    /// Attempts past attempt retention (their message stays).
    Attempts,
}

impl RetentionKind {
    const ALL: [Self; 3] = [Self::Payloads, Self::Messages, Self::Attempts];

    fn label(self) -> &'static str {
        match self {
            Self::Payloads => "payloads",
            Self::Messages => "messages",
            Self::Attempts => "attempts",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The state of the shared queue, read from the store when `/metrics` is scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueSnapshot {
    pub stats: QueueStats,
    /// How long the longest-waiting due delivery has been due; zero when nothing is due.
    pub oldest_due_age: Duration,
    /// How long ago the oldest message still waiting in an ordered lane was accepted; zero
    /// when no lane has work.
    pub oldest_lane_message_age: Duration,
}

/// Herald's metrics. Cheap to update from any task; rendered on demand.
#[derive(Debug)]
pub struct Metrics {
    /// Messages the store accepted through the API.
    messages_accepted: AtomicU64,
    /// Delivery attempts, indexed by [`AttemptOutcome::index`].
    delivery_attempts: [AtomicU64; AttemptOutcome::ALL.len()],
    /// How long attempts took, from sending to the end of the response (or the failure).
    delivery_duration: Histogram,
    /// API requests. Keys are dynamic but bounded (route templates × methods × statuses), so
    /// a map behind a lock held for one insert or one render.
    http: Mutex<HttpSeries>,
    /// How long the SQLite group-commit writer's transactions took, and how many writes each
    /// carried (the two numbers that explain its throughput).
    store_commit_duration: Histogram,
    store_commit_writes: Histogram,
    /// Rows the retention job removed, indexed by [`RetentionKind::index`].
    retention_deleted: [AtomicU64; RetentionKind::ALL.len()],
    /// The ingest gateway's series.
    pub ingest: IngestMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            messages_accepted: AtomicU64::new(0),
            delivery_attempts: Default::default(),
            delivery_duration: Histogram::seconds(DURATION_BUCKETS),
            http: Mutex::default(),
            store_commit_duration: Histogram::seconds(COMMIT_BUCKETS),
            store_commit_writes: Histogram::counts(BATCH_BUCKETS),
            retention_deleted: Default::default(),
            ingest: IngestMetrics::default(),
        }
    }
}

impl CommitObserver for Metrics {
    fn batch_committed(&self, writes: usize, took: Duration) {
        self.store_commit_duration.observe_duration(took);
        self.store_commit_writes.observe(writes as f64);
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// The retention job removed `count` rows of a kind.
    pub fn retention_deleted(&self, kind: RetentionKind, count: u64) {
        self.retention_deleted[kind.index()].fetch_add(count, Ordering::Relaxed);
    }

    /// A message was accepted (stored) by the API.
    pub fn message_accepted(&self) {
        self.messages_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// A delivery attempt finished.
    pub fn delivery_attempted(&self, outcome: AttemptOutcome, duration: Duration) {
        self.delivery_attempts[outcome.index()].fetch_add(1, Ordering::Relaxed);
        self.delivery_duration.observe_duration(duration);
    }

    /// An API request was answered. `route` is the matched route template (or `unmatched`).
    pub fn http_request(&self, route: &str, method: &str, status: u16, duration: Duration) {
        let method = bounded_method(method);
        let mut http = self.http.lock().unwrap_or_else(PoisonError::into_inner);
        let key = RequestKey { route: route.to_owned(), method, status };
        *http.requests.entry(key).or_default() += 1;
        let class = status_class(status);
        if let Some(histogram) = http.durations.get(&(route.to_owned(), class)) {
            histogram.observe_duration(duration);
        } else {
            let histogram = Histogram::seconds(DURATION_BUCKETS);
            histogram.observe_duration(duration);
            http.durations.insert((route.to_owned(), class), histogram);
        }
    }

    /// All metrics in the Prometheus text exposition format, version 0.0.4, with the queue
    /// gauges when the store answered (`None`: it did not, and `herald_store_up` says 0).
    pub fn render(&self, queue: Option<&QueueSnapshot>) -> String {
        let mut out = String::with_capacity(8192);
        header(&mut out, "herald_messages_accepted_total", "counter", "Messages accepted by the API.");
        let accepted = self.messages_accepted.load(Ordering::Relaxed);
        let _ = writeln!(out, "herald_messages_accepted_total {accepted}");
        self.ingest.render(&mut out);

        header(&mut out, "herald_delivery_attempts_total", "counter", "Delivery attempts by outcome.");
        for outcome in AttemptOutcome::ALL {
            let count = self.delivery_attempts[outcome.index()].load(Ordering::Relaxed);
            let _ =
                writeln!(out, "herald_delivery_attempts_total{{outcome=\"{}\"}} {count}", outcome.label());
        }

        let name = "herald_delivery_attempt_duration_seconds";
        header(&mut out, name, "histogram", "How long delivery attempts took.");
        self.delivery_duration.render(&mut out, name, "");

        let http = self.http.lock().unwrap_or_else(PoisonError::into_inner);
        header(
            &mut out,
            "herald_http_requests_total",
            "counter",
            "API requests by route, method and status.",
        );
        for (key, count) in &http.requests {
            let _ = writeln!(
                out,
                "herald_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {count}",
                escape(&key.route),
                key.method,
                key.status
            );
        }
        let name = "herald_http_request_duration_seconds";
        header(&mut out, name, "histogram", "How long the API took to answer, by route and status class.");
        for ((route, class), histogram) in &http.durations {
            histogram.render(
                &mut out,
                name,
                &format!("route=\"{}\",status_class=\"{class}\",", escape(route)),
            );
        }
        drop(http);

        let name = "herald_store_commit_duration_seconds";
        header(&mut out, name, "histogram", "How long the SQLite writer's group commits took.");
        self.store_commit_duration.render(&mut out, name, "");
        let name = "herald_store_commit_writes";
        header(&mut out, name, "histogram", "Writes carried by each SQLite group commit.");
        self.store_commit_writes.render(&mut out, name, "");

        let name = "herald_retention_deleted_total";
        header(&mut out, name, "counter", "Rows removed by the retention job, by kind.");
        for kind in RetentionKind::ALL {
            let count = self.retention_deleted[kind.index()].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{kind=\"{}\"}} {count}", kind.label());
        }

        render_queue(&mut out, queue);
        out
    }
}

/// The gauges read from the store at scrape time. They describe the shared database, so every
/// node of a cluster reports the same values.
fn render_queue(out: &mut String, queue: Option<&QueueSnapshot>) {
    header(
        out,
        "herald_store_up",
        "gauge",
        "Whether the store answered this scrape's queries (1) or not (0).",
    );
    let _ = writeln!(out, "herald_store_up {}", u8::from(queue.is_some()));
    let Some(queue) = queue else { return };
    let stats = &queue.stats;
    let name = "herald_queue_deliveries";
    header(out, name, "gauge", "Deliveries in the queue: due now, scheduled for later, leased by a worker.");
    for (state, count) in [("due", stats.due), ("scheduled", stats.scheduled), ("leased", stats.leased)] {
        let _ = writeln!(out, "{name}{{state=\"{state}\"}} {count}");
    }
    let gauges = [
        (
            "herald_queue_oldest_due_age_seconds",
            "How long the longest-waiting due delivery has been due (0 when none is).",
            queue.oldest_due_age.as_secs_f64(),
        ),
        ("herald_endpoints_disabled", "Endpoints that are disabled.", stats.endpoints_disabled as f64),
        (
            "herald_endpoints_failing",
            "Enabled endpoints that have failed since their last success.",
            stats.endpoints_failing as f64,
        ),
        (
            "herald_endpoints_circuit_open",
            "Endpoints whose circuit breaker is open (nothing is sent to them for now).",
            stats.circuits_open as f64,
        ),
        (
            "herald_ordered_lanes_held",
            "Ordered lanes held by an exhausted head (orderedOnExhausted: pause) until a resend or recover.",
            stats.lanes_held as f64,
        ),
        (
            "herald_ordered_lane_oldest_message_age_seconds",
            "How long ago the oldest message still waiting in an ordered lane was accepted (0 when none waits).",
            queue.oldest_lane_message_age.as_secs_f64(),
        ),
    ];
    for (name, help, value) in gauges {
        header(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// `2xx`, `4xx`, `5xx`, ... for a status code: latency histograms keep this, not the code,
/// to bound their series.
fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The standard methods as themselves, anything else as `OTHER`, so clients can't grow the
/// label set.
fn bounded_method(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"];
    KNOWN.into_iter().find(|known| *known == method).unwrap_or("OTHER")
}

/// Escapes a label value as the exposition format requires.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_exposition_format() {
        let metrics = Metrics::new();
        metrics.message_accepted();
        metrics.message_accepted();
        metrics.delivery_attempted(AttemptOutcome::classify(200, false, false), Duration::from_millis(3));
        metrics.delivery_attempted(AttemptOutcome::classify(503, false, false), Duration::from_millis(700));
        metrics.delivery_attempted(AttemptOutcome::classify(0, true, false), Duration::from_secs(60));
        metrics.http_request("/api/v1/app/{app_id}/msg", "POST", 202, Duration::from_millis(20));
        metrics.http_request("unmatched", "BREW", 404, Duration::from_millis(1));
        metrics.batch_committed(3, Duration::from_micros(1500));
        metrics.batch_committed(300, Duration::from_millis(20));
        metrics.retention_deleted(RetentionKind::Attempts, 500);
        metrics.retention_deleted(RetentionKind::Attempts, 7);
        let queue = QueueSnapshot {
            stats: QueueStats {
                due: 4,
                scheduled: 2,
                leased: 1,
                circuits_open: 1,
                lanes_held: 2,
                ..QueueStats::default()
            },
            oldest_due_age: Duration::from_millis(2500),
            oldest_lane_message_age: Duration::from_secs(90),
        };
        let text = metrics.render(Some(&queue));

        for line in [
            "# TYPE herald_messages_accepted_total counter",
            "herald_messages_accepted_total 2",
            "herald_delivery_attempts_total{outcome=\"success\"} 1",
            "herald_delivery_attempts_total{outcome=\"http_5xx\"} 1",
            "herald_delivery_attempts_total{outcome=\"refused\"} 1",
            "herald_delivery_attempts_total{outcome=\"timeout\"} 0",
            "# TYPE herald_delivery_attempt_duration_seconds histogram",
            "herald_delivery_attempt_duration_seconds_bucket{le=\"0.005\"} 1",
            "herald_delivery_attempt_duration_seconds_bucket{le=\"0.5\"} 1",
            "herald_delivery_attempt_duration_seconds_bucket{le=\"1\"} 2",
            "herald_delivery_attempt_duration_seconds_bucket{le=\"30\"} 2",
            "herald_delivery_attempt_duration_seconds_bucket{le=\"+Inf\"} 3",
            "herald_delivery_attempt_duration_seconds_sum 60.703",
            "herald_delivery_attempt_duration_seconds_count 3",
            "herald_http_requests_total{route=\"/api/v1/app/{app_id}/msg\",method=\"POST\",status=\"202\"} 1",
            "herald_http_requests_total{route=\"unmatched\",method=\"OTHER\",status=\"404\"} 1",
            "herald_http_request_duration_seconds_bucket{route=\"/api/v1/app/{app_id}/msg\",status_class=\"2xx\",le=\"0.025\"} 1",
            "herald_http_request_duration_seconds_count{route=\"unmatched\",status_class=\"4xx\"} 1",
            "herald_store_commit_duration_seconds_bucket{le=\"0.001\"} 0",
            "herald_store_commit_duration_seconds_bucket{le=\"0.0025\"} 1",
            "herald_store_commit_duration_seconds_count 2",
            "herald_store_commit_writes_bucket{le=\"4\"} 1",
            "herald_store_commit_writes_bucket{le=\"256\"} 1",
            "herald_store_commit_writes_bucket{le=\"512\"} 2",
            "herald_store_commit_writes_sum 303",
            "herald_retention_deleted_total{kind=\"attempts\"} 507",
            "herald_retention_deleted_total{kind=\"payloads\"} 0",
            "herald_store_up 1",
            "# TYPE herald_queue_deliveries gauge",
            "herald_queue_deliveries{state=\"due\"} 4",
            "herald_queue_deliveries{state=\"scheduled\"} 2",
            "herald_queue_deliveries{state=\"leased\"} 1",
            "herald_queue_oldest_due_age_seconds 2.5",
            "herald_ordered_lanes_held 2",
            "herald_ordered_lane_oldest_message_age_seconds 90",
            "herald_endpoints_disabled 0",
            "herald_endpoints_circuit_open 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        // Every sample line is `name{labels} value` or `name value`; every family is typed.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
            assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
        }
        assert!(text.ends_with('\n'));
        // Without the store, the gauges are left out and `herald_store_up` says so.
        let down = metrics.render(None);
        assert!(down.lines().any(|l| l == "herald_store_up 0"), "{down}");
        assert!(!down.contains("herald_queue_deliveries"), "{down}");
    }

    #[test]
    fn classifies_attempts() {
        assert_eq!(AttemptOutcome::classify(0, false, true), AttemptOutcome::Timeout);
        assert_eq!(AttemptOutcome::classify(0, false, false), AttemptOutcome::NoResponse);
        assert_eq!(AttemptOutcome::classify(404, false, false), AttemptOutcome::Http4xx);
        assert_eq!(AttemptOutcome::classify(302, false, false), AttemptOutcome::HttpOther);
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
