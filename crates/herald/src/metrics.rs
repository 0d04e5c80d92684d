//! Prometheus metrics: counters and histograms kept in atomics, rendered in the text
//! exposition format (0.0.4) when `/metrics` is scraped.
//!
//! One [`Metrics`] is created by the app and shared (an `Arc`) by the API and the worker; there
//! are no global statics. This module knows no HTTP types: the API's middleware and the
//! worker's lanes hand it plain values. Every label set is bounded: outcomes are an enum, routes
//! are the router's static templates, methods outside the standard ones are counted as `OTHER`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds (seconds) of the histogram buckets; `+Inf` is implied.
const DURATION_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// What one delivery attempt came to, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx answer.
    Success,
    /// A 4xx answer.
    Http4xx,
    /// A 5xx answer.
    Http5xx,
    /// Any other status (1xx, 3xx): redirects are not followed.
    HttpOther,
    /// No answer: connection refused or reset, TLS or DNS failure.
    NoResponse,
    /// The attempt ran out of time.
    Timeout,
    /// The SSRF guard refused the destination; nothing was sent.
    Refused,
}

impl AttemptOutcome {
    const ALL: [Self; 7] = [
        Self::Success,
        Self::Http4xx,
        Self::Http5xx,
        Self::HttpOther,
        Self::NoResponse,
        Self::Timeout,
        Self::Refused,
    ];

    /// Classifies an attempt; `status` is 0 when there was no response.
    pub fn classify(status: u16, refused: bool, timed_out: bool) -> Self {
        match status {
            _ if refused => Self::Refused,
            _ if timed_out => Self::Timeout,
            0 => Self::NoResponse,
            200..=299 => Self::Success,
            400..=499 => Self::Http4xx,
            500..=599 => Self::Http5xx,
            _ => Self::HttpOther,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Http4xx => "http_4xx",
            Self::Http5xx => "http_5xx",
            Self::HttpOther => "http_other",
            Self::NoResponse => "no_response",
            Self::Timeout => "timeout",
            Self::Refused => "refused",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// A histogram of durations with the fixed [`DURATION_BUCKETS`].
#[derive(Debug, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    /// Sum of all observations, in nanoseconds (u64 nanoseconds last 584 years).
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let slot =
            DURATION_BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(DURATION_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines; `labels` is empty or `key="value",`.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (slot, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let bound = DURATION_BUCKETS.get(slot).map_or_else(|| "+Inf".to_owned(), f64::to_string);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let braces =
            if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.trim_end_matches(',')) };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// One API request, as the HTTP metrics label it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RequestKey {
    route: String,
    method: &'static str,
    status: u16,
}

/// The HTTP series: one counter per route, method and status, one histogram per route.
#[derive(Debug, Default)]
struct HttpSeries {
    requests: BTreeMap<RequestKey, u64>,
    durations: BTreeMap<String, Histogram>,
}

/// Herald's metrics. Cheap to update from any task; rendered on demand.
#[derive(Debug, Default)]
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
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// A message was accepted (stored) by the API.
    pub fn message_accepted(&self) {
        self.messages_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// A delivery attempt finished.
    pub fn delivery_attempted(&self, outcome: AttemptOutcome, duration: Duration) {
        self.delivery_attempts[outcome.index()].fetch_add(1, Ordering::Relaxed);
        self.delivery_duration.observe(duration);
    }

    /// An API request was answered. `route` is the matched route template (or `unmatched`).
    pub fn http_request(&self, route: &str, method: &str, status: u16, duration: Duration) {
        let method = bounded_method(method);
        let mut http = self.http.lock().unwrap_or_else(PoisonError::into_inner);
        let key = RequestKey { route: route.to_owned(), method, status };
        *http.requests.entry(key).or_default() += 1;
        if let Some(histogram) = http.durations.get(route) {
            histogram.observe(duration);
        } else {
            let histogram = Histogram::default();
            histogram.observe(duration);
            http.durations.insert(route.to_owned(), histogram);
        }
    }

    /// All metrics in the Prometheus text exposition format, version 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        header(&mut out, "herald_messages_accepted_total", "counter", "Messages accepted by the API.");
        let accepted = self.messages_accepted.load(Ordering::Relaxed);
        let _ = writeln!(out, "herald_messages_accepted_total {accepted}");

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
        header(&mut out, name, "histogram", "How long the API took to answer, by route.");
        for (route, histogram) in &http.durations {
            histogram.render(&mut out, name, &format!("route=\"{}\",", escape(route)));
        }
        out
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
        let text = metrics.render();

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
            "herald_http_request_duration_seconds_bucket{route=\"/api/v1/app/{app_id}/msg\",le=\"0.025\"} 1",
            "herald_http_request_duration_seconds_count{route=\"unmatched\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        // Every sample line is `name{labels} value` or `name value`; every family is typed.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
            assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
        }
        assert!(text.ends_with('\n'));
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
