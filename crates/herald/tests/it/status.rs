//! `herald status` run as an operator would, against a server on loopback: readiness, the
//! queue and endpoint health from `/metrics`, and the applications with failures.
#![allow(clippy::unwrap_used)]

use crate::client::herald_with;
use crate::helpers::ADMIN_TOKEN;
use crate::metrics::{add_endpoint, send, start, wait_for_attempts};
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn status_summarises_a_running_server_on_one_screen() {
    let server = start(Vec::new()).await;
    let healthy = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.always(Reply::Status(500));
    add_endpoint(&server, "healthy", healthy.url("/")).await;
    add_endpoint(&server, "failing", failing.url("/")).await;
    for _ in 0..2 {
        let msg_id = send(&server).await;
        wait_for_attempts(&server, &msg_id, 2).await;
    }

    let report =
        herald_with(Some(&server), Some(ADMIN_TOKEN), &["status", "--interval", "100ms", "--json"], None)
            .await
            .json();
    assert_eq!(report["ready"], true, "{report}");
    assert_eq!(report["health"]["worker"], "running");
    assert!(report["intervalSeconds"].as_f64().unwrap() >= 0.1, "{report}");
    assert!(report["throughput"]["acceptedPerSecond"].as_f64().unwrap() >= 0.0, "{report}");
    // The failed deliveries wait for their retry: the server's clock stands still.
    assert_eq!(report["queue"]["scheduled"], 2.0, "{report}");
    assert_eq!(report["queue"]["due"], 0.0, "{report}");
    assert_eq!(report["endpoints"]["failing"], 1.0, "{report}");
    assert_eq!(report["attemptsSinceStart"]["success"], 2.0, "{report}");
    assert_eq!(report["attemptsSinceStart"]["http_5xx"], 2.0, "{report}");
    let app = &report["applications"][0];
    assert_eq!((app["uid"].as_str(), app["messages"].as_u64()), (Some("acme"), Some(2)), "{report}");
    assert_eq!((app["success"].as_u64(), app["fail"].as_u64()), (Some(2), Some(2)), "{report}");

    let screen =
        herald_with(Some(&server), Some(ADMIN_TOKEN), &["status", "--interval", "100ms"], None).await;
    let text = screen.ok();
    assert!(text.starts_with(&format!("Herald at {}: ready", server.url(""))), "{text}");
    for expected in ["Throughput over", "scheduled", "failing", "http_5xx 2", "acme", "50.0%"] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    assert!(text.lines().count() <= 30, "one screen:\n{text}");

    // Without a token the server-wide part still shows; applications need one.
    let anonymous = herald_with(Some(&server), None, &["status", "--interval", "100ms"], None).await;
    let text = anonymous.ok();
    assert!(text.contains("failing") && text.contains("applications left out"), "{text}");
    assert!(!text.contains("acme"), "{text}");
}
