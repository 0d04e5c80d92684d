//! The official Svix SDK for Python, an independent client, against a real `herald serve`:
//! applications, event types, endpoints (create, upsert, patch, secret, headers, stats), a
//! message and its signed delivery (verified by the SDK's own `Webhook`), attempts, attempted
//! destinations, and a 409; with 2.x also the ingest gateway through `ingest.source` and
//! `ingest.endpoint` (create, get, list, upsert, rotate_token, secrets, headers, delete) and a
//! GitHub-signed event forwarded to the destination. Two generations of the SDK run the same script: 2.x (Python's
//! `svix` package as installed) and 1.x (the last, 1.99.1, still the most installed, from the
//! directory `HERALD_PYTHON_SVIX1_PATH` names, e.g. `pip install --target DIR svix==1.99.1`),
//! whose models differ (1.x requires an endpoint's `version`).
//!
//! A custom harness, so that a machine without either SDK says loudly that it SKIPPED that
//! check instead of passing silently. `.ci/run` installs both and sets
//! `HERALD_REQUIRE_PYTHON_SDK=1`, which turns a skip into a failure.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The organisation token the server under test accepts.
const TOKEN: &str = "python-sdk-test-token-0123456789";
/// How long one SDK's check may take.
const DEADLINE: Duration = Duration::from_secs(60);
/// The variable naming the directory that holds the 1.x SDK.
const SVIX1_PATH_VARIABLE: &str = "HERALD_PYTHON_SVIX1_PATH";

/// One generation of the SDK under test.
struct Sdk {
    /// The test's name, as `--list` prints it and filters match it.
    test: &'static str,
    /// The major version `svix.__version__` must have, so the wrong package never passes as
    /// the other one.
    major: &'static str,
    /// Prepended to `PYTHONPATH`: where this generation is installed (none: Python's own path).
    path: Option<PathBuf>,
    /// How to install it, for the skip message.
    install: &'static str,
}

fn main() -> ExitCode {
    let required = std::env::var("HERALD_REQUIRE_PYTHON_SDK").is_ok_and(|v| v == "1");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sdks = [
        Sdk {
            test: "python_svix_sdk_2_drives_herald",
            major: "2",
            path: None,
            install: "`pip install svix==2.9.1` to run it",
        },
        Sdk {
            test: "python_svix_sdk_1_drives_herald",
            major: "1",
            path: std::env::var_os(SVIX1_PATH_VARIABLE).map(PathBuf::from),
            install: "`pip install --target DIR svix==1.99.1` and set HERALD_PYTHON_SVIX1_PATH=DIR to run it",
        },
    ];
    if args.iter().any(|a| a == "--list") {
        for sdk in &sdks {
            println!("{}: test", sdk.test);
        }
        return ExitCode::SUCCESS;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let mut failed = 0;
    let mut passed = 0;
    for sdk in sdks.iter().filter(|sdk| filters.iter().all(|f| sdk.test.contains(f.as_str()))) {
        if let Err(reason) = probe(sdk) {
            if required {
                println!("{}: FAILED: {reason}, and HERALD_REQUIRE_PYTHON_SDK=1", sdk.test);
                failed += 1;
            } else {
                println!("{}: SKIPPED: {reason} ({})", sdk.test, sdk.install);
            }
            continue;
        }
        match run(sdk) {
            Ok(()) => {
                println!("{}: ok", sdk.test);
                passed += 1;
            }
            Err(error) => {
                println!("{}: FAILED: {error}", sdk.test);
                failed += 1;
            }
        }
    }
    println!("python svix sdk: {passed} passed, {failed} failed");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// A `python3` command that imports this generation of the SDK.
fn python(sdk: &Sdk) -> Command {
    let mut command = Command::new("python3");
    if let Some(path) = &sdk.path {
        let mut paths = vec![path.clone()];
        paths.extend(std::env::var_os("PYTHONPATH").iter().flat_map(std::env::split_paths));
        command.env("PYTHONPATH", std::env::join_paths(paths).unwrap_or_default());
    }
    command
}

/// Checks that the SDK can be imported and is the right generation; the error says why not.
fn probe(sdk: &Sdk) -> Result<(), String> {
    if sdk.major == "1" && sdk.path.is_none() {
        return Err(format!("{SVIX1_PATH_VARIABLE} is not set"));
    }
    let out = python(sdk)
        .args(["-c", "import svix; print(svix.__version__)"])
        .output()
        .map_err(|error| format!("python3 could not be run: {error}"))?;
    if !out.status.success() {
        return Err("Python's `svix` package is not installed".to_owned());
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if version.split('.').next() != Some(sdk.major) {
        return Err(format!("the `svix` package found is {version}, not {}.x", sdk.major));
    }
    Ok(())
}

fn run(sdk: &Sdk) -> Result<(), String> {
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
        let mut script_run = python(sdk)
            .args([script, &format!("http://{address}"), TOKEN])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not run python3: {e}"))?;
        loop {
            if let Some(status) = script_run.try_wait().map_err(|e| e.to_string())? {
                let out = script_run.wait_with_output().map_err(|e| e.to_string())?;
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
                drop(script_run.kill());
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
