//! The real `herald serve` binary stopped in the middle of a run, then restarted on the same
//! data directory: after `kill -9` every accepted message is still delivered (at least once),
//! and after SIGTERM the process exits cleanly, loses nothing and does not repeat deliveries
//! that completed. Every child process is bounded in time and killed when a test fails; the
//! server and the receiver listen on loopback only.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::receiver::{Receiver, Reply};

/// How long a child process may take to start answering or to exit.
const BOUND: Duration = Duration::from_secs(15);
/// How long the restarted server may take to deliver everything that was accepted.
const DELIVERY_BOUND: Duration = Duration::from_secs(30);
/// The organisation token the child processes accept (`HERALD_ADMIN_TOKEN`).
const TOKEN: &str = "sk_crash_test_admin_token_0123456789";
/// Requests in flight to one endpoint at most (`HERALD_ENDPOINT_CONCURRENCY`).
const ENDPOINT_CONCURRENCY: usize = 32;

/// The `herald` binary with a clean environment: no inherited `HERALD_*` variables, and a
/// working directory without a `herald.toml`.
fn herald(work_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HERALD_") {
            command.env_remove(name);
        }
    }
    command.current_dir(work_dir).stdin(Stdio::null());
    command
}

/// A port that was free a moment ago (bound and released), for `--listen`.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// A child process that is killed (and reaped) when dropped, so a failing test leaves none
/// behind.
#[derive(Debug)]
struct ChildGuard {
    child: Child,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A running `herald serve` on a free loopback port.
#[derive(Debug)]
struct Served {
    guard: ChildGuard,
    base_url: String,
    stderr_path: PathBuf,
}

impl Served {
    /// Starts `herald serve` on `data_dir`, with loopback deliveries allowed and [`TOKEN`] as the
    /// admin token, plus `env`. Its output goes to files in `work_dir`.
    fn start(work_dir: &Path, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let stdout_path = work_dir.join(format!("serve-{port}.stdout"));
        let stderr_path = work_dir.join(format!("serve-{port}.stderr"));
        let mut command = herald(work_dir);
        command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .env("HERALD_ALLOWED_CIDRS", "127.0.0.0/8")
            .env("HERALD_ADMIN_TOKEN", TOKEN)
            .env("HERALD_ENDPOINT_CONCURRENCY", ENDPOINT_CONCURRENCY.to_string())
            .stdout(File::create(&stdout_path).expect("stdout file"))
            .stderr(File::create(&stderr_path).expect("stderr file"));
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("spawn herald serve");
        Self { guard: ChildGuard { child }, base_url: format!("http://127.0.0.1:{port}"), stderr_path }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    fn pid(&self) -> String {
        self.guard.child.id().to_string()
    }

    /// The end of the server's log, for failure messages.
    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Whether the process has exited, without waiting.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.guard.child.try_wait().expect("try_wait")
    }

    /// Polls `GET /api/v1/health` until it answers 204, within [`BOUND`].
    async fn wait_healthy(&mut self) {
        let client = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().expect("client");
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(status) = self.exited() {
                panic!("herald serve exited early with {status}; stderr:\n{}", self.stderr_tail());
            }
            if let Ok(response) = client.get(self.url("/api/v1/health")).send().await {
                assert_eq!(response.status(), StatusCode::NO_CONTENT, "health answers 204");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not become healthy within {BOUND:?}; stderr:\n{}",
                self.stderr_tail()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits up to `limit` for the process to exit.
    async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {limit:?}; stderr:\n{}",
                self.stderr_tail()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends `signal` (`-9`, `-TERM`) with the `kill` command.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.pid()]).status().expect("run kill");
        assert!(status.success(), "kill {signal} failed: {status}");
    }
}

/// An API client with a bound on every request.
fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

/// Creates the application `crash` with one endpoint pointing at `receiver`.
async fn create_app_and_endpoint(client: &reqwest::Client, served: &Served, receiver: &Receiver) {
    let app = client
        .post(served.url("/api/v1/app"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "Crash", "uid": "crash"}))
        .send()
        .await
        .expect("create application");
    assert_eq!(app.status(), StatusCode::CREATED);
    let endpoint = client
        .post(served.url("/api/v1/app/crash/endpoint"))
        .bearer_auth(TOKEN)
        .json(&json!({"url": receiver.url("/hook"), "uid": "main"}))
        .send()
        .await
        .expect("create endpoint");
    assert_eq!(endpoint.status(), StatusCode::CREATED);
}

/// What became of one message POST.
#[derive(Debug)]
enum Posted {
    /// 202, with the message's id: the server has taken responsibility for it.
    Accepted(String),
    /// Another status (never expected).
    Refused(StatusCode, String),
    /// No complete answer: the process was gone or went away mid-request.
    Failed,
}

/// Posts message number `i` to the application `crash`.
async fn post_message(client: &reqwest::Client, base_url: &str, i: usize) -> Posted {
    let sent = client
        .post(format!("{base_url}/api/v1/app/crash/msg"))
        .bearer_auth(TOKEN)
        .json(&json!({"eventType": "crash.test", "payload": {"i": i}}))
        .send()
        .await;
    let Ok(response) = sent else { return Posted::Failed };
    let status = response.status();
    let Ok(body) = response.text().await else { return Posted::Failed };
    if status != StatusCode::ACCEPTED {
        return Posted::Refused(status, body);
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else { return Posted::Failed };
    match body["id"].as_str() {
        Some(id) => Posted::Accepted(id.to_owned()),
        None => Posted::Refused(status, body.to_string()),
    }
}

/// How often each message id (`webhook-id`) arrived at the receiver.
fn arrivals(receiver: &Receiver) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in receiver.received() {
        *counts.entry(request.header("webhook-id").to_owned()).or_insert(0) += 1;
    }
    counts
}

/// Waits up to [`DELIVERY_BOUND`] until every id in `accepted` has arrived at least once, and
/// returns the arrival counts.
async fn wait_until_all_arrived(
    receiver: &Receiver,
    accepted: &HashSet<String>,
    served: &Served,
) -> HashMap<String, usize> {
    let deadline = Instant::now() + DELIVERY_BOUND;
    loop {
        let counts = arrivals(receiver);
        let missing = accepted.iter().filter(|id| !counts.contains_key(*id)).count();
        if missing == 0 {
            return counts;
        }
        if Instant::now() >= deadline {
            let duplicates = counts.values().filter(|n| **n > 1).count();
            panic!(
                "{missing} of {} accepted messages never arrived within {DELIVERY_BOUND:?} after the restart \
                 ({} requests arrived in all, {duplicates} ids more than once); stderr:\n{}",
                accepted.len(),
                receiver.count(),
                served.stderr_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_message_is_delivered_after_a_sigkill_mid_run() {
    const MESSAGES: usize = 500;
    /// Messages that arrive, and POSTs that are accepted, before the kill.
    const KILL_AFTER: usize = 50;
    const KILL_AFTER_ACCEPTED: usize = 350;
    let work = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("data");
    let receiver = Receiver::start().await;
    // A little slow, so deliveries are in flight when the process dies.
    receiver.always(Reply::Delay(Duration::from_millis(100)));
    let client = client();

    let mut served = Served::start(work.path(), &data_dir, &[]);
    served.wait_healthy().await;
    create_app_and_endpoint(&client, &served, &receiver).await;

    let permits = Arc::new(Semaphore::new(32));
    let accepted_so_far = Arc::new(AtomicUsize::new(0));
    let mut posts = JoinSet::new();
    for i in 0..MESSAGES {
        let (client, base_url) = (client.clone(), served.base_url.clone());
        let (permits, accepted_so_far) = (permits.clone(), accepted_so_far.clone());
        posts.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore open");
            let outcome = post_message(&client, &base_url, i).await;
            if matches!(outcome, Posted::Accepted(_)) {
                accepted_so_far.fetch_add(1, Ordering::SeqCst);
            }
            outcome
        });
    }

    // Kill once some, but not all, messages have been delivered, and most POSTs have been
    // accepted (the rest are usually still under way, and fail).
    let deadline = Instant::now() + BOUND;
    while arrivals(&receiver).len() < KILL_AFTER
        || accepted_so_far.load(Ordering::SeqCst) < KILL_AFTER_ACCEPTED
    {
        assert!(
            Instant::now() < deadline,
            "within {BOUND:?} only {} messages arrived and {} POSTs were accepted; stderr:\n{}",
            receiver.count(),
            accepted_so_far.load(Ordering::SeqCst),
            served.stderr_tail()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    served.signal("-9");
    let status = served.wait_exit(BOUND).await;
    assert_eq!(status.signal(), Some(9), "the process died of SIGKILL: {status}");
    let delivered_before_kill: HashSet<String> = arrivals(&receiver).into_keys().collect();

    let mut accepted = HashSet::new();
    let mut failed = 0;
    while let Some(joined) = posts.join_next().await {
        match joined.expect("the post task did not panic") {
            Posted::Accepted(id) => assert!(accepted.insert(id), "message ids are unique"),
            Posted::Refused(status, body) => panic!("a message POST was answered {status}: {body}"),
            Posted::Failed => failed += 1,
        }
    }
    let undelivered = accepted.difference(&delivered_before_kill).count();
    assert!(
        undelivered > 0,
        "the kill came after every accepted message was delivered ({} accepted, {} delivered): \
         nothing was left for the restart to do",
        accepted.len(),
        delivered_before_kill.len()
    );

    let mut restarted = Served::start(work.path(), &data_dir, &[]);
    restarted.wait_healthy().await;
    let counts = wait_until_all_arrived(&receiver, &accepted, &restarted).await;

    let duplicated: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let context = format!(
        "{} POSTs accepted, {failed} cut off by the kill; {} ids delivered before the kill, {undelivered} \
         accepted ids still undelivered at the kill; {} requests arrived in all, {} ids more than once",
        accepted.len(),
        delivered_before_kill.len(),
        receiver.count(),
        duplicated.len(),
    );
    // At least once: duplicates come only from attempts in flight when the process died, and
    // at most `ENDPOINT_CONCURRENCY` requests are in flight to the endpoint at a time.
    assert!(duplicated.len() <= ENDPOINT_CONCURRENCY, "too many duplicates: {context}");
    assert!(
        duplicated.iter().all(|(_, n)| **n == 2),
        "an id arrived more than twice: {duplicated:?}; {context}"
    );
    eprintln!("kill -9 mid-run: {context}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_attempts_in_flight_finish_and_a_restart_delivers_the_rest_once() {
    /// Messages sent before the SIGTERM, while deliveries are slow.
    const FIRST_BATCH: usize = 100;
    /// The receiver's delay: attempts in flight at the SIGTERM finish well within the grace.
    const RECEIVER_DELAY: Duration = Duration::from_millis(300);
    let work = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("data");
    let receiver = Receiver::start().await;
    receiver.always(Reply::Delay(RECEIVER_DELAY));
    let client = client();
    let env = [("HERALD_SHUTDOWN_GRACE", "10s")];

    let mut served = Served::start(work.path(), &data_dir, &env);
    served.wait_healthy().await;
    create_app_and_endpoint(&client, &served, &receiver).await;

    let mut accepted = HashSet::new();
    let mut first = JoinSet::new();
    let permits = Arc::new(Semaphore::new(16));
    for i in 0..FIRST_BATCH {
        let (client, base_url, permits) = (client.clone(), served.base_url.clone(), permits.clone());
        first.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore open");
            post_message(&client, &base_url, i).await
        });
    }
    while let Some(joined) = first.join_next().await {
        match joined.expect("the post task did not panic") {
            Posted::Accepted(id) => assert!(accepted.insert(id)),
            other => panic!("a message POST before the SIGTERM failed: {other:?}"),
        }
    }

    // More messages keep coming while the server stops: four posters, each until the server
    // no longer answers.
    let racing = Arc::new(AtomicUsize::new(0));
    let mut posters = JoinSet::new();
    for poster in 0..4 {
        let (client, base_url, racing) = (client.clone(), served.base_url.clone(), racing.clone());
        posters.spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..100_000 {
                let outcome = post_message(&client, &base_url, FIRST_BATCH + poster * 100_000 + i).await;
                let stop = matches!(outcome, Posted::Failed);
                if matches!(outcome, Posted::Accepted(_)) {
                    racing.fetch_add(1, Ordering::SeqCst);
                }
                outcomes.push(outcome);
                if stop {
                    break;
                }
            }
            outcomes
        });
    }

    // SIGTERM while deliveries are in flight (the first batch is being answered slowly) and
    // the posters are sending.
    let deadline = Instant::now() + BOUND;
    while receiver.count() < 10 || racing.load(Ordering::SeqCst) < 20 {
        assert!(
            Instant::now() < deadline,
            "no deliveries or posts within {BOUND:?}; stderr:\n{}",
            served.stderr_tail()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let arrived_before_term: HashSet<String> = arrivals(&receiver).into_keys().collect();
    let signalled = Instant::now();
    served.signal("-TERM");
    let status = served.wait_exit(BOUND).await;
    let took = signalled.elapsed();
    assert!(
        status.success(),
        "herald serve exits successfully on SIGTERM, got {status}; stderr:\n{}",
        served.stderr_tail()
    );
    let arrivals_at_exit = receiver.count();

    let mut during_shutdown = 0;
    while let Some(joined) = posters.join_next().await {
        for outcome in joined.expect("the poster did not panic") {
            match outcome {
                Posted::Accepted(id) => {
                    during_shutdown += 1;
                    assert!(accepted.insert(id));
                }
                Posted::Refused(status, body) => panic!("a message POST was answered {status}: {body}"),
                Posted::Failed => {}
            }
        }
    }
    assert!(
        accepted.iter().any(|id| !arrived_before_term.contains(id)),
        "every message had arrived before the SIGTERM: nothing was left for the restart to do"
    );

    let mut restarted = Served::start(work.path(), &data_dir, &env);
    restarted.wait_healthy().await;
    let counts = wait_until_all_arrived(&receiver, &accepted, &restarted).await;

    let repeated: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let context = format!(
        "{} messages accepted ({during_shutdown} by posters racing the SIGTERM); {} had arrived when \
         SIGTERM was sent, {arrivals_at_exit} requests when the process exited {took:?} later; {} requests \
         in all after the restart, {} ids more than once: {repeated:?}",
        accepted.len(),
        arrived_before_term.len(),
        receiver.count(),
        repeated.len(),
    );
    assert!(counts.values().all(|n| *n <= 2), "a message arrived more than twice: {context}");
    // Attempts in flight at the SIGTERM take RECEIVER_DELAY, far less than the 10 s grace
    // period: they complete and are recorded before the process exits, so a restart does not
    // send them again.
    let resent: Vec<&String> = arrived_before_term.iter().filter(|id| counts[*id] > 1).collect();
    assert!(
        resent.is_empty(),
        "attempts completed during the graceful shutdown were sent again: {resent:?}; {context}"
    );
    eprintln!("SIGTERM mid-run: {context}");
}
