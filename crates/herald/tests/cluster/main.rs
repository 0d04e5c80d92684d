//! Several `herald serve` processes on one PostgreSQL database: every message reaches the
//! receiver (duplicates counted and reported; none expected in normal operation), when a
//! node is killed the survivors deliver its leased work once its leases expire, and an ordered
//! endpoint's lanes stay in order through failures and a killed node.
//!
//! A custom harness, because it needs PostgreSQL: without one it says so and exits 0 (unless
//! `HERALD_REQUIRE_POSTGRES=1`, as in CI). It prints one line per scenario and
//! `N passed, M failed`.

#[path = "../it/process.rs"]
mod process;
#[path = "../it/receiver.rs"]
mod receiver;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection as _;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::process::{Posted, Served, client, create_app_and_endpoint, post_message, wait_until_all_arrived};
use crate::receiver::{Receiver, Reply};

/// A key every node shares (PostgreSQL nodes must seal secrets with the same key).
const KEY: &str = "Y2x1c3Rlci10ZXN0LWtleS1vZi10aGlydHktdHdvISE=";

fn postgres_url() -> String {
    std::env::var("HERALD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh schema for one scenario, and the database URL that uses it.
async fn fresh_database(name: &str) -> Result<String, sqlx::Error> {
    let mut admin = sqlx::postgres::PgConnection::connect(&postgres_url()).await?;
    let schema = format!("herald_cluster_{name}_{}", std::process::id());
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut admin).await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await?;
    admin.close().await?;
    let separator = if postgres_url().contains('?') { '&' } else { '?' };
    Ok(format!("{}{separator}options=-c%20search_path%3D{schema}", postgres_url()))
}

/// Starts a node on the shared database, with its own data directory.
async fn node(work: &Path, name: &str, database: &str, extra: &[(&str, &str)]) -> Served {
    let data_dir = work.join(name);
    std::fs::create_dir_all(&data_dir).unwrap_or_else(|e| panic!("data dir: {e}"));
    let mut env = vec![("HERALD_DATABASE_URL", database), ("HERALD_ENCRYPTION_KEY", KEY)];
    env.extend_from_slice(extra);
    let mut served = Served::start(work, &data_dir, &env);
    served.wait_healthy().await;
    served
}

/// Posts `count` messages, spread over `nodes`' APIs, `concurrency` at a time; returns the ids
/// of those accepted.
async fn post_spread(nodes: Vec<String>, count: usize, concurrency: usize) -> HashSet<String> {
    let client = client();
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut posts = JoinSet::new();
    for i in 0..count {
        let (client, base, permits) = (client.clone(), nodes[i % nodes.len()].clone(), permits.clone());
        posts.spawn(async move {
            let _permit = permits.acquire_owned().await;
            post_message(&client, &base, i).await
        });
    }
    let mut accepted = HashSet::new();
    while let Some(posted) = posts.join_next().await {
        match posted.unwrap_or(Posted::Failed) {
            Posted::Accepted(id) => {
                accepted.insert(id);
            }
            Posted::Refused(status, body) => panic!("a message was refused: {status} {body}"),
            Posted::Failed => {}
        }
    }
    accepted
}

/// Two nodes share the work; every message arrives, and the duplicates are reported.
async fn two_nodes_deliver_every_message_once(work: std::path::PathBuf) -> String {
    let work = work.as_path();
    let database = fresh_database("share").await.unwrap_or_else(|e| panic!("schema: {e}"));
    let a = node(work, "a", &database, &[]).await;
    let b = node(work, "b", &database, &[]).await;
    let receiver = Receiver::start().await;
    create_app_and_endpoint(&client(), &a, &receiver).await;
    let accepted = post_spread(vec![a.base_url.clone(), b.base_url.clone()], 3000, 32).await;
    assert_eq!(accepted.len(), 3000, "every message was accepted");
    let counts = wait_until_all_arrived(&receiver, &accepted, &b).await;
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    assert_eq!(duplicates, 0, "two healthy nodes delivered {duplicates} duplicates");
    format!("3000 messages through 2 nodes, {} deliveries, {duplicates} duplicates", receiver.count())
}

/// A node dies with leases in hand; the survivor delivers that work after the leases expire.
async fn a_killed_nodes_work_is_delivered_by_the_survivor(work: std::path::PathBuf) -> String {
    let work = work.as_path();
    let database = fresh_database("kill").await.unwrap_or_else(|e| panic!("schema: {e}"));
    let short = [("HERALD_LEASE_DURATION", "4s"), ("HERALD_REQUEST_TIMEOUT", "2s")];
    let mut doomed = node(work, "doomed", &database, &short).await;
    let survivor = node(work, "survivor", &database, &short).await;
    let receiver = Receiver::start().await;
    // Slow answers, so both nodes hold leases on work in flight when one dies.
    receiver.always(Reply::Delay(Duration::from_millis(40)));
    create_app_and_endpoint(&client(), &survivor, &receiver).await;
    let posting = tokio::spawn(post_spread(vec![survivor.base_url.clone()], 1000, 16));
    while receiver.count() < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    doomed.signal("-9");
    let status = doomed.wait_exit(Duration::from_secs(10)).await;
    let accepted = posting.await.unwrap_or_else(|e| panic!("posting: {e}"));
    assert_eq!(accepted.len(), 1000, "the survivor accepted every message");
    let counts = wait_until_all_arrived(&receiver, &accepted, &survivor).await;
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    format!("killed a node ({status}) mid-run; all 1000 delivered by the survivor, {duplicates} duplicates")
}

/// An ordered endpoint on two nodes, a receiver failing the first attempt of every third
/// message, and one node killed (SIGKILL) mid-run: every message of every ordering key
/// arrives, and within a key no request for a message comes after one for a later message
/// (the killed node's attempt in flight is made again by the survivor: a duplicate, never a
/// reordering).
async fn an_ordered_lane_keeps_its_order_when_a_node_is_killed(work: std::path::PathBuf) -> String {
    const KEYS: usize = 5;
    const PER_KEY: usize = 60;
    let work = work.as_path();
    let database = fresh_database("ordered").await.unwrap_or_else(|e| panic!("schema: {e}"));
    let settings = [
        ("HERALD_LEASE_DURATION", "4s"),
        ("HERALD_REQUEST_TIMEOUT", "2s"),
        ("HERALD_RETRY_SCHEDULE", "200ms,200ms,200ms,200ms,200ms"),
        // Five failures in a row would hold the endpoint back for seconds; order is tested here.
        ("HERALD_CIRCUIT_BREAKER_FAILURES", "0"),
    ];
    let mut doomed = node(work, "doomed", &database, &settings).await;
    let survivor = node(work, "survivor", &database, &settings).await;
    let receiver = Receiver::start().await;
    receiver.fail_first_attempt_of_every(3);
    // Answers take a moment, so the doomed node has attempts in flight when it dies.
    receiver.always(Reply::Delay(Duration::from_millis(15)));
    let client = client();
    create_app_and_endpoint(&client, &survivor, &receiver).await;
    let ordered = client
        .patch(survivor.url("/api/v1/app/crash/endpoint/main"))
        .bearer_auth(process::TOKEN)
        .json(&serde_json::json!({"ordered": true}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("patch: {e}"));
    assert_eq!(ordered.status(), reqwest::StatusCode::OK);

    // Each key's messages are posted one after the other (each accepted before the next is
    // sent), so each key has one order to keep; the keys go at once.
    let mut posting = JoinSet::new();
    for key in 0..KEYS {
        let (client, base) = (client.clone(), survivor.base_url.clone());
        posting.spawn(async move {
            let mut ids = Vec::new();
            for n in 0..PER_KEY {
                let body = serde_json::json!({
                    "eventType": "crash.test", "orderingKey": format!("k{key}"), "payload": {"n": n}
                });
                let sent = client
                    .post(format!("{base}/api/v1/app/crash/msg"))
                    .bearer_auth(process::TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("post: {e}"));
                assert_eq!(sent.status(), reqwest::StatusCode::ACCEPTED);
                let reply: serde_json::Value = sent.json().await.unwrap_or_else(|e| panic!("reply: {e}"));
                ids.push(reply["id"].as_str().unwrap_or_default().to_owned());
            }
            (key, ids)
        });
    }
    while receiver.count() < KEYS * PER_KEY / 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    doomed.signal("-9");
    let status = doomed.wait_exit(Duration::from_secs(10)).await;
    let mut accepted: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    while let Some(posted) = posting.join_next().await {
        let (key, ids) = posted.unwrap_or_else(|e| panic!("posting: {e}"));
        accepted.insert(key, ids);
    }
    let position: HashMap<&str, (usize, usize)> = accepted
        .iter()
        .flat_map(|(key, ids)| ids.iter().enumerate().map(move |(n, id)| (id.as_str(), (*key, n))))
        .collect();

    let deadline = std::time::Instant::now() + Duration::from_secs(50);
    while delivered(&receiver).len() < position.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} delivered; survivor's log:\n{}",
            delivered(&receiver).len(),
            position.len(),
            survivor.stderr_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut seen: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for request in receiver.received() {
        let (key, n) = position[request.header("webhook-id")];
        seen.entry(key).or_default().push(n);
    }
    for (key, order) in &seen {
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "key k{key} out of order: {order:?}");
    }
    let requests = receiver.count();
    format!(
        "{} messages over {KEYS} keys, node killed ({status}) mid-run, every key in order; {requests} requests",
        position.len()
    )
}

/// The `webhook-id`s the receiver answered 2xx: every id but those whose only request was a
/// first attempt it failed (the first attempt of every third distinct id).
fn delivered(receiver: &Receiver) -> HashSet<String> {
    let mut attempts: HashMap<String, usize> = HashMap::new();
    let mut first_seen: Vec<String> = Vec::new();
    for request in receiver.received() {
        let id = request.header("webhook-id").to_owned();
        let count = attempts.entry(id.clone()).or_insert(0);
        if *count == 0 {
            first_seen.push(id);
        }
        *count += 1;
    }
    first_seen
        .into_iter()
        .enumerate()
        .filter(|(i, id)| attempts[id] >= if (i + 1) % 3 == 0 { 2 } else { 1 })
        .map(|(_, id)| id)
        .collect()
}

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    let Ok(runtime) = runtime else { return std::process::ExitCode::FAILURE };
    runtime.block_on(run())
}

async fn run() -> std::process::ExitCode {
    let required = std::env::var("HERALD_REQUIRE_POSTGRES").as_deref() == Ok("1");
    let reachable =
        tokio::time::timeout(Duration::from_secs(3), sqlx::postgres::PgConnection::connect(&postgres_url()))
            .await;
    if !matches!(reachable, Ok(Ok(_))) {
        println!(
            "cluster tests: SKIPPED — no PostgreSQL at {} (set HERALD_TEST_POSTGRES_URL, or HERALD_REQUIRE_POSTGRES=1 to make this an error)",
            postgres_url()
        );
        println!("0 passed, 0 failed, 3 skipped");
        return if required { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS };
    }
    let work = std::env::temp_dir().join(format!("herald-cluster-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&work);
    let mut passed = 0;
    let mut failed = 0;
    let runs = [
        (
            "two_nodes_deliver_every_message_once",
            tokio::spawn(two_nodes_deliver_every_message_once(work.join("share"))),
        ),
        (
            "a_killed_nodes_work_is_delivered_by_the_survivor",
            tokio::spawn(a_killed_nodes_work_is_delivered_by_the_survivor(work.join("kill"))),
        ),
        (
            "an_ordered_lane_keeps_its_order_when_a_node_is_killed",
            tokio::spawn(an_ordered_lane_keeps_its_order_when_a_node_is_killed(work.join("ordered"))),
        ),
    ];
    for (name, run) in runs {
        match run.await {
            Ok(summary) => {
                passed += 1;
                println!("test {name} ... ok ({summary})");
            }
            Err(error) => {
                failed += 1;
                println!("test {name} ... FAILED: {error}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    println!("{passed} passed, {failed} failed");
    if failed == 0 { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE }
}
