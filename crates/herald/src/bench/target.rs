//! The Herald under test: either a child process the bench starts (default configuration,
//! fresh data directory, loopback port) and always stops, or one already running on loopback.
//!
//! The child is killed and its directory removed when the [`Target`] is dropped, whether the
//! bench finished, failed or was interrupted.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use herald_core::token::{ORGANIZATION_TOKEN_PREFIX, generate_token_value};
use url::Url;

use super::client::HeraldClient;

/// How long a started Herald may take to answer its health check.
const START_BOUND: Duration = Duration::from_secs(15);

/// The Herald the bench sends its load to.
#[derive(Debug)]
pub struct Target {
    base_url: String,
    token: String,
    /// Present when the bench started this Herald itself.
    child: Option<ChildHerald>,
}

/// A `herald serve` started by the bench.
#[derive(Debug)]
struct ChildHerald {
    process: Child,
    /// Holds the data directory and the log; removed on drop, after the process is gone.
    dir: tempfile::TempDir,
}

impl Drop for ChildHerald {
    fn drop(&mut self) {
        // The data directory is thrown away, so there is nothing to shut down gracefully.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Target {
    /// A Herald already running at `url` (checked to be loopback by the caller).
    pub fn running(url: &Url, token: &str) -> Self {
        Self { base_url: url.as_str().trim_end_matches('/').to_owned(), token: token.to_owned(), child: None }
    }

    /// Starts `herald serve` (this very executable) with the default configuration, on a
    /// free loopback port, with a fresh data directory, and waits until it is healthy.
    /// `concurrency` is the bench's requests in flight: the caps on requests and connections
    /// are raised to let them all in, so the run measures throughput, not refusals.
    pub async fn spawn(concurrency: u32) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("herald-bench-")
            .tempdir()
            .context("could not create a temporary directory for the Herald under test")?;
        let port = free_loopback_port()?;
        let token = generate_token_value(ORGANIZATION_TOKEN_PREFIX).expose().to_owned();
        let log_path = dir.path().join("herald.log");
        let log =
            File::create(&log_path).with_context(|| format!("could not create {}", log_path.display()))?;
        let executable = std::env::current_exe().context("could not find the herald executable")?;

        let mut command = Command::new(executable);
        // The default configuration, whatever the caller's environment or working directory
        // holds: no inherited HERALD_* variable and no ./herald.toml.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("HERALD_") {
                command.env_remove(name);
            }
        }
        command
            .arg("serve")
            .current_dir(dir.path())
            .env("HERALD_LISTEN", format!("127.0.0.1:{port}"))
            .env("HERALD_DATA_DIR", dir.path().join("data"))
            .env("HERALD_ADMIN_TOKEN", &token)
            .env("HERALD_ALLOWED_CIDRS", "127.0.0.0/8")
            .env("HERALD_LOG_LEVEL", "warn")
            .env("HERALD_MAX_CONCURRENT_REQUESTS", concurrency.max(256).to_string())
            .env("HERALD_MAX_CONNECTIONS", concurrency.saturating_mul(2).max(1024).to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let process = command.spawn().context("could not start `herald serve`")?;
        let mut target = Self {
            base_url: format!("http://127.0.0.1:{port}"),
            token,
            child: Some(ChildHerald { process, dir }),
        };
        target.wait_until_healthy().await?;
        Ok(target)
    }

    /// Polls the health check until it answers 204, the child exits, or [`START_BOUND`].
    async fn wait_until_healthy(&mut self) -> anyhow::Result<()> {
        let client = HeraldClient::new(&self.base_url, &self.token, 1)?;
        let deadline = Instant::now() + START_BOUND;
        loop {
            if client.healthy().await {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Some(status) = child.process.try_wait()?
            {
                bail!("`herald serve` exited ({status}) before it was healthy:\n{}", child.log_tail());
            }
            if Instant::now() >= deadline {
                let log = self.child.as_ref().map(ChildHerald::log_tail).unwrap_or_default();
                bail!("Herald was not healthy within {START_BOUND:?}:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// True when the bench did not start this Herald.
    pub fn is_external(&self) -> bool {
        self.child.is_none()
    }

    /// The started Herald's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|child| child.process.id())
    }

    /// CPU seconds the started Herald used so far.
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(&self.pid()?.to_string())
    }

    /// The started Herald's peak resident memory so far (VmHWM), in MiB. `None` for an
    /// external Herald, or where /proc is not available.
    pub fn peak_memory_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find_map(|line| line.strip_prefix("VmHWM:"))?;
        let kib: f64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib / 1024.0)
    }
}

/// CPU time (user + system) the process used so far, in seconds; `pid` is a number or
/// "self". `None` where /proc is not available.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    /// Linux reports CPU times in USER_HZ ticks, 100 per second on every architecture.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; the fields after its
    // closing parenthesis start with field 3, so utime (14) and stime (15) are at 11 and 12.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / TICKS_PER_SECOND)
}

impl ChildHerald {
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("herald.log")
    }

    /// The end of the child's log, for error messages.
    fn log_tail(&self) -> String {
        tail(&self.log_path(), 20)
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A loopback port that was free a moment ago: bound to port 0, then released.
fn free_loopback_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("could not find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}
