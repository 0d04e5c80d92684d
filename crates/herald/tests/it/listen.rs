//! `herald listen`: the real binary receives deliveries from a real Herald, prints them,
//! verifies their signatures, forwards them to a local app, stores them and replays them.
//! Only loopback traffic.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestServer;
use crate::process::herald;
use crate::receiver::Receiver;

/// How long the listener may take to start, and a delivery to show up.
const BOUND: Duration = Duration::from_secs(20);
/// The endpoint's signing secret (24 bytes, the Standard Webhooks example).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Another valid secret, for a listener that must refuse the signature.
const WRONG_SECRET: &str = "whsec_dGhpcyBpcyBub3QgdGhlIHJpZ2h0IGtleSEh";

/// A running `herald listen`, killed when dropped, with its stdout collected line by line.
struct Listening {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    port: u16,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Listening {
    async fn start(work_dir: &Path, args: &[&str]) -> Self {
        let mut child = herald(work_dir)
            .arg("listen")
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut listening = Self { child, lines, port: 0 };
        let first = listening.wait_line(|line| line.contains("listening on http://127.0.0.1:")).await;
        let port = first.split("127.0.0.1:").nth(1).unwrap().split('/').next().unwrap();
        listening.port = port.parse().unwrap();
        listening
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/webhooks", self.port)
    }

    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits (bounded) for a printed line matching `wanted`, and returns it. Sleeps on the
    /// runtime, not the thread: the test's Herald runs on the same runtime.
    async fn wait_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|line| wanted(line)) {
                return line.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("herald listen exited with {status}; output:\n{}", self.output());
            }
            assert!(
                Instant::now() < deadline,
                "the line did not appear within {BOUND:?}; output:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A Herald with application `acme` and an endpoint at `url` signed with [`SECRET`]; sends
/// one message and returns the message id and the payload.
async fn deliver_to(server: &TestServer, url: &str) -> (String, Value) {
    server.create_app("Acme", Some("acme")).await;
    let created = server.post("/api/v1/app/acme/endpoint", json!({"url": url, "secret": SECRET})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let payload = json!({"type": "invoice.paid", "invoice": {"id": "in_42", "total": 999}});
    let sent = server
        .post("/api/v1/app/acme/msg", json!({"eventType": "invoice.paid", "payload": payload.clone()}))
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{:?}", sent.body);
    (sent.body["id"].as_str().unwrap().to_owned(), payload)
}

#[tokio::test]
async fn listen_prints_verifies_forwards_stores_and_replays_a_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("received.jsonl");
    let app = Receiver::start().await;
    let app_url = app.url("/app/hooks");
    let mut listening = Listening::start(
        dir.path(),
        &["--secret", SECRET, "--forward-to", &app_url, "--store", store.to_str().unwrap()],
    )
    .await;
    let server = TestServer::start().await;
    let (msg_id, payload) = deliver_to(&server, &listening.url()).await;

    let heading = listening.wait_line(|line| line.contains(&msg_id)).await;
    assert!(heading.contains("POST /webhooks"), "{heading}");
    assert!(heading.contains("event: invoice.paid"), "{heading}");
    listening.wait_line(|line| line == "signature: valid").await;
    listening.wait_line(|line| line.starts_with("forward: ") && line.contains("-> 200")).await;

    let forwarded = app.wait_for(1, BOUND).await;
    assert_eq!(forwarded[0].path, "/app/hooks");
    assert_eq!(forwarded[0].header("webhook-id"), msg_id);
    let body: Value = serde_json::from_slice(&forwarded[0].body).unwrap();
    assert_eq!(body, payload);

    // The store has the request; replay sends it again, byte for byte, to another app.
    let stored = std::fs::read_to_string(&store).unwrap();
    let line: Value = serde_json::from_str(stored.lines().next().unwrap()).unwrap();
    assert_eq!(line["webhook_id"], msg_id.as_str());
    assert_eq!(line["path"], "/webhooks");
    let again = Receiver::start().await;
    let replay_url = again.url("/replayed");
    let store_arg = store.to_str().unwrap().to_owned();
    let id = msg_id.clone();
    let output = tokio::task::spawn_blocking(move || {
        herald(Path::new("/"))
            .args(["listen", "replay", "--store", &store_arg, "--forward-to", &replay_url, "--id", &id])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(printed.contains(&msg_id) && printed.contains("-> 200"), "{printed}");
    let replayed = again.wait_for(1, BOUND).await;
    assert_eq!(replayed[0].header("webhook-id"), msg_id);
    assert_eq!(replayed[0].body, forwarded[0].body);

    // `herald verify` checks the stored webhook offline: valid with its secret, not with another.
    let verify = |secret: &'static str| {
        let (store_arg, id) = (store.to_str().unwrap().to_owned(), msg_id.clone());
        tokio::task::spawn_blocking(move || {
            herald(Path::new("/"))
                .args(["verify", "--secret", secret, "--stored", &store_arg, "--id", &id])
                .output()
                .unwrap()
        })
    };
    let valid = verify(SECRET).await.unwrap();
    let printed = String::from_utf8_lossy(&valid.stdout);
    assert!(valid.status.success(), "{printed}\n{}", String::from_utf8_lossy(&valid.stderr));
    assert!(printed.starts_with("valid") && printed.contains(&msg_id), "{printed}");
    let invalid = verify(WRONG_SECRET).await.unwrap();
    assert_eq!(invalid.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("no_matching_signature"));
}

#[tokio::test]
async fn listen_with_the_wrong_secret_prints_why_and_answers_401() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("received.jsonl");
    let mut listening =
        Listening::start(dir.path(), &["--secret", WRONG_SECRET, "--store", store.to_str().unwrap()]).await;
    let server = TestServer::start().await;
    let (msg_id, _) = deliver_to(&server, &listening.url()).await;
    listening.wait_line(|line| line.contains(&msg_id) && line.contains("event: invoice.paid")).await;
    let reason = listening.wait_line(|line| line.starts_with("signature: INVALID")).await;
    assert!(reason.contains("no_matching_signature"), "{reason}");

    // The sender sees the refusal, with the reason in a JSON body.
    let refused = reqwest::Client::new()
        .post(listening.url())
        .header("webhook-id", "msg_manual")
        .header("webhook-timestamp", "12")
        .header("webhook-signature", "v1,AAAA")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "timestamp_too_old");
    listening.wait_line(|line| line.contains("timestamp too old by")).await;
}

#[test]
fn listen_refuses_to_forward_off_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let output = herald(dir.path())
        .args(["listen", "--port", "0", "--forward-to", "http://example.com/hooks"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("only forwards to this machine"), "{stderr}");
}

#[tokio::test]
async fn listen_answers_502_while_the_local_app_is_down_and_forwards_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on yet: the "local app" is down.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let app_url = format!("http://127.0.0.1:{port}/hooks");
    let store = dir.path().join("received.jsonl");
    let mut listening =
        Listening::start(dir.path(), &["--forward-to", &app_url, "--store", store.to_str().unwrap()]).await;
    let client = reqwest::Client::new();
    let down = client.post(listening.url()).header("webhook-id", "msg_down").body("{}").send().await.unwrap();
    assert_eq!(down.status(), StatusCode::BAD_GATEWAY);
    listening.wait_line(|line| line.starts_with("forward: ") && line.contains("unreachable")).await;

    // The app comes up on that port; the listener, still running, forwards to it.
    let app = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let router = axum::Router::new().fallback(|| async { StatusCode::ACCEPTED });
    tokio::spawn(async move { axum::serve(app, router).await });
    let up = client.post(listening.url()).header("webhook-id", "msg_up").body("{}").send().await.unwrap();
    assert_eq!(up.status(), StatusCode::ACCEPTED, "the local app's status is passed back");
    listening.wait_line(|line| line.contains("-> 202")).await;
    assert_eq!(std::fs::read_to_string(&store).unwrap().lines().count(), 2, "both requests are stored");
}

#[tokio::test]
async fn listen_attaches_to_an_ingest_source_and_verifies_what_it_forwards() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("received.jsonl");
    let server = TestServer::start().await;
    let created = server
        .post(
            "/ingest/api/v1/source",
            json!({"name": "Dev", "uid": "dev", "type": "generic-webhook", "config": {}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let ingest_url = created.body["ingestUrl"].as_str().unwrap().to_owned();
    let base = server.url("");
    let mut listening = Listening::start(
        dir.path(),
        &[
            "--source",
            "dev",
            "--url",
            &base,
            "--token",
            crate::helpers::ADMIN_TOKEN,
            "--store",
            store.to_str().unwrap(),
        ],
    )
    .await;
    let attached = listening.wait_line(|line| line.contains("attached to source dev as destination")).await;
    let destinations = server.get("/ingest/api/v1/source/dev/endpoint").await;
    let destination = destinations.body["data"][0]["id"].as_str().unwrap().to_owned();
    assert!(attached.contains(&destination), "{attached}");
    assert_eq!(destinations.body["data"][0]["url"], listening.url().trim_end_matches("webhooks"));

    // A provider posts to the source; the listener gets the forwarded copy, signed with the
    // destination's secret, which it verifies.
    let answer = reqwest::Client::new()
        .post(&ingest_url)
        .header("content-type", "application/json")
        .header("webhook-id", "evt_listen_1")
        .body(r#"{"hello":"listener"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    listening.wait_line(|line| line.contains("hello")).await;
    listening.wait_line(|line| line == "signature: valid").await;
}
