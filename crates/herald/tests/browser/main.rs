//! The dashboard and the customer portal in a real browser: headless Chromium, driven through
//! chromedriver (W3C WebDriver), against a Herald started by the test, delivering to a receiver
//! on loopback. Every test starts its own server, receiver and browser (port 0, temporary
//! directories), and all traffic stays on 127.0.0.1.
//!
//! This is a custom harness (`harness = false`) because whether a browser is available is only
//! known at run time: without Chromium and chromedriver it says SKIPPED, with the reason, and
//! exits 0, unless `HERALD_REQUIRE_BROWSER=1` (set by `.ci/run`) makes that an error. It never
//! passes silently. `HERALD_CHROMIUM` and `HERALD_CHROMEDRIVER` name the programs when they are
//! not on the PATH.
//!
//! The tests save screenshots of the main pages: into `docs/screenshots/` with
//! `HERALD_UPDATE_SCREENSHOTS=1` (to refresh the README's pictures), else into a temporary
//! directory under the build's target directory.
#![allow(clippy::unwrap_used, clippy::print_stderr, clippy::expect_used, dead_code)]

#[path = "../it/helpers.rs"]
mod helpers;
#[path = "../it/receiver.rs"]
mod receiver;

mod dashboard;
mod portal;
mod prefix;
mod sources;
mod webdriver;
mod world;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::webdriver::{Browser, Driver};

/// A test still running after this long has failed.
const TEST_TIMEOUT: Duration = Duration::from_secs(180);

/// What a test gets: the programs to run and where to put screenshots.
#[derive(Debug, Clone)]
pub struct Setup {
    pub chromium: PathBuf,
    pub screenshots: PathBuf,
}

impl Setup {
    /// Opens a browser with a desktop-sized window.
    pub async fn browser(&self, driver: &Driver) -> Browser {
        Browser::open(driver, &self.chromium, 1280, 860).await.unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn screenshot(&self, name: &str) -> PathBuf {
        self.screenshots.join(format!("{name}.png"))
    }
}

type TestFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One named browser test.
struct Test {
    name: &'static str,
    run: fn(Arc<Setup>, Arc<Driver>) -> TestFuture,
}

fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "portal_manages_endpoints_shows_attempts_resends_and_stays_in_its_application",
            run: |setup, driver| Box::pin(async move { portal::story(&setup, &driver).await }),
        },
        Test {
            name: "dashboard_signs_in_shows_the_overview_and_acts_on_endpoints",
            run: |setup, driver| Box::pin(async move { dashboard::story(&setup, &driver).await }),
        },
        Test {
            name: "dashboard_lists_sources_and_shows_one_with_its_url_destinations_and_refusals",
            run: |setup, driver| Box::pin(async move { sources::story(&setup, &driver).await }),
        },
        Test {
            name: "portal_and_dashboard_work_behind_a_proxy_under_a_path_prefix",
            run: |setup, driver| Box::pin(async move { prefix::story(&setup, &driver).await }),
        },
    ]
}

/// Finds a program: the environment variable, else the first of `names` on the PATH.
fn find_program(variable: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

fn screenshot_dir() -> PathBuf {
    let dir = if std::env::var("HERALD_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots")
    };
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir.canonicalize().unwrap_or(dir)
}

/// Names to run, from libtest-style arguments: words that are not flags or flags' values.
fn filters(args: &[String]) -> Vec<String> {
    const TAKES_VALUE: [&str; 6] = ["--test-threads", "--color", "--format", "--skip", "--logfile", "-Z"];
    let mut out = Vec::new();
    let mut skip_next = false;
    for arg in args {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        if TAKES_VALUE.contains(&arg.as_str()) {
            skip_next = true;
        } else if !arg.starts_with('-') {
            out.push(arg.clone());
        }
    }
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wanted = filters(&args);
    let selected: Vec<Test> = tests()
        .into_iter()
        .filter(|t| wanted.is_empty() || wanted.iter().any(|w| t.name.contains(w)))
        .collect();
    if args.iter().any(|a| a == "--list") {
        for test in &selected {
            println!("{}: test", test.name);
        }
        return ExitCode::SUCCESS;
    }
    if selected.is_empty() {
        println!("browser tests: 0 selected");
        return ExitCode::SUCCESS;
    }

    let required = std::env::var("HERALD_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let chromium = find_program("HERALD_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]);
    let chromedriver = find_program("HERALD_CHROMEDRIVER", &["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        let why = "Chromium and chromedriver were not found (install Debian's `chromium` and `chromium-driver`, \
                   or set HERALD_CHROMIUM and HERALD_CHROMEDRIVER)";
        if required {
            println!("browser tests: FAILED — {why} (HERALD_REQUIRE_BROWSER=1)");
            return ExitCode::FAILURE;
        }
        println!("browser tests: SKIPPED — {why}; set HERALD_REQUIRE_BROWSER=1 to make this an error");
        println!("0 passed, 0 failed, {} skipped", selected.len());
        return ExitCode::SUCCESS;
    };

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let setup = Arc::new(Setup { chromium, screenshots: screenshot_dir() });
    let driver = match Driver::start(&chromedriver) {
        Ok(driver) => Arc::new(driver),
        Err(why) => {
            println!("browser tests: FAILED — {why}");
            return ExitCode::FAILURE;
        }
    };
    println!("browser tests: running {} with {}", selected.len(), setup.chromium.display());
    let mut failed = 0;
    for test in &selected {
        let started = Instant::now();
        // Each test runs in a task of its own, so a failed assertion (a panic) fails that test
        // only, and its message is reported here.
        let outcome = runtime.block_on(async {
            tokio::time::timeout(TEST_TIMEOUT, tokio::spawn((test.run)(setup.clone(), driver.clone()))).await
        });
        match outcome {
            Ok(Ok(())) => println!("test {} ... ok ({} ms)", test.name, started.elapsed().as_millis()),
            Ok(Err(error)) => {
                failed += 1;
                println!("test {} ... FAILED: {}", test.name, panic_message(error));
            }
            Err(_) => {
                failed += 1;
                println!("test {} ... FAILED: did not finish within {TEST_TIMEOUT:?}", test.name);
            }
        }
    }
    drop(runtime);
    drop(driver);
    println!("screenshots: {}", setup.screenshots.display());
    println!("{} passed, {failed} failed", selected.len() - failed);
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    if !error.is_panic() {
        return error.to_string();
    }
    let payload = error.into_panic();
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => {
            payload.downcast_ref::<&str>().map_or_else(|| "panicked".to_owned(), |s| (*s).to_owned())
        }
    }
}
