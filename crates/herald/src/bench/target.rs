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
use herald_core::secret::Cipher;
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
    /// The nodes the bench started itself (the first serves the bench's API calls); empty for
    /// a Herald that was already running.
    children: Vec<ChildHerald>,
    /// The PostgreSQL schema the started nodes share, dropped by [`Target::finish`].
    schema: Option<herald_store_postgres::scratch::ScratchSchema>,
    /// What the started nodes run on, for the report: "sqlite" or "postgres, N nodes".
    backend: String,
}

/// A `herald serve` started by the bench.
#[derive(Debug)]
struct ChildHerald {
    process: Child,
    /// Holds the data directory and the log; removed on drop, after the process is gone.
    dir: tempfile::TempDir,
    base_url: String,
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
        Self {
            base_url: url.as_str().trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            children: Vec::new(),
            schema: None,
            backend: "external".to_owned(),
        }
    }

    /// Starts `herald serve` (this very executable) with the default configuration, on free
    /// loopback ports, with fresh data directories, and waits until each is healthy: one node
    /// on the embedded SQLite, or `nodes` nodes sharing a fresh schema of the PostgreSQL
    /// database at `database_url`. `concurrency` is the bench's requests in flight: the caps on
    /// requests and connections are raised to let them all in, so the run measures
    /// throughput, not refusals. With `faulty`, the nodes time out, retry and let leases
    /// expire within seconds (`faults::SPAWNED_*`), for runs whose receiver fails on purpose.
    pub async fn spawn(
        concurrency: u32,
        database_url: Option<&Url>,
        nodes: u32,
        faulty: bool,
    ) -> anyhow::Result<Self> {
        let token = generate_token_value(ORGANIZATION_TOKEN_PREFIX).expose().to_owned();
        let mut target = Self {
            base_url: String::new(),
            token,
            children: Vec::new(),
            schema: None,
            backend: "sqlite".to_owned(),
        };
        let mut database = Vec::new();
        if faulty {
            database.extend(
                super::faults::SPAWNED_SETTINGS.iter().map(|(name, value)| (*name, (*value).to_owned())),
            );
        }
        if let Some(url) = database_url {
            let schema = herald_store_postgres::scratch::ScratchSchema::create(url.as_str(), "herald_bench")
                .await
                .context("could not create a schema for the bench in the PostgreSQL database")?;
            database.push(("HERALD_DATABASE_URL", schema.url()));
            database.push(("HERALD_ENCRYPTION_KEY", Cipher::generate_key_base64()));
            target.schema = Some(schema);
            target.backend = format!("postgres, {nodes} node{}", if nodes == 1 { "" } else { "s" });
        }
        for _ in 0..nodes.max(1) {
            // One after the other: the first applies the migrations the others then find done.
            let child = ChildHerald::start(concurrency, &target.token, &database)?;
            target.children.push(child);
            let index = target.children.len() - 1;
            target.wait_until_healthy(index).await?;
        }
        target.base_url = target.children[0].base_url.clone();
        Ok(target)
    }

    /// Polls node `index`'s health check until it answers 204, it exits, or [`START_BOUND`].
    async fn wait_until_healthy(&mut self, index: usize) -> anyhow::Result<()> {
        let child = &mut self.children[index];
        let client = HeraldClient::new(&child.base_url, &self.token, 1)?;
        let deadline = Instant::now() + START_BOUND;
        loop {
            if client.healthy().await {
                return Ok(());
            }
            if let Some(status) = child.process.try_wait()? {
                bail!("`herald serve` exited ({status}) before it was healthy:\n{}", child.log_tail());
            }
            if Instant::now() >= deadline {
                bail!("Herald was not healthy within {START_BOUND:?}:\n{}", child.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the last started node at once (SIGKILL), as a crash would; it stays in the list
    /// (unreaped) so its CPU time still counts.
    pub fn kill_last_node(&mut self) {
        if let Some(child) = self.children.last_mut() {
            let _ = child.process.kill();
        }
    }

    /// Stops the started nodes and drops their PostgreSQL schema.
    pub async fn finish(mut self) {
        self.children.clear();
        if let Some(schema) = self.schema.take() {
            let name = schema.name().to_owned();
            if let Err(error) = schema.drop_now().await {
                eprintln!("could not drop the bench's schema {name}: {error:#}");
            }
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
        self.children.is_empty()
    }

    /// What the started nodes run on: "sqlite", "postgres, N nodes", or "external".
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// CPU seconds the started nodes used so far, together.
    pub fn cpu_seconds(&self) -> Option<f64> {
        if self.children.is_empty() {
            return None;
        }
        self.children.iter().map(|child| cpu_seconds(&child.process.id().to_string())).sum()
    }

    /// CPU seconds the local PostgreSQL server used so far, when the nodes run on PostgreSQL:
    /// every process named `postgres` (its backends, its background workers and the
    /// postmaster, with the backends that already exited), so other clients of the same
    /// server count too. `None` without PostgreSQL or /proc.
    pub fn postgres_cpu_seconds(&self) -> Option<f64> {
        self.schema.as_ref()?;
        let mut total = None;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().filter(|pid| pid.bytes().all(|b| b.is_ascii_digit())) else {
                continue;
            };
            let is_postgres = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == "postgres");
            if is_postgres {
                *total.get_or_insert(0.0) += process_cpu_seconds(pid, true).unwrap_or(0.0);
            }
        }
        total
    }

    /// WAL bytes the PostgreSQL server wrote so far (its `pg_stat_wal`), when the nodes run on
    /// PostgreSQL.
    pub async fn postgres_wal_bytes(&self) -> Option<u64> {
        self.schema.as_ref()?.wal_bytes().await.ok()
    }

    /// The largest peak resident memory of one started node so far (VmHWM), in MiB. `None`
    /// for an external Herald, or where /proc is not available.
    pub fn peak_memory_mib(&self) -> Option<f64> {
        self.children.iter().filter_map(|child| child.peak_memory_mib()).reduce(f64::max)
    }
}

impl ChildHerald {
    fn start(concurrency: u32, token: &str, database: &[(&str, String)]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("herald-bench-")
            .tempdir()
            .context("could not create a temporary directory for the Herald under test")?;
        let port = free_loopback_port()?;
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
            .env("HERALD_ADMIN_TOKEN", token)
            .env("HERALD_ALLOWED_CIDRS", "127.0.0.0/8")
            .env("HERALD_LOG_LEVEL", "warn")
            .env("HERALD_MAX_CONCURRENT_REQUESTS", concurrency.max(256).to_string())
            .env("HERALD_MAX_CONNECTIONS", concurrency.saturating_mul(2).max(1024).to_string())
            .envs(database.iter().map(|(name, value)| (*name, value.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let process = command.spawn().context("could not start `herald serve`")?;
        Ok(Self { process, dir, base_url: format!("http://127.0.0.1:{port}") })
    }

    fn peak_memory_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id())).ok()?;
        let line = status.lines().find_map(|line| line.strip_prefix("VmHWM:"))?;
        let kib: f64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib / 1024.0)
    }
}

/// CPU time (user + system) the process used so far, in seconds; `pid` is a number or
/// "self". `None` where /proc is not available.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    process_cpu_seconds(pid, false)
}

/// As [`cpu_seconds`], with `children`: plus that of its exited children it waited for.
fn process_cpu_seconds(pid: &str, children: bool) -> Option<f64> {
    /// Linux reports CPU times in USER_HZ ticks, 100 per second on every architecture.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; the fields after its
    // closing parenthesis start with field 3, so utime (14) and stime (15) are at 11 and 12,
    // cutime (16) and cstime (17) at 13 and 14.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index)?.parse::<u64>().ok();
    let own = ticks(11)? + ticks(12)?;
    let waited = if children { ticks(13)? + ticks(14)? } else { 0 };
    Some((own + waited) as f64 / TICKS_PER_SECOND)
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
