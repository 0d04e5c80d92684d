//! Runs the shared Store conformance suite, and checks of several nodes sharing one database,
//! against a real PostgreSQL. Each check gets a schema of its own, so checks run in parallel.
//!
//! This is a custom harness (`harness = false`) because whether the suite can run is only
//! known at run time: without a reachable server it says so loudly, with the exact reason,
//! and exits 0, unless `HERALD_REQUIRE_POSTGRES=1` makes that an error. It never passes
//! silently. The server is `HERALD_TEST_POSTGRES_URL` (default: local, user `postgres`).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod cluster;
mod nodes;
mod server;
mod suite;

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::server::Server;

/// The default server: the local PostgreSQL with trust authentication.
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// How long to wait for the server before deciding it is not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Checks running at once (each has its own schema and a small pool).
const PARALLEL_CHECKS: usize = 4;
/// A check still running after this long has failed (e.g. a lost lock wait).
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// A check's body, given the server to make its own schema and stores on.
type CheckFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One named check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Check {
    pub name: &'static str,
    /// Runs alone, after the others (it observes something database-wide).
    pub exclusive: bool,
    pub run: fn(Arc<Server>) -> CheckFuture,
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run())
}

async fn run() -> ExitCode {
    let url = std::env::var("HERALD_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let required = std::env::var("HERALD_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    // A little of libtest's command line: `--list`, and names to filter by (substrings).
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let checks: Vec<Check> = suite::conformance_checks()
        .into_iter()
        .chain(nodes::checks())
        .chain(cluster::checks())
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    if args.iter().any(|a| a == "--list") {
        for check in &checks {
            println!("{}: test", check.name);
        }
        return ExitCode::SUCCESS;
    }

    // This one needs no database, so it runs even when the rest is skipped.
    let mut failed = 0;
    let mut passed = 0;
    match suite::check_list_matches_core() {
        Ok(()) => {
            passed += 1;
            println!("check conformance_list_matches_herald_core ... ok");
        }
        Err(why) => {
            failed += 1;
            println!("check conformance_list_matches_herald_core ... FAILED: {why}");
        }
    }

    let server = match Server::reach(&url, CONNECT_TIMEOUT).await {
        Ok(server) => Arc::new(server),
        Err(why) => {
            let shown = server::redacted(&url);
            if required {
                println!(
                    "postgres conformance: FAILED — no PostgreSQL at {shown}: {why} (HERALD_REQUIRE_POSTGRES=1)"
                );
                println!("{passed} passed, {} failed, 0 skipped", failed + checks.len());
                return ExitCode::FAILURE;
            }
            println!(
                "postgres conformance: SKIPPED — no PostgreSQL at {shown}: {why} (set HERALD_TEST_POSTGRES_URL, \
                 or HERALD_REQUIRE_POSTGRES=1 to make this an error)"
            );
            println!("{passed} passed, {failed} failed, {} skipped", checks.len());
            return if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE };
        }
    };
    println!("postgres conformance: running {} checks against {}", checks.len(), server.shown());

    let (exclusive, shared): (Vec<Check>, Vec<Check>) = checks.into_iter().partition(|c| c.exclusive);
    let mut verdicts = run_checks(&server, shared, PARALLEL_CHECKS).await;
    verdicts.extend(run_checks(&server, exclusive, 1).await);
    for (name, verdict, took) in verdicts {
        match verdict {
            Ok(()) => {
                passed += 1;
                println!("check {name} ... ok ({} ms)", took.as_millis());
            }
            Err(why) => {
                failed += 1;
                println!("check {name} ... FAILED: {why}");
            }
        }
    }
    server.finish().await;
    println!("{passed} passed, {failed} failed");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Runs `checks`, at most `parallel` at once, and returns each one's verdict in list order.
async fn run_checks(
    server: &Arc<Server>,
    checks: Vec<Check>,
    parallel: usize,
) -> Vec<(&'static str, Result<(), String>, Duration)> {
    let permits = Arc::new(Semaphore::new(parallel));
    let mut running = Vec::with_capacity(checks.len());
    for check in checks {
        let permits = permits.clone();
        let server = server.clone();
        running.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.expect("the semaphore is never closed");
            let started = Instant::now();
            // The check runs in a task of its own, so a panic (a failed assertion) is caught
            // here as a JoinError instead of ending the whole run.
            let outcome = tokio::time::timeout(CHECK_TIMEOUT, tokio::spawn((check.run)(server))).await;
            let verdict = match outcome {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) if error.is_panic() => Err(panic_message(error.into_panic())),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err(format!("did not finish within {CHECK_TIMEOUT:?}")),
            };
            (check.name, verdict, started.elapsed())
        }));
    }
    let mut verdicts = Vec::with_capacity(running.len());
    for task in running {
        verdicts.push(task.await.expect("the runner task does not panic"));
    }
    verdicts
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => {
            payload.downcast_ref::<&str>().map_or_else(|| "panicked".to_owned(), |s| (*s).to_owned())
        }
    }
}
