//! Real `herald serve` processes for tests: started on loopback ports the kernel picks (read
//! back from the log, so two tests can never race for one port) with a clean environment,
//! killed when dropped, and the API calls the process tests share.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::receiver::Receiver;

/// How long a child process may take to start answering or to exit.
pub(crate) const BOUND: Duration = Duration::from_secs(15);
/// How long the restarted server may take to deliver everything that was accepted.
pub(crate) const DELIVERY_BOUND: Duration = Duration::from_secs(30);
/// The organisation token the child processes accept (`HERALD_ADMIN_TOKEN`).
pub(crate) const TOKEN: &str = "sk_crash_test_admin_token_0123456789";
/// Requests in flight to one endpoint at most (`HERALD_ENDPOINT_CONCURRENCY`).
pub(crate) const ENDPOINT_CONCURRENCY: usize = 32;

/// The `herald` binary with a clean environment: no inherited `HERALD_*` variables, and a
/// working directory without a `herald.toml`.
pub(crate) fn herald(work_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HERALD_") {
            command.env_remove(name);
        }
    }
    command.current_dir(work_dir).stdin(Stdio::null());
    command
}

/// Waits until the `herald serve` logging to `stderr_path` says where it listens (port 0
/// resolved by the kernel) and answers `GET /api/v1/health` with 204, within [`BOUND`]; returns
/// its base URL. Panics with the end of its log if it exits first or takes too long.
pub(crate) async fn wait_until_serving(
    stderr_path: &Path,
    mut exited: impl FnMut() -> Option<ExitStatus>,
) -> String {
    let tail = || log_tail(stderr_path);
    let client = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().expect("client");
    let deadline = Instant::now() + BOUND;
    let mut base_url = None;
    loop {
        if let Some(status) = exited() {
            panic!("herald serve exited early with {status}; stderr:\n{}", tail());
        }
        match &base_url {
            None => {
                let log = std::fs::read_to_string(stderr_path).unwrap_or_default();
                base_url = serving_address(&log).map(|address| format!("http://{address}"));
            }
            Some(url) => {
                if let Ok(response) = client.get(format!("{url}/api/v1/health")).send().await {
                    assert_eq!(response.status(), StatusCode::NO_CONTENT, "health answers 204");
                    return url.clone();
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server did not {} within {BOUND:?}; stderr:\n{}",
            if base_url.is_none() { "say where it listens" } else { "become healthy" },
            tail()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The last lines of a log file, for failure messages.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Numbers the servers a test binary starts, for their log files' names.
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// The address in the log line saying "Herald is serving" (port 0 resolved by the kernel), in
/// the text format (`address=127.0.0.1:…`) or the JSON one (`"address":"127.0.0.1:…"`).
pub(crate) fn serving_address(log: &str) -> Option<String> {
    let line = log.lines().find(|line| line.contains("Herald is serving"))?;
    let (start, end) = match line.find("\"address\":\"") {
        Some(at) => (at + "\"address\":\"".len(), '"'),
        None => (line.find("address=")? + "address=".len(), ' '),
    };
    let address: String = line[start..].chars().take_while(|c| *c != end && !c.is_whitespace()).collect();
    (!address.is_empty()).then_some(address)
}

/// A child process that is killed (and reaped) when dropped, so a failing test leaves none
/// behind.
#[derive(Debug)]
pub(crate) struct ChildGuard {
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

/// A running `herald serve` on a loopback port of its own.
#[derive(Debug)]
pub(crate) struct Served {
    guard: ChildGuard,
    pub(crate) base_url: String,
    stderr_path: PathBuf,
}

impl Served {
    /// Starts `herald serve` on `data_dir`, with loopback deliveries allowed and [`TOKEN`] as the
    /// admin token, plus `env`. It listens on a port the operating system picks; [`Served::wait_healthy`]
    /// learns which from its log. Its output goes to files in `work_dir`.
    pub(crate) fn start(work_dir: &Path, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let name = STARTED.fetch_add(1, Ordering::Relaxed);
        let stdout_path = work_dir.join(format!("serve-{name}.stdout"));
        let stderr_path = work_dir.join(format!("serve-{name}.stderr"));
        let mut command = herald(work_dir);
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
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
        Self { guard: ChildGuard { child }, base_url: String::new(), stderr_path }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub(crate) fn pid(&self) -> String {
        self.guard.child.id().to_string()
    }

    /// The end of the server's log, for failure messages.
    pub(crate) fn stderr_tail(&self) -> String {
        log_tail(&self.stderr_path)
    }

    /// Whether the process has exited, without waiting.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.guard.child.try_wait().expect("try_wait")
    }

    /// Learns the server's address from its log, then polls `GET /api/v1/health` until it
    /// answers 204, within [`BOUND`].
    pub(crate) async fn wait_healthy(&mut self) {
        if self.base_url.is_empty() {
            let child = &mut self.guard.child;
            self.base_url =
                wait_until_serving(&self.stderr_path, || child.try_wait().expect("try_wait")).await;
        }
    }

    /// Waits up to `limit` for the process to exit.
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
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
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.pid()]).status().expect("run kill");
        assert!(status.success(), "kill {signal} failed: {status}");
    }
}

/// An API client with a bound on every request.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

/// Creates the application `crash` with one endpoint pointing at `receiver`.
pub(crate) async fn create_app_and_endpoint(client: &reqwest::Client, served: &Served, receiver: &Receiver) {
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
pub(crate) enum Posted {
    /// 202, with the message's id: the server has taken responsibility for it.
    Accepted(String),
    /// Another status (never expected).
    Refused(StatusCode, String),
    /// No complete answer: the process was gone or went away mid-request.
    Failed,
}

/// Posts message number `i` to the application `crash`.
pub(crate) async fn post_message(client: &reqwest::Client, base_url: &str, i: usize) -> Posted {
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
pub(crate) fn arrivals(receiver: &Receiver) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in receiver.received() {
        *counts.entry(request.header("webhook-id").to_owned()).or_insert(0) += 1;
    }
    counts
}

/// Waits up to [`DELIVERY_BOUND`] until every id in `accepted` has arrived at least once, and
/// returns the arrival counts.
pub(crate) async fn wait_until_all_arrived(
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
