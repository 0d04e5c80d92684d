//! Several `herald serve` processes on one PostgreSQL database: every message reaches the
//! receiver (duplicates counted and reported; none expected in normal operation), and when a
//! node is killed the survivors deliver its leased work once its leases expire.
//!
//! A custom harness, because it needs PostgreSQL: without one it says so and exits 0 (unless
//! `HERALD_REQUIRE_POSTGRES=1`, as in CI). It prints one line per scenario and
//! `N passed, M failed`.

#[path = "../it/process.rs"]
mod process;
#[path = "../it/receiver.rs"]
mod receiver;

use std::collections::HashSet;
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
        println!("0 passed, 0 failed, 2 skipped");
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
