//! The first start as a newcomer meets it: a start that cannot listen (the port is taken)
//! creates nothing, so the start that serves shows the organisation token; the log says where
//! the dashboard and the API reference are.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::process::{BOUND, herald, wait_until_serving};

/// Kills and reaps the child when dropped, so a failing test leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `herald serve` on `listen` with a fresh environment; its output goes to `<name>.stdout`
/// and `<name>.stderr` in `work`.
fn start(work: &Path, name: &str, listen: &str) -> Running {
    let mut command = herald(work);
    command
        .args(["serve", "--listen", listen, "--data-dir"])
        .arg(work.join("data"))
        .stdout(File::create(work.join(format!("{name}.stdout"))).unwrap())
        .stderr(File::create(work.join(format!("{name}.stderr"))).unwrap())
        .stdin(Stdio::null());
    Running(command.spawn().unwrap())
}

#[tokio::test]
async fn a_start_that_cannot_listen_does_not_lose_the_first_token() {
    let work = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();

    let mut failed = start(work.path(), "busy", &busy);
    let deadline = tokio::time::Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = failed.0.try_wait().unwrap() {
            break status;
        }
        assert!(tokio::time::Instant::now() < deadline, "herald kept running on a taken port");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success());
    let error = std::fs::read_to_string(work.path().join("busy.stderr")).unwrap();
    assert!(error.contains(&format!("could not listen on {busy}")), "{error}");
    let printed = std::fs::read_to_string(work.path().join("busy.stdout")).unwrap();
    assert!(!printed.contains("sk_"), "no token is made by a start that can't serve: {printed}");

    // The next start serves, and it is the one that creates and shows the token.
    let mut served = start(work.path(), "served", "127.0.0.1:0");
    let stderr = work.path().join("served.stderr");
    let child = &mut served.0;
    let base_url = wait_until_serving(&stderr, || child.try_wait().unwrap()).await;
    let printed = std::fs::read_to_string(work.path().join("served.stdout")).unwrap();
    let token = printed.lines().map(str::trim).find(|l| l.starts_with("sk_")).unwrap_or_else(|| {
        panic!("the serving start shows the token: {printed}");
    });
    assert!(printed.contains("herald token create"), "{printed}");
    let apps =
        reqwest::Client::new().get(format!("{base_url}/api/v1/app")).bearer_auth(token).send().await.unwrap();
    assert_eq!(apps.status(), StatusCode::OK);

    // The log line that says where Herald serves also says where to go next.
    let log = std::fs::read_to_string(&stderr).unwrap();
    let serving = log.lines().find(|l| l.contains("Herald is serving")).unwrap();
    assert!(serving.contains(&format!("{base_url}/ui")), "{serving}");
    assert!(serving.contains(&format!("{base_url}/docs")), "{serving}");
}

#[test]
fn the_default_data_directory_is_ignored_by_git() {
    let gitignore =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.gitignore")).unwrap();
    assert!(gitignore.lines().any(|l| l.trim() == "herald-data/"), "{gitignore}");
}
