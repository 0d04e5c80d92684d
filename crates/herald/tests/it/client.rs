//! The `herald` API client subcommands (`app`, `endpoint`, `event-type`, `message`, `send`,
//! `attempt`, `verify`) run as a user would, against an in-process server on loopback.
//! Every child process is bounded in time and killed when a test fails.

use std::fs::File;
use std::io::Write as _;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{ADMIN_TOKEN, TestServer};

/// How long one client command may take.
const BOUND: Duration = Duration::from_secs(10);

/// The result of one client command.
#[derive(Debug)]
pub(crate) struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    fn code(&self) -> i32 {
        self.status.code().expect("exited normally")
    }

    /// Asserts success and returns stdout.
    pub(crate) fn ok(&self) -> &str {
        assert!(self.status.success(), "failed with {}: stderr: {}", self.status, self.stderr);
        &self.stdout
    }

    /// Asserts success and parses stdout as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `herald ARGS` with a clean environment pointed at `server` via `HERALD_URL` and
/// `HERALD_TOKEN` (unless `token` is `None`), feeding `stdin` when given.
pub(crate) async fn herald_with(
    server: Option<&TestServer>,
    token: Option<&str>,
    args: &[&str],
    stdin: Option<&str>,
) -> Finished {
    let dir = tempfile::tempdir().expect("tempdir");
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HERALD_") {
            command.env_remove(name);
        }
    }
    if let Some(server) = server {
        command.env("HERALD_URL", server.url(""));
    }
    if let Some(token) = token {
        command.env("HERALD_TOKEN", token);
    }
    // A home of its own, so a developer's ~/.config/herald/client.toml can't leak in.
    command.env("HOME", dir.path());
    command
        .args(args)
        .current_dir(dir.path())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&stderr_path).expect("stderr file"));
    let mut child = command.spawn().expect("spawn herald");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("herald {args:?} did not exit within {BOUND:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Finished {
        status,
        stdout: std::fs::read_to_string(stdout_path).expect("read stdout"),
        stderr: std::fs::read_to_string(stderr_path).expect("read stderr"),
    }
}

async fn herald(server: &TestServer, args: &[&str]) -> Finished {
    herald_with(Some(server), Some(ADMIN_TOKEN), args, None).await
}

#[tokio::test]
async fn applications_can_be_created_listed_shown_updated_and_deleted() {
    let server = TestServer::start().await;
    let created =
        herald(&server, &["app", "create", "--name", "Acme Billing", "--uid", "acme", "--json"]).await.json();
    assert_eq!(created["name"], "Acme Billing");
    assert_eq!(created["uid"], "acme");
    let id = created["id"].as_str().expect("an id").to_owned();

    let table = herald(&server, &["app", "list"]).await;
    assert!(table.ok().contains("Acme Billing") && table.ok().contains(&id), "{}", table.stdout);
    assert!(table.ok().starts_with("ID"), "a header row: {}", table.stdout);

    let listed = herald(&server, &["app", "list", "--json"]).await.json();
    assert_eq!(listed["data"][0]["id"], id.as_str());

    let shown = herald(&server, &["app", "get", "acme", "--json"]).await.json();
    assert_eq!(shown["id"], id.as_str());
    assert!(herald(&server, &["app", "get", &id]).await.ok().contains("Acme Billing"));

    let updated = herald(&server, &["app", "update", &id, "--name", "Acme Invoices", "--json"]).await.json();
    assert_eq!(updated["name"], "Acme Invoices");

    assert!(herald(&server, &["app", "delete", &id]).await.ok().contains("Deleted"));
    let gone = herald(&server, &["app", "get", &id]).await;
    assert_eq!(gone.code(), 1);
    assert!(gone.stderr.starts_with("error: application_not_found: "), "{}", gone.stderr);
}

#[tokio::test]
async fn event_types_can_be_created_listed_and_deleted() {
    let server = TestServer::start().await;
    let created = herald(
        &server,
        &["event-type", "create", "invoice.paid", "--description", "An invoice was paid", "--json"],
    )
    .await
    .json();
    assert_eq!(created["name"], "invoice.paid");
    let table = herald(&server, &["event-type", "list"]).await;
    assert!(
        table.ok().contains("invoice.paid") && table.ok().contains("An invoice was paid"),
        "{}",
        table.stdout
    );
    let listed = herald(&server, &["event-type", "list", "--json"]).await.json();
    assert_eq!(listed["data"][0]["name"], "invoice.paid");
    let shown = herald(&server, &["event-type", "get", "invoice.paid"]).await;
    assert!(shown.ok().contains("An invoice was paid"), "{}", shown.stdout);
    let updated =
        herald(&server, &["event-type", "update", "invoice.paid", "--description", "Paid in full", "--json"])
            .await
            .json();
    assert_eq!(updated["description"], "Paid in full");
    let nothing = herald(&server, &["event-type", "update", "invoice.paid"]).await;
    assert_eq!(nothing.code(), 1);
    assert!(nothing.stderr.contains("nothing to change"), "{}", nothing.stderr);
    assert!(herald(&server, &["event-type", "delete", "invoice.paid"]).await.ok().contains("Deleted"));
    let archived = herald(&server, &["event-type", "get", "invoice.paid", "--json"]).await.json();
    assert_eq!(archived["archived"], true);
    let back =
        herald(&server, &["event-type", "update", "invoice.paid", "--unarchive", "--json"]).await.json();
    assert_eq!(back["archived"], false);
}

#[tokio::test]
async fn lists_page_with_the_iterator_they_print() {
    let server = TestServer::start().await;
    for name in ["a.one", "b.two", "c.three"] {
        server.create_event_type(name).await;
    }
    let first = herald(&server, &["event-type", "list", "--limit", "2"]).await;
    let more =
        first.ok().lines().find_map(|line| line.strip_prefix("More: add --iterator ")).map(str::to_owned);
    let iterator =
        more.unwrap_or_else(|| panic!("the first page says how to read the next: {}", first.stdout));
    assert!(first.ok().contains("a.one") && first.ok().contains("b.two") && !first.ok().contains("c.three"));
    let second = herald(&server, &["event-type", "list", "--limit", "2", "--iterator", &iterator]).await;
    assert!(second.ok().contains("c.three") && !second.ok().contains("a.one"), "{}", second.stdout);
    assert!(!second.ok().contains("More:"), "the last page has no next: {}", second.stdout);
}

#[tokio::test]
async fn endpoints_messages_and_attempts_flow_through_the_client() {
    let server = TestServer::start().await;
    server.create_event_type("invoice.paid").await;
    let app = server.create_app("Shop", Some("shop")).await;

    let endpoint = herald(
        &server,
        &[
            "endpoint",
            "create",
            "shop",
            "--endpoint-url",
            "http://127.0.0.1:9/hook",
            "--event-type",
            "invoice.paid",
            "--bearer-token",
            "tok_123",
            "--json",
        ],
    )
    .await
    .json();
    assert_eq!(endpoint["url"], "http://127.0.0.1:9/hook");
    assert_eq!(endpoint["eventTypes"][0], "invoice.paid");
    assert_eq!(endpoint["hasBearerToken"], true);
    let ep = endpoint["id"].as_str().expect("an id").to_owned();

    let table = herald(&server, &["endpoint", "list", &app]).await;
    assert!(table.ok().contains(&ep) && table.ok().contains("http://127.0.0.1:9/hook"), "{}", table.stdout);
    assert_eq!(
        herald(&server, &["endpoint", "list", "shop", "--json"]).await.json()["data"][0]["id"],
        ep.as_str()
    );
    assert_eq!(herald(&server, &["endpoint", "get", "shop", &ep, "--json"]).await.json()["id"], ep.as_str());

    let secret = herald(&server, &["endpoint", "secret", "shop", &ep]).await.ok().trim().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let rotated = herald(&server, &["endpoint", "rotate-secret", "shop", &ep]).await.ok().trim().to_owned();
    assert!(rotated.starts_with("whsec_") && rotated != secret, "{rotated}");
    let secret_json = herald(&server, &["endpoint", "secret", "shop", &ep, "--json"]).await.json();
    assert_eq!(secret_json["key"], rotated.as_str());

    // The payload comes from stdin when --payload is absent.
    let sent = herald_with(
        Some(&server),
        Some(ADMIN_TOKEN),
        &["send", "shop", "--event-type", "invoice.paid", "--event-id", "evt_1", "--json"],
        Some(r#"{"invoice": 42}"#),
    )
    .await
    .json();
    assert_eq!(sent["eventType"], "invoice.paid");
    assert_eq!(sent["eventId"], "evt_1");
    assert_eq!(sent["payload"]["invoice"], 42);
    let msg = sent["id"].as_str().expect("an id").to_owned();
    let sent_flag =
        herald(&server, &["send", &app, "--event-type", "invoice.paid", "--payload", r#"{"n": 2}"#]).await;
    assert!(sent_flag.ok().contains("invoice.paid"), "{}", sent_flag.stdout);

    let messages = herald(&server, &["message", "list", "shop", "--json"]).await.json();
    assert_eq!(messages["data"].as_array().expect("a data array").len(), 2);
    let table = herald(&server, &["message", "list", "shop"]).await;
    assert!(table.ok().contains(&msg), "{}", table.stdout);
    let shown = herald(&server, &["message", "get", "shop", &msg]).await;
    assert!(shown.ok().contains(r#""invoice":42"#) || shown.ok().contains("42"), "{}", shown.stdout);
    assert_eq!(herald(&server, &["message", "get", "shop", &msg, "--json"]).await.json()["id"], msg.as_str());

    let by_message = herald(&server, &["attempt", "list", "shop", "--msg", &msg, "--json"]).await.json();
    assert!(by_message["data"].is_array(), "{by_message}");
    let by_endpoint = herald(&server, &["attempt", "list", "shop", "--endpoint", &ep, "--json"]).await.json();
    assert!(by_endpoint["data"].is_array(), "{by_endpoint}");
    assert!(herald(&server, &["attempt", "list", "shop", "--msg", &msg]).await.ok().starts_with("ID"));
    let resend = herald(&server, &["attempt", "resend", "shop", &msg, &ep]).await;
    assert!(resend.ok().contains("Resending"), "{}", resend.stdout);

    let recover =
        herald(&server, &["endpoint", "recover", "shop", &ep, "--since", "2020-01-01T00:00:00Z", "--json"])
            .await
            .json();
    assert!(recover["id"].is_string(), "{recover}");

    let updated = herald(
        &server,
        &[
            "endpoint",
            "update",
            "shop",
            &ep,
            "--description",
            "billing",
            "--disable",
            "--all-event-types",
            "--json",
        ],
    )
    .await
    .json();
    assert_eq!(updated["description"], "billing");
    assert_eq!(updated["disabled"], true);
    assert!(updated["eventTypes"].is_null() || updated.get("eventTypes").is_none(), "{updated}");
    assert_eq!(updated["url"], "http://127.0.0.1:9/hook", "what was not given is unchanged");
    let enabled = herald(&server, &["endpoint", "update", "shop", &ep, "--enable", "--json"]).await.json();
    assert_eq!(enabled["disabled"], false);

    assert!(herald(&server, &["endpoint", "delete", "shop", &ep]).await.ok().contains("Deleted"));
    assert_eq!(herald(&server, &["endpoint", "get", "shop", &ep]).await.code(), 1);
}

#[tokio::test]
async fn server_errors_are_shown_with_their_code_and_a_failing_exit_status() {
    let server = TestServer::start().await;

    let unknown = herald(&server, &["app", "get", "app_doesnotexist"]).await;
    assert_eq!(unknown.code(), 1);
    assert!(unknown.stderr.starts_with("error: application_not_found: "), "{}", unknown.stderr);
    assert!(unknown.stdout.is_empty());

    server.create_app("Shop", Some("shop")).await;
    let invalid = herald(&server, &["endpoint", "create", "shop", "--endpoint-url", "not a url"]).await;
    assert_eq!(invalid.code(), 1);
    assert!(invalid.stderr.starts_with("error: validation_error: "), "{}", invalid.stderr);
    assert!(invalid.stderr.contains("body.url: "), "names the field: {}", invalid.stderr);

    // Saved, with the server's warning on stderr: the SSRF guard will refuse this address.
    let warned =
        herald(&server, &["endpoint", "create", "shop", "--endpoint-url", "http://10.0.0.1/hooks"]).await;
    assert_eq!(warned.code(), 0, "{}", warned.stderr);
    assert!(
        warned.stderr.starts_with("warning: deliveries to this URL will be refused: "),
        "{}",
        warned.stderr
    );
    assert!(warned.stderr.contains("private"), "{}", warned.stderr);

    let no_token = herald_with(Some(&server), None, &["app", "list"], None).await;
    assert_eq!(no_token.code(), 1);
    assert!(no_token.stderr.starts_with("error: authentication_failed: "), "{}", no_token.stderr);
    assert!(no_token.stderr.contains("set HERALD_TOKEN"), "says how to give one: {}", no_token.stderr);
    let flags =
        herald_with(None, None, &["app", "list", "--url", &server.url(""), "--token", "sk_wrong"], None)
            .await;
    assert_eq!(flags.code(), 1);
    assert!(flags.stderr.starts_with("error: authentication_failed: "), "{}", flags.stderr);
    assert!(!flags.stderr.contains("HERALD_TOKEN"), "a wrong token is not a missing one: {}", flags.stderr);

    let bad_json = herald(&server, &["send", "shop", "--event-type", "x", "--payload", "{nope"]).await;
    assert_eq!(bad_json.code(), 1);
    assert!(bad_json.stderr.contains("not valid JSON"), "{}", bad_json.stderr);

    let usage = herald(&server, &["attempt", "list", "shop"]).await;
    assert_eq!(usage.code(), 2, "a usage error: {}", usage.stderr);
}

#[tokio::test]
async fn an_unreachable_server_is_named() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("local addr")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let down = herald_with(None, Some(ADMIN_TOKEN), &["app", "list", "--url", &url], None).await;
    assert_eq!(down.code(), 1);
    assert!(down.stderr.contains(&format!("could not reach the Herald server at {url}")), "{}", down.stderr);
}

#[tokio::test]
async fn a_url_without_a_scheme_suggests_http() {
    for url in ["127.0.0.1:8040", "localhost:8040"] {
        let bad = herald_with(None, Some(ADMIN_TOKEN), &["app", "list", "--url", url], None).await;
        assert_eq!(bad.code(), 1);
        assert!(bad.stderr.contains(&format!("did you mean http://{url}?")), "{}", bad.stderr);
    }
}

#[tokio::test]
async fn send_posts_the_payload_bytes_as_given() {
    let server = TestServer::start().await;
    server.create_app("Shop", Some("shop")).await;
    server.create_event_type("invoice.paid").await;
    // Key order, spacing and number spelling a re-serialisation would change.
    let payload = r#"{"z": 1, "a": 2.50, "big": 12345678901234567890}"#;
    let sent = herald_with(
        Some(&server),
        Some(ADMIN_TOKEN),
        &["send", "shop", "--event-type", "invoice.paid", "--json"],
        Some(&format!("{payload}\n")),
    )
    .await
    .json();
    let id = sent["id"].as_str().expect("an id");
    let stored = server
        .client
        .get(server.url(&format!("/api/v1/app/shop/msg/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("GET the message")
        .text()
        .await
        .expect("a body");
    assert!(stored.contains(&format!(r#""payload":{payload}"#)), "{stored}");
}

#[tokio::test]
async fn verify_accepts_a_signed_webhook_and_names_why_a_bad_one_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let headers = dir.path().join("headers");
    let body = dir.path().join("body");
    std::fs::write(&body, r#"{"test": 2432232314}"#).expect("write a file");
    // The Standard Webhooks example, checked without the replay window (it is from 2021).
    std::fs::write(
        &headers,
        "webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek\nwebhook-timestamp: 1614265330\n\
         webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\n",
    )
    .expect("write a file");
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (headers, body) = (headers.to_str().expect("UTF-8 path"), body.to_str().expect("UTF-8 path"));
    let args = ["verify", "--secret", secret, "--headers", headers, "--body", body];

    let valid = herald_with(None, None, &[&args[..], &["--ignore-timestamp"]].concat(), None).await;
    assert!(valid.ok().starts_with("valid"), "{}", valid.stdout);

    let too_old = herald_with(None, None, &args, None).await;
    assert_eq!(too_old.code(), 1);
    assert!(too_old.stderr.contains("timestamp_too_old"), "{}", too_old.stderr);

    let wrong = [
        "verify",
        "--secret",
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "--headers",
        headers,
        "--body",
        body,
    ];
    let wrong = herald_with(None, None, &[&wrong[..], &["--ignore-timestamp"]].concat(), None).await;
    assert_eq!(wrong.code(), 1);
    assert!(wrong.stderr.contains("no_matching_signature"), "{}", wrong.stderr);

    // From a `herald listen` store: an unknown id and an empty store are named.
    let store = dir.path().join("received.jsonl");
    std::fs::write(&store, "").expect("write a file");
    let store = store.to_str().expect("UTF-8 path");
    let empty = herald_with(None, None, &["verify", "--secret", secret, "--stored", store], None).await;
    assert_eq!(empty.code(), 1);
    assert!(empty.stderr.contains("holds no webhook yet"), "{}", empty.stderr);
    let args = ["verify", "--secret", secret, "--stored", store, "--id", "msg_nope"];
    let unknown = herald_with(None, None, &args, None).await;
    assert!(unknown.stderr.contains("no webhook with id msg_nope"), "{}", unknown.stderr);
    let both =
        herald_with(None, None, &["verify", "--secret", secret, "--stored", store, "--body", body], None)
            .await;
    assert_eq!(both.code(), 2, "clap refuses --stored with --body: {}", both.stderr);
}

#[tokio::test]
async fn a_client_configuration_file_supplies_the_server_and_token() {
    let server = TestServer::start().await;
    server.create_app("Configured", Some("configured")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("client.toml");
    std::fs::write(&file, format!("url = \"{}\"\ntoken = \"{}\"\n", server.url(""), ADMIN_TOKEN))
        .expect("write");
    let path = file.display().to_string();
    let listed = herald_with(None, None, &["app", "list", "--json", "--client-config", &path], None).await;
    assert!(listed.status.success(), "{}", listed.stderr);
    assert!(listed.stdout.contains("configured"), "{}", listed.stdout);

    // Flags win over the file: a wrong token given on the command line is what is used.
    let overridden = herald_with(
        None,
        None,
        &["app", "list", "--client-config", &path, "--token", "sk_wrong_token_0000"],
        None,
    )
    .await;
    assert_eq!(overridden.status.code(), Some(1));
    assert!(overridden.stderr.contains("authentication_failed"), "{}", overridden.stderr);

    std::fs::write(&file, "url = \"http://127.0.0.1:1\"\ntoken = \"sk_secret_value\n").expect("write");
    let broken = herald_with(None, None, &["app", "list", "--client-config", &path], None).await;
    assert!(!broken.status.success());
    assert!(broken.stderr.contains("not a valid client configuration"), "{}", broken.stderr);
    assert!(!broken.stderr.contains("sk_secret_value"), "the token never appears in an error");
}

#[tokio::test]
async fn endpoint_test_sends_every_subscribed_event_type_and_reports_the_one_that_fails() {
    let server = TestServer::start().await;
    let receiver = crate::receiver::Receiver::start().await;
    for name in ["order.paid", "order.refunded", "not.subscribed"] {
        server.create_event_type(name).await;
    }
    server.create_app("Shop", Some("shop")).await;
    let endpoint = server
        .post(
            "/api/v1/app/shop/endpoint",
            serde_json::json!({"url": receiver.url("/hooks"), "uid": "main", "eventTypes": ["order.paid", "order.refunded"]}),
        )
        .await;
    assert_eq!(endpoint.status, reqwest::StatusCode::CREATED, "{:?}", endpoint.body);
    // Refunds go to a path the receiver fails.
    let code = "function handler(w) { if (w.eventType === 'order.refunded') { w.url = w.url + '/refunds'; } return w; }";
    server
        .patch(
            "/api/v1/app/shop/endpoint/main/transformation",
            serde_json::json!({"code": code, "enabled": true}),
        )
        .await;
    receiver.fail_at("/hooks/refunds", "refunds are not handled here");

    let finished = herald(&server, &["endpoint", "test", "shop", "main", "--wait", "10s"]).await;
    assert_eq!(finished.code(), 1, "stdout: {} stderr: {}", finished.stdout, finished.stderr);
    let rows: Vec<&str> = finished.stdout.lines().collect();
    assert!(rows[0].starts_with("EVENT TYPE"), "{}", finished.stdout);
    let paid = rows.iter().find(|r| r.starts_with("order.paid")).expect("a row for order.paid");
    let refunded = rows.iter().find(|r| r.starts_with("order.refunded")).expect("a row for order.refunded");
    assert!(paid.contains(" ok ") && paid.contains("200"), "{paid}");
    assert!(
        refunded.contains("failed")
            && refunded.contains("500")
            && refunded.contains("refunds are not handled"),
        "{refunded}"
    );
    assert!(!finished.stdout.contains("not.subscribed"));
    assert!(finished.stderr.contains("1 of 2 event types"), "{}", finished.stderr);
    assert_eq!(receiver.count(), 2, "one example per subscribed event type");

    // Fixed: the same command passes.
    server
        .patch("/api/v1/app/shop/endpoint/main/transformation", serde_json::json!({"enabled": false}))
        .await;
    let report = herald(&server, &["endpoint", "test", "shop", "main", "--json"]).await.json();
    assert_eq!(report.as_array().expect("a list").iter().filter(|r| r["ok"] == true).count(), 2, "{report}");
}
