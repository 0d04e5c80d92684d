//! The bench's output: the result (a table, or one JSON object), the verdict, latency
//! percentiles, and the progress line shown on a terminal while the load runs.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::load::{LoadCounters, LoadOutcome};
use super::receiver::{ReceiverStats, Tally};
use super::target::{self, Target};
use super::{BenchClock, Options};

/// The result of one run, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// "started" (a Herald started by the bench) or the URL given with --url.
    pub target: String,
    /// What the started Herald runs on: "sqlite", or "postgres, N nodes"; "external" for --url.
    pub backend: String,
    pub messages: u64,
    pub endpoints: u32,
    pub concurrency: u32,
    /// Messages per second of the open loop; null for the closed loop.
    pub rate: Option<f64>,
    pub payload_bytes: usize,
    /// Ordered endpoints, with messages spread over this many ordering keys.
    pub ordered_keys: Option<u32>,
    /// Every endpoint ran a small transformation.
    pub transformation: bool,
    /// Conversion steps each delivery ran (endpoints pinned to version 1).
    pub convert_steps: Option<u32>,
    /// Messages Herald answered 202 for.
    pub accepted: u64,
    /// Sends answered with anything but 202, or not answered.
    pub api_errors: u64,
    pub first_api_error: Option<String>,
    /// From the first send to the last 202.
    pub send_seconds: f64,
    /// `accepted / send_seconds`: the API's throughput.
    pub accepted_per_second: f64,
    /// `accepted × endpoints`.
    pub expected_deliveries: u64,
    /// First-time deliveries of accepted messages, over all endpoints.
    pub deliveries: u64,
    /// From the first send to the last first-time delivery.
    pub end_to_end_seconds: f64,
    /// `deliveries / end_to_end_seconds`.
    pub delivered_per_second: f64,
    /// Arrival at the receiver minus (scheduled) send time, over first-time deliveries.
    pub latency_ms: Percentiles,
    /// How long Herald took to answer an accepted send (request start to the 2xx): the
    /// acknowledgement a provider waits for.
    pub answer_ms: Percentiles,
    /// Deliveries of a message to an endpoint that already had it (same webhook-id).
    pub duplicates: u64,
    /// Expected deliveries that never arrived.
    pub missing: u64,
    /// Deliveries of messages whose send the bench saw fail (e.g. timed out after Herald
    /// had accepted it).
    pub unexpected: u64,
    pub signature_failures: u64,
    /// Requests without webhook headers or with a body that is not a bench payload.
    pub malformed: u64,
    /// `--fail-first` and `--hang-first`: the fractions asked for.
    pub fail_first: f64,
    pub hang_first: f64,
    /// First attempts the receiver answered 500, or held past Herald's timeout, on purpose.
    pub failed_first_attempts: u64,
    pub hung_first_attempts: u64,
    /// `--kill-node`: a node was killed mid-run.
    pub killed_node: bool,
    /// Ordered runs: deliveries that arrived before a message of their ordering key that had
    /// been accepted before they were sent (0: every key in order); null when not ordered.
    pub order_violations: Option<u64>,
    /// True when the deliveries did not all arrive within --timeout.
    pub timed_out: bool,
    /// Peak resident memory (VmHWM) of the Herald the bench started; null with --url.
    pub peak_memory_mib: Option<f64>,
    /// Where the CPU went while the load ran and the deliveries arrived.
    pub cpu: CpuUse,
    /// CPU and WAL per delivery received.
    pub per_delivery: PerDelivery,
}

/// What a run measured, before it is summed up.
#[derive(Debug)]
pub struct Measurements {
    pub outcome: LoadOutcome,
    pub tally: Tally,
    /// True when the deliveries did not all arrive within --timeout.
    pub timed_out: bool,
    pub peak_memory_mib: Option<f64>,
    pub cpu: CpuUse,
    pub killed_node: bool,
}

/// CPU time used from the first send until the deliveries arrived (or --timeout).
#[derive(Debug, Serialize)]
pub struct CpuUse {
    pub wall_seconds: f64,
    /// Of the Herald the bench started; null with --url.
    pub herald_seconds: Option<f64>,
    /// Of the bench itself: its senders and its receiver.
    pub bench_seconds: Option<f64>,
    /// Of the local PostgreSQL server (every `postgres` process, so other clients' work
    /// counts too), when the bench started its nodes on PostgreSQL; null otherwise.
    pub postgres_seconds: Option<f64>,
    /// WAL the PostgreSQL server wrote meanwhile (`pg_stat_wal`), in bytes; null without it.
    pub postgres_wal_bytes: Option<u64>,
}

/// What one delivery cost, from [`CpuUse`] over the deliveries received: the number that
/// says how many Herald nodes one PostgreSQL server sustains.
#[derive(Debug, Serialize)]
pub struct PerDelivery {
    pub herald_cpu_us: Option<f64>,
    pub postgres_cpu_us: Option<f64>,
    pub postgres_wal_bytes: Option<f64>,
}

impl PerDelivery {
    fn of(cpu: &CpuUse, deliveries: u64) -> Self {
        let each = |total: Option<f64>| total.filter(|_| deliveries > 0).map(|t| t / deliveries as f64);
        Self {
            herald_cpu_us: each(cpu.herald_seconds.map(|s| s * 1e6)),
            postgres_cpu_us: each(cpu.postgres_seconds.map(|s| s * 1e6)),
            postgres_wal_bytes: each(cpu.postgres_wal_bytes.map(|b| b as f64)),
        }
    }
}

/// CPU times at one moment, to subtract from a later sample.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: u64,
    herald: Option<f64>,
    bench: Option<f64>,
    postgres: Option<f64>,
    wal_bytes: Option<u64>,
}

impl CpuSample {
    pub async fn take(target: &Target, clock: BenchClock) -> Self {
        Self {
            at: clock.now(),
            herald: target.cpu_seconds(),
            bench: target::cpu_seconds("self"),
            postgres: target.postgres_cpu_seconds(),
            wal_bytes: target.postgres_wal_bytes().await,
        }
    }

    /// The CPU used since `earlier`.
    pub fn since(self, earlier: Self) -> CpuUse {
        let used = |now: Option<f64>, then: Option<f64>| Some(now? - then?);
        CpuUse {
            wall_seconds: self.at.saturating_sub(earlier.at) as f64 / 1e9,
            herald_seconds: used(self.herald, earlier.herald),
            bench_seconds: used(self.bench, earlier.bench),
            postgres_seconds: used(self.postgres, earlier.postgres),
            postgres_wal_bytes: self
                .wal_bytes
                .zip(earlier.wal_bytes)
                .map(|(now, then)| now.saturating_sub(then)),
        }
    }
}

/// Latency percentiles in milliseconds (nearest rank); zero when nothing arrived.
#[derive(Debug, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// From latencies in nanoseconds, sorted ascending.
    fn of(sorted: &[u64]) -> Self {
        let rank = |fraction: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let index = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index] as f64 / 1e6
        };
        Self { p50: rank(0.50), p90: rank(0.90), p99: rank(0.99), max: rank(1.0) }
    }
}

impl Report {
    pub(super) fn new(options: &Options, target: &Target, measured: Measurements) -> Self {
        let Measurements { outcome, tally, timed_out, peak_memory_mib, cpu, killed_node } = measured;
        let seconds = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1e9;
        let per_second = |count: u64, seconds: f64| if seconds > 0.0 { count as f64 / seconds } else { 0.0 };
        let accepted = outcome.accepted_ids.len() as u64;
        let send_seconds = seconds(outcome.started, outcome.last_accepted);
        let end_to_end_seconds = seconds(outcome.started, tally.last_arrival);
        Self {
            target: if target.is_external() { target.base_url().to_owned() } else { "started".to_owned() },
            backend: target.backend().to_owned(),
            messages: options.plan.messages,
            endpoints: options.endpoints,
            concurrency: options.plan.concurrency,
            rate: options.plan.rate,
            payload_bytes: options.plan.payload_bytes,
            ordered_keys: options.plan.ordering_keys,
            transformation: options.shaping.transformation,
            convert_steps: options.shaping.convert_steps,
            accepted,
            api_errors: outcome.api_errors,
            first_api_error: outcome.first_error,
            send_seconds,
            accepted_per_second: per_second(accepted, send_seconds),
            expected_deliveries: accepted * u64::from(options.endpoints),
            deliveries: tally.deliveries,
            end_to_end_seconds,
            delivered_per_second: per_second(tally.deliveries, end_to_end_seconds),
            latency_ms: Percentiles::of(&tally.latencies),
            answer_ms: Percentiles::of(&{
                let mut times = outcome.answer_times.clone();
                times.sort_unstable();
                times
            }),
            duplicates: tally.duplicates,
            missing: tally.missing,
            unexpected: tally.unexpected,
            signature_failures: tally.signature_failures,
            malformed: tally.malformed,
            fail_first: options.faults.fail_first,
            hang_first: options.faults.hang_first,
            failed_first_attempts: tally.failed_first,
            hung_first_attempts: tally.hung_first,
            killed_node,
            order_violations: tally.order_violations,
            timed_out,
            peak_memory_mib,
            per_delivery: PerDelivery::of(&cpu, tally.deliveries),
            cpu,
        }
    }

    /// Why this run failed; empty when it did not.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.accepted == 0 {
            failures.push(format!(
                "no message was accepted ({})",
                self.first_api_error.as_deref().unwrap_or("no answer")
            ));
        }
        if self.missing > 0 {
            let when = if self.timed_out { " within --timeout" } else { "" };
            failures.push(format!("{} deliveries did not arrive{when}", self.missing));
        }
        // A killed node's attempts in flight are made again by the others: at least once.
        if self.duplicates > 0 && !self.killed_node {
            failures.push(format!("{} deliveries arrived more than once", self.duplicates));
        }
        if let Some(violations) = self.order_violations.filter(|n| *n > 0) {
            failures.push(format!(
                "{violations} deliveries arrived before a message of their ordering key accepted before they were sent"
            ));
        }
        if self.signature_failures > 0 {
            failures.push(format!("{} deliveries had no valid signature", self.signature_failures));
        }
        if self.malformed > 0 {
            failures
                .push(format!("{} deliveries lacked webhook headers or had a wrong body", self.malformed));
        }
        failures
    }
}

/// Prints the report as a table for people.
pub fn print_table(report: &Report) {
    let load = match report.rate {
        Some(rate) => format!("open loop at {rate} msg/s, at most {} in flight", report.concurrency),
        None => format!("closed loop, {} senders", report.concurrency),
    };
    let faulty = report.fail_first > 0.0 || report.hang_first > 0.0 || report.killed_node;
    let target = if report.target == "started" && faulty {
        format!(
            "a Herald started by the bench (default configuration but a 1 s request timeout, retries after 200 ms, \
             4 s leases and no circuit breaker; {})",
            report.backend
        )
    } else if report.target == "started" {
        format!("a Herald started by the bench (default configuration, {})", report.backend)
    } else {
        format!("the Herald at {}", report.target)
    };
    let plural = if report.endpoints == 1 { "" } else { "s" };
    let plural = match report.ordered_keys {
        Some(keys) => format!("{plural} (ordered, {keys} ordering key{})", if keys == 1 { "" } else { "s" }),
        None => plural.to_owned(),
    };
    let mut plural = plural;
    if report.transformation {
        plural.push_str(" with a transformation");
    }
    if let Some(steps) = report.convert_steps {
        plural.push_str(&format!(", {steps} conversion step{} each", if steps == 1 { "" } else { "s" }));
    }
    println!(
        "herald bench: {} messages × {} endpoint{plural}, {load}, {}-byte payloads, against {target}",
        report.messages, report.endpoints, report.payload_bytes
    );
    println!();
    let row = |name: &str, value: String| println!("  {name:<26}{value}");
    row("messages accepted", format!("{} of {}", report.accepted, report.messages));
    row("API throughput", format!("{:.0} msg/s  ({:.2} s)", report.accepted_per_second, report.send_seconds));
    row("deliveries received", format!("{} of {}", report.deliveries, report.expected_deliveries));
    row(
        "delivered end to end",
        format!(
            "{:.0} deliveries/s  ({:.2} s from first send to last arrival)",
            report.delivered_per_second, report.end_to_end_seconds
        ),
    );
    let latency = &report.latency_ms;
    row(
        "latency (send → arrival)",
        format!(
            "p50 {:.1} ms · p90 {:.1} ms · p99 {:.1} ms · max {:.1} ms",
            latency.p50, latency.p90, latency.p99, latency.max
        ),
    );
    let answer = &report.answer_ms;
    row(
        "API answer (POST → 2xx)",
        format!(
            "p50 {:.1} ms · p90 {:.1} ms · p99 {:.1} ms · max {:.1} ms",
            answer.p50, answer.p90, answer.p99, answer.max
        ),
    );
    if report.fail_first > 0.0 || report.hang_first > 0.0 {
        row(
            "faults (first attempts)",
            format!(
                "{} answered 500, {} held past the timeout",
                report.failed_first_attempts, report.hung_first_attempts
            ),
        );
    }
    if report.killed_node {
        row("killed", "the last node, with SIGKILL, at half the deliveries".to_owned());
    }
    if let Some(violations) = report.order_violations {
        let verdict = if violations == 0 {
            "every ordering key in order".to_owned()
        } else {
            format!("{violations} out of order")
        };
        row("order", verdict);
    }
    row("duplicates", report.duplicates.to_string());
    row("missing deliveries", report.missing.to_string());
    row("signature failures", report.signature_failures.to_string());
    let errors = match &report.first_api_error {
        Some(first) => format!("{}  (first: {first})", report.api_errors),
        None => report.api_errors.to_string(),
    };
    row("API errors", errors);
    if report.unexpected > 0 {
        row("unexpected deliveries", report.unexpected.to_string());
    }
    if report.malformed > 0 {
        row("malformed deliveries", report.malformed.to_string());
    }
    let memory = match report.peak_memory_mib {
        Some(mib) => format!("{mib:.1} MiB (VmHWM)"),
        None => "not measured (--url)".to_owned(),
    };
    row("Herald peak memory", memory);
    let cpu = &report.cpu;
    let share = |seconds: Option<f64>| match seconds {
        Some(seconds) if cpu.wall_seconds > 0.0 => {
            format!("{seconds:.1} s ({:.0}% of a core)", 100.0 * seconds / cpu.wall_seconds)
        }
        _ => "not measured".to_owned(),
    };
    let postgres = match cpu.postgres_seconds {
        Some(_) => format!(" · PostgreSQL {}", share(cpu.postgres_seconds)),
        None => String::new(),
    };
    row(
        "CPU time",
        format!(
            "Herald {} · bench {}{postgres}  over {:.1} s",
            share(cpu.herald_seconds),
            share(cpu.bench_seconds),
            cpu.wall_seconds
        ),
    );
    let each = &report.per_delivery;
    let mut costs = Vec::new();
    if let Some(us) = each.herald_cpu_us {
        costs.push(format!("Herald {us:.0} µs CPU"));
    }
    if let Some(us) = each.postgres_cpu_us {
        costs.push(format!("PostgreSQL {us:.0} µs CPU"));
    }
    if let Some(bytes) = each.postgres_wal_bytes {
        costs.push(format!("{bytes:.0} bytes of WAL"));
    }
    if !costs.is_empty() {
        row("per delivery", costs.join(" · "));
    }
}

/// A status line on stderr, redrawn a few times per second while the bench runs.
#[derive(Debug)]
pub struct Progress {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(
        messages: u64,
        endpoints: u32,
        load: Arc<LoadCounters>,
        receiver: Arc<ReceiverStats>,
        clock: BenchClock,
    ) -> Self {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stopped.cancelled() => break,
                }
                let accepted = load.accepted.load(Ordering::Relaxed);
                eprint!(
                    "\r\x1b[2Ksent {}/{messages} · accepted {accepted} · delivered {}/{} · API errors {} · {:.1} s",
                    load.sent.load(Ordering::Relaxed),
                    receiver.first_deliveries(),
                    accepted * u64::from(endpoints),
                    load.api_errors.load(Ordering::Relaxed),
                    clock.now() as f64 / 1e9,
                );
                let _ = std::io::stderr().flush();
            }
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        });
        Self { stop, task }
    }

    /// Stops redrawing and clears the line.
    pub async fn finish(mut self) {
        self.stop.cancel();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Progress {
    /// Clears the line also when the bench stops early (an error, Ctrl-C), so that the
    /// message that follows starts on a clean line.
    fn drop(&mut self) {
        if !self.task.is_finished() {
            self.stop.cancel();
            eprint!("\r\x1b[2K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let millis: Vec<u64> = (1..=100).map(|ms| ms * 1_000_000).collect();
        assert_eq!(Percentiles::of(&millis), Percentiles { p50: 50.0, p90: 90.0, p99: 99.0, max: 100.0 });
        assert_eq!(Percentiles::of(&[]), Percentiles { p50: 0.0, p90: 0.0, p99: 0.0, max: 0.0 });
        assert_eq!(Percentiles::of(&[3_000_000]).p99, 3.0);
    }
}
