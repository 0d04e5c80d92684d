//! The `herald` binary run as a user would: subcommands, start-up, the first-start token,
//! configuration errors and shutdown on SIGTERM. Every child process is bounded in time and
//! killed when a test fails.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::sync::mpsc;

/// How long any one child process may take to start, answer or exit.
const BOUND: Duration = Duration::from_secs(10);

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

/// A child process that is killed (and reaped) when dropped, so a failing test leaves none
/// behind.
#[derive(Debug)]
struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited, without waiting.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits up to [`BOUND`] for the process to exit.
    async fn wait_bounded(&mut self) -> ExitStatus {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(Instant::now() < deadline, "the process did not exit within {BOUND:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends SIGTERM, as a service manager stopping Herald would.
    fn terminate(&self) {
        let status = Command::new("kill").arg("-TERM").arg(self.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The result of a short-lived command.
#[derive(Debug)]
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs a command that should exit by itself, killing it if it takes longer than [`BOUND`].
/// Output goes to files, so a chatty process can't block on a full pipe.
async fn run(mut command: Command) -> Finished {
    let dir = tempfile::tempdir().expect("tempdir");
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let child = command
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("spawn herald");
    let mut guard = ChildGuard { child };
    let status = guard.wait_bounded().await;
    Finished {
        status,
        stdout: std::fs::read_to_string(stdout_path).expect("read stdout"),
        stderr: std::fs::read_to_string(stderr_path).expect("read stderr"),
    }
}

/// A running `herald serve`: its stdout lines arrive on a channel, its stderr goes to a file.
#[derive(Debug)]
struct Served {
    guard: ChildGuard,
    base_url: String,
    lines: mpsc::UnboundedReceiver<String>,
    stderr_path: PathBuf,
    /// Every stdout line received so far.
    stdout: Vec<String>,
}

impl Served {
    /// Starts `herald serve` with `data_dir` on a port the kernel picks (read back from the log
    /// by [`Served::wait_healthy`]). `work_dir` holds the log file.
    fn start(work_dir: &Path, data_dir: &Path) -> Self {
        let stderr_path = tempfile::Builder::new()
            .prefix("serve-")
            .suffix(".stderr")
            .tempfile_in(work_dir)
            .expect("stderr file")
            .into_temp_path()
            .keep()
            .expect("keep stderr file");
        let mut command = herald(work_dir);
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr_path).expect("stderr file"));
        let mut child = command.spawn().expect("spawn herald serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let guard = ChildGuard { child };
        let (sender, lines) = mpsc::unbounded_channel();
        // Reads stdout to the end, so the process never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { guard, base_url: String::new(), lines, stderr_path, stdout: Vec::new() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Reads stdout until a line holding a token (`sk_…`), within [`BOUND`].
    async fn read_token(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv()).await;
            match line {
                Ok(Some(line)) => {
                    self.stdout.push(line.clone());
                    if line.trim().starts_with("sk_") {
                        return line.trim().to_owned();
                    }
                }
                Ok(None) => panic!(
                    "stdout closed without a token; stdout: {:?}; stderr: {}",
                    self.stdout,
                    self.stderr()
                ),
                Err(_) => panic!(
                    "no token on stdout within {BOUND:?}; stdout: {:?}; stderr: {}",
                    self.stdout,
                    self.stderr()
                ),
            }
        }
    }

    /// Learns the server's address from its log and waits until it is healthy.
    async fn wait_healthy(&mut self) {
        if self.base_url.is_empty() {
            let guard = &mut self.guard;
            self.base_url = crate::process::wait_until_serving(&self.stderr_path, || guard.exited()).await;
        }
    }

    /// Sends SIGTERM, asserts a successful exit within [`BOUND`], and returns all of stdout.
    async fn stop(mut self) -> Vec<String> {
        self.guard.terminate();
        let status = self.guard.wait_bounded().await;
        assert!(
            status.success(),
            "herald serve exits successfully on SIGTERM, got {status}; stderr: {}",
            self.stderr()
        );
        // The process has exited, so the reader thread reaches end of file and closes the channel.
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => self.stdout.push(line),
                Ok(None) => break,
                Err(_) => panic!("stdout did not close after the process exited"),
            }
        }
        self.stdout
    }
}

/// `GET /api/v1/app` with `token`, returning the status.
async fn list_apps(base: &Served, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(base.url("/api/v1/app"))
        .bearer_auth(token)
        .timeout(BOUND)
        .send()
        .await
        .expect("GET /api/v1/app")
        .status()
}

#[tokio::test]
async fn config_default_prints_the_documented_default_settings() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut command = herald(work.path());
    command.args(["config", "default"]);
    let out = run(command).await;

    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.lines().any(|l| l.trim() == "listen = \"127.0.0.1:8040\""), "{}", out.stdout);
    assert!(out.stdout.lines().any(|l| l.starts_with("data_dir = ")), "{}", out.stdout);
    // Every line is a comment, blank, or a `key = value` setting.
    for line in out.stdout.lines().map(str::trim) {
        assert!(
            line.is_empty() || line.starts_with('#') || line.contains(" = "),
            "unexpected line in the default configuration: {line:?}"
        );
    }
}

#[tokio::test]
async fn serve_prints_a_first_start_token_that_works_and_stops_cleanly_on_sigterm() {
    let work = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("data");
    let mut served = Served::start(work.path(), &data_dir);

    let token = served.read_token().await;
    served.wait_healthy().await;
    assert_eq!(list_apps(&served, &token).await, StatusCode::OK);
    assert_eq!(list_apps(&served, "sk_not_the_token_000000000000").await, StatusCode::UNAUTHORIZED);

    let stdout = served.stop().await;
    let tokens = stdout.iter().filter(|l| l.trim().starts_with("sk_")).count();
    assert_eq!(tokens, 1, "the token is printed once: {stdout:?}");
}

#[tokio::test]
async fn serve_does_not_print_a_new_token_on_a_second_start() {
    let work = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("data");

    let mut first = Served::start(work.path(), &data_dir);
    let token = first.read_token().await;
    first.wait_healthy().await;
    first.stop().await;

    let mut second = Served::start(work.path(), &data_dir);
    second.wait_healthy().await;
    assert_eq!(list_apps(&second, &token).await, StatusCode::OK, "the first start's token still works");
    let stdout = second.stop().await;
    assert!(
        !stdout.iter().any(|l| l.trim().starts_with("sk_")),
        "no new token on the second start: {stdout:?}"
    );
}

#[tokio::test]
async fn an_invalid_setting_in_the_environment_fails_naming_the_setting_and_variable() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut command = herald(work.path());
    command.arg("serve").arg("--data-dir").arg(work.path().join("data")).env("HERALD_LISTEN", "nonsense");
    let out = run(command).await;

    assert!(!out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains("listen") && out.stderr.contains("HERALD_LISTEN"),
        "stderr names the setting and the variable: {}",
        out.stderr
    );
    assert!(!out.stdout.contains("sk_"), "no token before the configuration is valid: {}", out.stdout);
}

#[tokio::test]
async fn an_unknown_key_in_the_config_file_fails_naming_the_key() {
    let work = tempfile::tempdir().expect("tempdir");
    let config = work.path().join("custom.toml");
    std::fs::write(&config, "lisen = \"127.0.0.1:9999\"\n").expect("write config");
    let mut command = herald(work.path());
    command.arg("serve").arg("--config").arg(&config).arg("--data-dir").arg(work.path().join("data"));
    let out = run(command).await;

    assert!(!out.status.success(), "{out:?}");
    assert!(out.stderr.contains("lisen"), "stderr names the unknown key: {}", out.stderr);
}

#[tokio::test]
async fn token_create_prints_a_token_the_server_then_accepts() {
    let work = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("data");
    let mut command = herald(work.path());
    command.args(["token", "create", "--data-dir"]).arg(&data_dir);
    let out = run(command).await;
    assert!(out.status.success(), "{out:?}");
    let token = out.stdout.trim().to_owned();
    assert!(
        token.starts_with("sk_") && !token.contains(char::is_whitespace),
        "stdout is the token alone: {:?}",
        out.stdout
    );

    let mut served = Served::start(work.path(), &data_dir);
    served.wait_healthy().await;
    assert_eq!(list_apps(&served, &token).await, StatusCode::OK);
    let stdout = served.stop().await;
    assert!(
        !stdout.iter().any(|l| l.trim().starts_with("sk_")),
        "a token already exists, so serve creates none: {stdout:?}"
    );
}

#[tokio::test]
async fn migrate_creates_the_database_and_reports_it_up_to_date() {
    let work = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("data");
    for run_number in 1..=2 {
        let mut command = herald(work.path());
        command.arg("migrate").arg("--data-dir").arg(&data_dir);
        let out = run(command).await;
        assert!(out.status.success(), "run {run_number}: {out:?}");
        assert!(out.stdout.contains("up to date"), "run {run_number}: {}", out.stdout);
    }
    assert!(data_dir.join("herald.db").exists(), "the database is in the data directory");
}
