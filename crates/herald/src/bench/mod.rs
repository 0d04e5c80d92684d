//! `herald bench`: a load test users run on their own machine. It starts a Herald (or uses
//! one already running on loopback), points endpoints at a receiver of its own, sends
//! messages, and reports API throughput, end-to-end delivery rate, latency, lost or
//! duplicated deliveries, signature failures and Herald's peak memory.
//!
//! This module owns the options and the order of the steps. It must never send traffic
//! anywhere but loopback: `--url` is refused unless its host is 127.0.0.0/8, ::1 or
//! localhost, and the receiver listens on 127.0.0.1 only.

mod client;
mod faults;
mod load;
mod receiver;
mod report;
mod target;

use std::collections::HashSet;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use herald_core::secret::SigningSecret;
use url::Url;

use self::client::HeraldClient;
use self::faults::Faults;
use self::load::{LoadCounters, LoadPlan};
use self::receiver::Receiver;
use self::report::{CpuSample, Measurements, Progress, Report};
use self::target::Target;

/// How long the bench keeps listening after the last expected delivery arrived, so that a
/// duplicate sent right behind it is still counted.
const DUPLICATE_WATCH: Duration = Duration::from_millis(500);

/// Options of `herald bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Messages to send.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: u64,
    /// Endpoints to create; every message is delivered to each of them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub endpoints: u32,
    /// API requests in flight at most. Without --rate: senders posting back to back.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// Messages per second on a fixed schedule (open loop). Latency then counts from each
    /// message's scheduled time, so a server that falls behind shows it.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Size of each message's payload in bytes (at least the ~30 bytes the bench needs).
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,
    /// How long to wait for deliveries after the last message was sent, e.g. "120s" or "5m".
    #[arg(long, default_value = "120s", value_parser = crate::config::parse_duration)]
    pub timeout: Duration,
    /// Benchmark a Herald already running at this URL (loopback only) instead of starting
    /// one. It must allow deliveries to loopback (allowed_cidrs = "127.0.0.0/8").
    #[arg(long, requires = "token")]
    pub url: Option<String>,
    /// An organisation API token of the Herald given with --url.
    #[arg(long, requires = "url")]
    pub token: Option<String>,
    /// Make the endpoints ordered (one delivery at a time per ordering key, in order) and
    /// spread the messages over this many ordering keys.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub ordered_keys: Option<u32>,
    /// Measure the ingest gateway instead of message intake: events are POSTed to a
    /// generic-webhook source's ingest URL (the payload as the body, a delivery id in
    /// `webhook-id`) and forwarded to its destinations (the endpoints).
    #[arg(long, conflicts_with = "ordered_keys")]
    pub ingest: bool,
    /// Start the Herald nodes under test on this PostgreSQL database (loopback only), in a
    /// fresh schema dropped afterwards, instead of the embedded SQLite.
    #[arg(long, conflicts_with = "url")]
    pub database_url: Option<String>,
    /// How many Herald nodes to start on that database; the bench posts through the first,
    /// every node delivers.
    #[arg(long, default_value_t = 1, requires = "database_url", value_parser = clap::value_parser!(u32).range(1..=8))]
    pub nodes: u32,
    /// Give every endpoint a small transformation (renames one payload field).
    #[arg(long)]
    pub transformation: bool,
    /// Publish at version N+1 of an event type with a converter per version, and pin every
    /// endpoint to version 1: each delivery runs N conversion steps.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub convert_steps: Option<u32>,
    /// The receiver answers 500 to the first attempt of this fraction of the messages
    /// (spread evenly, e.g. 0.33: every third). A Herald the bench starts then retries after
    /// 200 ms instead of the production schedule.
    #[arg(long, value_parser = parse_fraction)]
    pub fail_first: Option<f64>,
    /// The receiver holds the first attempt of this fraction of the messages for 2 s, past
    /// the 1 s request timeout a Herald the bench starts then has, so Herald gives up on it.
    #[arg(long, value_parser = parse_fraction)]
    pub hang_first: Option<f64>,
    /// Kill (SIGKILL) the last of the started nodes once half the deliveries arrived; its
    /// leases expire after 4 s and the other nodes go on. Duplicates are then expected.
    #[arg(long, requires = "database_url")]
    pub kill_node: bool,
    /// Print the result as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A fraction from 0 to 1.
fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(fraction) if (0.0..=1.0).contains(&fraction) => Ok(fraction),
        _ => Err(format!("`{text}` is not a fraction from 0 to 1")),
    }
}

/// What the bench's endpoints do to payloads before sending them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Shaping {
    pub transformation: bool,
    pub convert_steps: Option<u32>,
}

/// The transformation `--transformation` gives every endpoint.
const BENCH_TRANSFORMATION: &str = "function handler(webhook) { webhook.payload.padding = webhook.payload.pad; delete webhook.payload.pad; return webhook; }";

/// Where the bench sends its load.
#[derive(Debug)]
enum TargetChoice {
    /// Start a Herald with the default configuration as a child process, on SQLite, or
    /// `nodes` of them on the PostgreSQL database at `database_url`.
    Spawn { database_url: Option<Url>, nodes: u32 },
    /// Use the Herald running at this loopback URL.
    Running { url: Url, token: String },
}

/// Validated options.
#[derive(Debug)]
struct Options {
    target: TargetChoice,
    endpoints: u32,
    shaping: Shaping,
    plan: LoadPlan,
    timeout: Duration,
    /// What the receiver does wrong on purpose.
    faults: Faults,
    /// Kill the last started node once half the deliveries arrived.
    kill_node: bool,
}

impl BenchArgs {
    fn into_options(self) -> anyhow::Result<Options> {
        let target = match (self.url, self.token) {
            (Some(url), Some(token)) => {
                let url = Url::parse(&url).with_context(|| format!("--url {url} is not a URL"))?;
                check_loopback(&url)?;
                TargetChoice::Running { url, token }
            }
            _ => {
                let database_url = match self.database_url {
                    Some(text) => {
                        let url = Url::parse(&text).context("--database-url is not a URL")?;
                        if !matches!(url.scheme(), "postgres" | "postgresql") {
                            bail!("--database-url must be a postgres:// URL");
                        }
                        check_loopback_host(&url, "--database-url")?;
                        Some(url)
                    }
                    None => None,
                };
                TargetChoice::Spawn { database_url, nodes: self.nodes }
            }
        };
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            bail!("--rate must be a positive number of messages per second");
        }
        if self.kill_node && self.nodes < 2 {
            bail!("--kill-node needs --nodes 2 or more: the survivors deliver the killed node's work");
        }
        Ok(Options {
            target,
            endpoints: self.endpoints,
            shaping: Shaping { transformation: self.transformation, convert_steps: self.convert_steps },
            plan: LoadPlan {
                messages: self.messages,
                concurrency: self.concurrency,
                rate: self.rate,
                payload_bytes: self.payload_bytes,
                ordering_keys: self.ordered_keys,
                ingest_url: self.ingest.then(String::new),
            },
            timeout: self.timeout,
            faults: Faults {
                fail_first: self.fail_first.unwrap_or_default(),
                hang_first: self.hang_first.unwrap_or_default(),
            },
            kill_node: self.kill_node,
        })
    }
}

/// Refuses any URL whose host is not on this machine's loopback interface.
fn check_loopback(url: &Url) -> anyhow::Result<()> {
    if !matches!(url.scheme(), "http" | "https") {
        bail!("--url must be an http:// or https:// URL, not {url}");
    }
    check_loopback_host(url, "--url")
}

/// Refuses a URL (of `option`) whose host is not on this machine's loopback interface.
fn check_loopback_host(url: &Url, option: &str) -> anyhow::Result<()> {
    let loopback = match url.host() {
        // URLs of schemes the url crate does not know (postgres://) keep IP hosts as text.
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if !loopback {
        bail!(
            "refusing to benchmark with {option} {}: `herald bench` only talks to this machine's loopback addresses \
             (127.0.0.0/8, ::1, localhost)",
            url.host_str().unwrap_or_default()
        );
    }
    Ok(())
}

/// Monotonic time since the bench started, in nanoseconds: the clock of send times embedded
/// in payloads and of arrival times at the receiver.
#[derive(Debug, Clone, Copy)]
struct BenchClock {
    start: Instant,
}

impl BenchClock {
    fn start() -> Self {
        Self { start: Instant::now() }
    }

    fn now(self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    async fn sleep_until(self, nanos: u64) {
        tokio::time::sleep_until((self.start + Duration::from_nanos(nanos)).into()).await;
    }
}

/// Runs the benchmark, prints the result, and fails when deliveries were lost, duplicated
/// or wrongly signed. Ctrl-C or SIGTERM stops it (and the Herald it started).
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let json = args.json;
    let options = args.into_options()?;
    let report = tokio::select! {
        report = measure(&options) => report?,
        () = interrupted() => bail!("interrupted"),
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        report::print_table(&report);
    }
    let failures = report.failures();
    if !failures.is_empty() {
        bail!("the benchmark failed: {}", failures.join("; "));
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The bench then drops everything it started, which stops
/// the Herald it started; the default action of either signal would leave that running.
async fn interrupted() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// Sets up, sends the load, waits for the deliveries and gathers the numbers. Everything it
/// starts (child process, receiver, senders) stops when it returns or is dropped.
async fn measure(options: &Options) -> anyhow::Result<Report> {
    let clock = BenchClock::start();
    let faulty = options.faults.any() || options.kill_node;
    let mut target = match &options.target {
        TargetChoice::Spawn { database_url, nodes } => {
            Target::spawn(options.plan.concurrency, database_url.as_ref(), *nodes, faulty).await?
        }
        TargetChoice::Running { url, token } => Target::running(url, token),
    };
    let client = Arc::new(HeraldClient::new(target.base_url(), target.token(), options.plan.concurrency)?);
    if !client.healthy().await {
        bail!("Herald at {} does not answer GET /api/v1/health with 204", target.base_url());
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("could not start the receiver on 127.0.0.1")?;
    let receiver_address = listener.local_addr()?;
    // In an ingest run the endpoints are the destinations of a source, on its application.
    let mut plan = options.plan.clone();
    let app_id = match plan.ingest_url {
        Some(_) => {
            let (app_id, ingest_url) = client.create_source().await?;
            plan.ingest_url = Some(ingest_url);
            app_id
        }
        None => client.create_app().await?,
    };
    if let Some(steps) = options.shaping.convert_steps {
        client.create_versioned_event_type(steps).await?;
    }
    let mut secrets = Vec::new();
    for index in 0..options.endpoints {
        let url = format!("http://{receiver_address}/e/{index}");
        let ordered = options.plan.ordering_keys.is_some();
        let pinned = options.shaping.convert_steps.is_some();
        let endpoint_id =
            client.create_endpoint(&app_id, &url, &SigningSecret::generate_hmac(), ordered, pinned).await?;
        if options.shaping.transformation {
            client.set_transformation(&app_id, &endpoint_id, BENCH_TRANSFORMATION).await?;
        }
        let key = client.endpoint_secret(&app_id, &endpoint_id).await?;
        secrets.push(SigningSecret::parse(&key).context("Herald returned a malformed endpoint secret")?);
    }
    let receiver = Receiver::start(listener, secrets, clock, options.faults, options.plan.ordering_keys);

    let counters = Arc::new(LoadCounters::default());
    let progress = std::io::stderr().is_terminal().then(|| {
        Progress::start(options.plan.messages, options.endpoints, counters.clone(), receiver.stats(), clock)
    });
    let cpu_before = CpuSample::take(&target, clock).await;
    let outcome = load::run(client.clone(), app_id.clone(), &plan, clock, counters).await;

    // Wait until every accepted message reached every endpoint, or the timeout.
    let expected = outcome.accepted_ids.len() as u64 * u64::from(options.endpoints);
    let deadline = tokio::time::Instant::now() + options.timeout;
    let stats = receiver.stats();
    let mut killed_node = false;
    let timed_out = loop {
        if options.kill_node && !killed_node && stats.first_deliveries() >= expected / 2 {
            target.kill_last_node();
            killed_node = true;
        }
        if stats.first_deliveries() >= expected {
            break false;
        }
        if tokio::time::Instant::now() >= deadline {
            break true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let cpu = CpuSample::take(&target, clock).await.since(cpu_before);
    if !timed_out {
        tokio::time::sleep(DUPLICATE_WATCH).await;
    }
    if let Some(progress) = progress {
        progress.finish().await;
    }

    let accepted: HashSet<&str> = outcome.accepted_ids.iter().map(String::as_str).collect();
    let acks: std::collections::HashMap<u64, u64> = outcome.acks.iter().copied().collect();
    let tally = receiver.tally(&accepted, &acks);
    drop(accepted);
    let peak_memory_mib = target.peak_memory_mib();
    if target.is_external() {
        // Leave a running Herald as it was found (best effort: the numbers are in already).
        client.delete_app(&app_id).await;
    }
    let measured = Measurements { outcome, tally, timed_out, peak_memory_mib, cpu, killed_node };
    let report = Report::new(options, &target, measured);
    target.finish().await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_databases_and_servers_are_accepted() {
        let ok = |text: &str| check_loopback_host(&Url::parse(text).expect("url"), "--database-url").is_ok();
        assert!(ok("postgres://postgres@127.0.0.1:5432/postgres"));
        assert!(ok("postgres://postgres@localhost/postgres"));
        assert!(ok("postgresql://u:p@[::1]:5432/db"));
        assert!(ok("http://127.0.0.2:8040"));
        assert!(!ok("postgres://postgres@10.0.0.5:5432/postgres"));
        assert!(!ok("postgres://postgres@db.example.com/postgres"));
        assert!(!ok("http://192.168.1.1:8040"));
    }
}
