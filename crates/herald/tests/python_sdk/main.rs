//! The official Svix SDK for Python, an independent client, against a real `herald serve`:
//! applications, event types, endpoints (create, upsert, patch, secret, stats), a message and
//! its signed delivery (verified by the SDK's own `Webhook`), attempts, and a 409.
//!
//! A custom harness, so that a machine without Python's `svix` package says loudly that it
//! SKIPPED this check instead of passing silently. `.ci/run` installs the package and sets
//! `HERALD_REQUIRE_PYTHON_SDK=1`, which turns a skip into a failure.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The organisation token the server under test accepts.
const TOKEN: &str = "python-sdk-test-token-0123456789";
/// How long the whole check may take.
const DEADLINE: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let required = std::env::var("HERALD_REQUIRE_PYTHON_SDK").is_ok_and(|v| v == "1");
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("python_svix_sdk_drives_herald: test");
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| !a.starts_with('-') && !"python_svix_sdk_drives_herald".contains(a.as_str())) {
        return ExitCode::SUCCESS;
    }
    let probe = Command::new("python3").args(["-c", "import svix"]).output();
    let reason = match probe {
        Err(error) => Some(format!("python3 could not be run: {error}")),
        Ok(out) if !out.status.success() => Some("Python's `svix` package is not installed".to_owned()),
        Ok(_) => None,
    };
    if let Some(reason) = reason {
        if required {
            println!("python svix sdk: FAILED: {reason}, and HERALD_REQUIRE_PYTHON_SDK=1");
            return ExitCode::FAILURE;
        }
        println!("python svix sdk: SKIPPED: {reason} (`pip install svix` to run it)");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => {
            println!("python svix sdk: 1 passed, 0 failed");
            ExitCode::SUCCESS
        }
        Err(error) => {
            println!("python svix sdk: FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut server = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
        .arg(data.path())
        .env("HERALD_ADMIN_TOKEN", TOKEN)
        .env("HERALD_ALLOWED_CIDRS", "127.0.0.0/8")
        .env_remove("HERALD_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start herald: {e}"))?;
    let result = (|| {
        let address = serving_address(&mut server)?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python_sdk/sdk_check.py");
        let started = Instant::now();
        let mut python = Command::new("python3")
            .args([script, &format!("http://{address}"), TOKEN])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not run python3: {e}"))?;
        loop {
            if let Some(status) = python.try_wait().map_err(|e| e.to_string())? {
                let out = python.wait_with_output().map_err(|e| e.to_string())?;
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                return if status.success() && text.contains("python svix sdk: ok") {
                    Ok(())
                } else {
                    Err(format!("the script failed ({status}):\n{text}"))
                };
            }
            if started.elapsed() > DEADLINE {
                drop(python.kill());
                return Err(format!("the script did not finish within {DEADLINE:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })();
    drop(server.kill());
    drop(server.wait());
    result
}

/// Reads the server's JSON log (on stderr) until it says where it serves; the rest of the log
/// is read and dropped, so the server never blocks on a full pipe.
fn serving_address(server: &mut std::process::Child) -> Result<String, String> {
    let output = server.stderr.take().ok_or("no server log")?;
    let (found, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if entry["fields"]["message"] == "Herald is serving"
                && let Some(address) = entry["fields"]["address"].as_str()
            {
                drop(found.send(address.to_owned()));
            }
        }
    });
    address.recv_timeout(Duration::from_secs(20)).map_err(|_| "herald did not start serving".to_owned())
}
