//! `herald bench` run as a user would: it starts its own Herald, sends a small load to its own
//! receiver, and reports every delivery arriving once, correctly signed. It must refuse to
//! send load anywhere but loopback.

use std::fs::File;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long one bench run may take; the small run below needs a few seconds.
const BOUND: Duration = Duration::from_secs(60);

/// Runs `herald bench` with `args` and a clean environment, killing it after [`BOUND`].
/// Output goes to files, so a chatty process can't block on a full pipe.
fn bench(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HERALD_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .arg("bench")
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("spawn herald bench");
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("herald bench did not finish within {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(stdout_path).expect("read stdout"),
        stderr: std::fs::read(stderr_path).expect("read stderr"),
    }
}

#[test]
fn bench_delivers_every_message_to_every_endpoint_once() {
    let output = bench(&["--messages", "300", "--endpoints", "2", "--concurrency", "8", "--json"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {}\nstdout: {stdout}\nstderr: {stderr}", output.status);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");
    assert_eq!(report["accepted"], 300, "{report}");
    assert_eq!(report["deliveries"], 600, "{report}");
    assert_eq!(report["missing"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["signature_failures"], 0, "{report}");
    assert_eq!(report["api_errors"], 0, "{report}");
    let memory = report["peak_memory_mib"].as_f64().expect("peak memory measured");
    assert!(memory > 0.0, "{report}");
    let p99 = report["latency_ms"]["p99"].as_f64().expect("p99");
    assert!(p99 > 0.0 && p99 <= report["latency_ms"]["max"].as_f64().expect("max"), "{report}");
    // Not a terminal: no progress line.
    assert!(stderr.is_empty(), "stderr: {stderr}");
}

#[test]
fn bench_refuses_a_url_off_this_machine() {
    let output = bench(&["--url", "http://192.0.2.1:8040", "--token", "sk_not-used-anywhere"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("refusing to benchmark") && stderr.contains("loopback"), "stderr: {stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn bench_ingest_forwards_every_event_to_every_destination_once() {
    let output =
        bench(&["--ingest", "--messages", "200", "--endpoints", "2", "--concurrency", "8", "--json"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {}\nstdout: {stdout}\nstderr: {stderr}", output.status);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");
    assert_eq!(report["accepted"], 200, "{report}");
    assert_eq!(report["deliveries"], 400, "{report}");
    assert_eq!(report["missing"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["signature_failures"], 0, "{report}");
}
