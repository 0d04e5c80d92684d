//! `herald status`: one screen about a running server, for an operator at a terminal:
//! readiness, throughput (from two scrapes of `/metrics`, `--interval` apart), the delivery
//! queue, endpoint health, and the applications with the most failed attempts.
//!
//! Uses only what any client can reach: `/health/ready` and `/metrics` (no token), and the
//! application statistics API (a token; without one that section is left out).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};

use super::http::segment;
use super::{ApiClient, Connection, output, table};

/// Options of `herald status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// How long to watch the counters to measure throughput (e.g. 500ms, 2s).
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Applications to list at most, those with the most failed attempts first.
    #[arg(long, default_value_t = 10)]
    pub apps: usize,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = crate::config::parse_duration(text)?;
    if interval.is_zero() || interval > Duration::from_secs(60) {
        return Err("must be longer than zero and at most 60s".to_owned());
    }
    Ok(interval)
}

/// Applications whose statistics are read (one page of the application list).
const APPS_SCANNED: usize = 100;

/// The attempt outcomes `/metrics` labels, in the order shown.
const OUTCOMES: [&str; 7] =
    ["success", "http_4xx", "http_5xx", "http_other", "no_response", "timeout", "refused"];

/// Samples of one scrape, by series (name and labels as rendered).
#[derive(Debug, Default)]
struct Scrape(HashMap<String, f64>);

impl Scrape {
    fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect();
        Self(samples)
    }

    fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    fn attempts(&self, outcome: &str) -> f64 {
        self.get(&format!("herald_delivery_attempts_total{{outcome=\"{outcome}\"}}"))
    }

    fn all_attempts(&self) -> f64 {
        OUTCOMES.iter().map(|outcome| self.attempts(outcome)).sum()
    }
}

/// Per-second rates between two scrapes `seconds` apart. Counters restart at zero with the
/// process: a counter that went down counts from zero.
fn rates(first: &Scrape, second: &Scrape, seconds: f64) -> Value {
    let rate = |a: f64, b: f64| {
        let delta = if b >= a { b - a } else { b };
        if seconds > 0.0 { delta / seconds } else { 0.0 }
    };
    let accepted = "herald_messages_accepted_total";
    let attempts = rate(first.all_attempts(), second.all_attempts());
    let succeeded = rate(first.attempts("success"), second.attempts("success"));
    json!({
        "acceptedPerSecond": rate(first.get(accepted), second.get(accepted)),
        "attemptsPerSecond": attempts,
        "successfulAttemptsPerSecond": succeeded,
        "failedAttemptsPerSecond": (attempts - succeeded).max(0.0),
    })
}

/// Runs `herald status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let (ready_status, health) = client.get_with_status("/health/ready").await?;
    let first = Scrape::parse(&client.get_text("/metrics").await?);
    let started = Instant::now();
    tokio::time::sleep(args.interval).await;
    let second = Scrape::parse(&client.get_text("/metrics").await?);
    let seconds = started.elapsed().as_secs_f64();

    let (applications, note) = match applications(&client, args.apps).await {
        Ok(list) => (Value::Array(list), None),
        Err(error) => (Value::Null, Some(format!("applications left out: {error}"))),
    };
    let report = json!({
        "url": client.base_url(),
        "ready": ready_status == 200,
        "health": health,
        "intervalSeconds": seconds,
        "throughput": rates(&first, &second, seconds),
        "attemptsSinceStart": OUTCOMES.iter().map(|o| (*o, second.attempts(o))).collect::<HashMap<_, _>>(),
        "queue": {
            "due": second.get("herald_queue_deliveries{state=\"due\"}"),
            "scheduled": second.get("herald_queue_deliveries{state=\"scheduled\"}"),
            "leased": second.get("herald_queue_deliveries{state=\"leased\"}"),
            "oldestDueAgeSeconds": second.get("herald_queue_oldest_due_age_seconds"),
        },
        "endpoints": {
            "failing": second.get("herald_endpoints_failing"),
            "disabled": second.get("herald_endpoints_disabled"),
            "circuitOpen": second.get("herald_endpoints_circuit_open"),
        },
        "applications": applications,
        "note": note,
    });
    output(&args.connection, &report, print_report);
    Ok(())
}

/// The statistics of the applications with the most failed attempts in the last 24 hours.
async fn applications(client: &ApiClient, limit: usize) -> anyhow::Result<Vec<Value>> {
    let list = client.get(&format!("/api/v1/app?limit={APPS_SCANNED}")).await?;
    let mut summaries = Vec::new();
    for app in list.get("data").and_then(Value::as_array).map_or(&[][..], Vec::as_slice) {
        let Some(id) = app.get("id").and_then(Value::as_str) else { continue };
        let stats = client.get(&format!("/api/v1/app/{}/stats", segment(id))).await?;
        summaries.push(json!({
            "id": id,
            "uid": app.get("uid"),
            "name": app.get("name"),
            "messages": stats["messages"],
            "success": stats["attempts"]["success"],
            "fail": stats["attempts"]["fail"],
            "successRate": stats["successRate"],
            "endpointsFailing": stats["endpoints"]["failing"],
            "endpointsDisabled": stats["endpoints"]["disabled"],
        }));
    }
    let key = |v: &Value| (v["fail"].as_u64().unwrap_or(0), v["messages"].as_u64().unwrap_or(0));
    summaries.sort_by_key(|v| std::cmp::Reverse(key(v)));
    summaries.truncate(limit);
    Ok(summaries)
}

fn number(value: &Value) -> String {
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 => format!("{n:.0}"),
        Some(n) => format!("{n:.1}"),
        None => "-".to_owned(),
    }
}

fn print_report(report: &Value) {
    let health = &report["health"];
    let state = if report["ready"] == true { "ready" } else { "NOT READY" };
    println!(
        "Herald at {}: {state} (store {}, worker {}{})",
        report["url"].as_str().unwrap_or("?"),
        health["store"].as_str().unwrap_or("?"),
        health["worker"].as_str().unwrap_or("?"),
        if health["shuttingDown"] == true { ", shutting down" } else { "" },
    );
    let throughput = &report["throughput"];
    let attempts = throughput["attemptsPerSecond"].as_f64().unwrap_or(0.0);
    let succeeded = throughput["successfulAttemptsPerSecond"].as_f64().unwrap_or(0.0);
    let share = if attempts > 0.0 {
        format!("{:.1}% succeeded", 100.0 * succeeded / attempts)
    } else {
        "-".to_owned()
    };
    println!("\nThroughput over {:.1} s", report["intervalSeconds"].as_f64().unwrap_or(0.0));
    table::print_plain(vec![
        vec![
            "  accepted".to_owned(),
            format!("{:.1} messages/s", throughput["acceptedPerSecond"].as_f64().unwrap_or(0.0)),
        ],
        vec!["  attempts".to_owned(), format!("{attempts:.1} /s"), share],
    ]);
    let queue = &report["queue"];
    println!("\nQueue");
    table::print_plain(vec![
        vec![
            "  due now".to_owned(),
            number(&queue["due"]),
            format!("oldest due for {} s", number(&queue["oldestDueAgeSeconds"])),
        ],
        vec!["  scheduled".to_owned(), number(&queue["scheduled"])],
        vec!["  being attempted".to_owned(), number(&queue["leased"])],
    ]);
    let endpoints = &report["endpoints"];
    println!("\nEndpoints");
    table::print_plain(vec![
        vec!["  failing".to_owned(), number(&endpoints["failing"])],
        vec!["  disabled".to_owned(), number(&endpoints["disabled"])],
        vec!["  circuit open".to_owned(), number(&endpoints["circuitOpen"])],
    ]);
    let since_start: Vec<String> =
        OUTCOMES.iter().map(|o| format!("{o} {}", number(&report["attemptsSinceStart"][*o]))).collect();
    println!("\nAttempts by outcome since this node started\n  {}", since_start.join("  "));
    match report["applications"].as_array() {
        Some(apps) if !apps.is_empty() => {
            println!("\nApplications, last 24 hours, most failed attempts first");
            let rows = apps
                .iter()
                .map(|app| {
                    let name = app["uid"].as_str().or(app["id"].as_str()).unwrap_or("?").to_owned();
                    let rate = app["successRate"]
                        .as_f64()
                        .map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0));
                    vec![
                        name,
                        number(&app["messages"]),
                        number(&app["success"]),
                        number(&app["fail"]),
                        rate,
                        number(&app["endpointsFailing"]),
                        number(&app["endpointsDisabled"]),
                    ]
                })
                .collect();
            table::print(&["APP", "MESSAGES", "SUCCEEDED", "FAILED", "RATE", "FAILING", "DISABLED"], rows);
        }
        Some(_) => println!("\nNo applications."),
        None => println!("\n{}", report["note"].as_str().unwrap_or("applications left out")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_counter_deltas_per_second() {
        let first = Scrape::parse(
            "# TYPE x counter\nherald_messages_accepted_total 10\n\
             herald_delivery_attempts_total{outcome=\"success\"} 4\n\
             herald_delivery_attempts_total{outcome=\"http_5xx\"} 1\n",
        );
        let second = Scrape::parse(
            "herald_messages_accepted_total 30\n\
             herald_delivery_attempts_total{outcome=\"success\"} 24\n\
             herald_delivery_attempts_total{outcome=\"http_5xx\"} 11\n\
             herald_delivery_attempts_total{outcome=\"refused\"} 10\n",
        );
        let rates = rates(&first, &second, 2.0);
        assert_eq!(rates["acceptedPerSecond"], 10.0);
        assert_eq!(rates["attemptsPerSecond"], 20.0);
        assert_eq!(rates["successfulAttemptsPerSecond"], 10.0);
        assert_eq!(rates["failedAttemptsPerSecond"], 10.0);
        // A restarted server's counters start again from zero.
        let restarted = Scrape::parse("herald_messages_accepted_total 4\n");
        assert_eq!(super::rates(&second, &restarted, 2.0)["acceptedPerSecond"], 2.0);
    }
}
