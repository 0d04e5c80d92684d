//! A Prometheus histogram in atomics: fixed bucket bounds, counts per bucket and a sum.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of delivery and API durations; `+Inf` is implied.
pub(super) const DURATION_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Upper bounds (seconds) of store commits: an fsync takes from a fraction of a millisecond
/// (a disk with a write cache) to tens of milliseconds (a cloud volume).
pub(super) const COMMIT_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
/// Upper bounds of writes per commit (the group-commit writer takes at most 512).
pub(super) const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// A histogram with fixed bucket bounds.
#[derive(Debug)]
pub(super) struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    buckets: Box<[AtomicU64]>,
    /// Sum of all observations in units of `1 / scale` (nanoseconds for durations), so it
    /// can be an integer atomic.
    sum_scaled: AtomicU64,
    scale: f64,
}

impl Histogram {
    /// A histogram of durations in seconds (sum kept in nanoseconds: 584 years fit).
    pub(super) fn seconds(bounds: &'static [f64]) -> Self {
        Self::new(bounds, 1e9)
    }

    /// A histogram of counts (sum kept as an integer).
    pub(super) fn counts(bounds: &'static [f64]) -> Self {
        Self::new(bounds, 1.0)
    }

    fn new(bounds: &'static [f64], scale: f64) -> Self {
        let buckets = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self { bounds, buckets, sum_scaled: AtomicU64::new(0), scale }
    }

    pub(super) fn observe(&self, value: f64) {
        let slot = self.bounds.iter().position(|bound| value <= *bound).unwrap_or(self.bounds.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        // Saturating float-to-int cast: a negative or absurd value can't wrap the sum.
        self.sum_scaled.fetch_add((value * self.scale) as u64, Ordering::Relaxed);
    }

    pub(super) fn observe_duration(&self, duration: std::time::Duration) {
        self.observe(duration.as_secs_f64());
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines; `labels` is empty or `key="value",`.
    pub(super) fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (slot, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let bound = self.bounds.get(slot).map_or_else(|| "+Inf".to_owned(), f64::to_string);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        let sum = self.sum_scaled.load(Ordering::Relaxed) as f64 / self.scale;
        let braces =
            if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.trim_end_matches(',')) };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}
