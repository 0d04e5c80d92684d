//! Payload versions and transformations over HTTP: a pinned endpoint receives each message
//! converted down to its version while an unpinned one receives what was published; an
//! endpoint's transformation changes what is sent (payload, URL, method) or cancels it; a
//! script that does not compile is refused with its line, and one that loops, exhausts
//! memory or throws ends its delivery as failed, said so in the attempt, without a request.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use herald_core::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestServer, assert_validation};
use crate::receiver::Receiver;

/// Renames `total` (version 2) back to `amount` (version 1).
const TWO_TO_ONE: &str = "function convert(p) {\n  p.amount = p.total;\n  delete p.total;\n  return p;\n}";
/// Splits `name` (version 3) back into `first` and `last` (version 2).
const THREE_TO_TWO: &str = "function convert(p) { var parts = p.name.split(' '); p.first = parts[0]; p.last = parts[1]; delete p.name; return p; }";

async fn stepped_server() -> TestServer {
    stepped_server_with(Vec::new()).await
}

async fn stepped_server_with(mut env: Vec<(&'static str, String)>) -> TestServer {
    let clock = Arc::new(ManualClock::starting_now());
    env.push(("HERALD_RETRY_SCHEDULE", "1m".to_owned()));
    TestServer::start_with(Options { clock: Some(clock), stepped: true, env, ..Options::default() }).await
}

async fn endpoint(server: &TestServer, receiver: &Receiver, path: &str, extra: Value) -> String {
    let mut body = json!({"url": receiver.url(path)});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let reply = server.post("/api/v1/app/acme/endpoint", body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

fn body_at(receiver: &Receiver, path: &str) -> Vec<(Value, String)> {
    receiver
        .received()
        .iter()
        .filter(|r| r.path == path)
        .map(|r| (serde_json::from_slice(&r.body).unwrap(), r.header("herald-payload-version").to_owned()))
        .collect()
}

#[tokio::test]
async fn a_pinned_endpoint_receives_the_payload_converted_down_and_an_unpinned_one_what_was_published() {
    let server = stepped_server().await;
    let receiver = Receiver::start().await;
    let created = server
        .post(
            "/api/v1/event-type",
            json!({"name": "order.paid", "description": "paid",
                   "schemas": {"1": {"type": "object"}, "2": {"type": "object"}, "3": {"type": "object"}},
                   "converters": {"2": TWO_TO_ONE, "3": THREE_TO_TWO}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["converters"]["2"], TWO_TO_ONE);
    server.create_app("Acme", Some("acme")).await;
    endpoint(&server, &receiver, "/latest", json!({})).await;
    let pinned = endpoint(&server, &receiver, "/v1", json!({"payloadVersion": "1"})).await;
    endpoint(&server, &receiver, "/v2", json!({"payloadVersion": "2"})).await;
    assert_eq!(server.get(&format!("/api/v1/app/acme/endpoint/{pinned}")).await.body["payloadVersion"], "1");

    // Published without a version: the latest of the event type's schemas, 3.
    let sent = server
        .post(
            "/api/v1/app/acme/msg",
            json!({"eventType": "order.paid", "payload": {"name": "Ada Lovelace", "total": 12}}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{:?}", sent.body);
    assert_eq!(sent.body["payloadVersion"], "3");
    assert_eq!(server.step().await.leased, 3);

    assert_eq!(
        body_at(&receiver, "/latest"),
        vec![(json!({"name": "Ada Lovelace", "total": 12}), "3".to_owned())]
    );
    assert_eq!(
        body_at(&receiver, "/v2"),
        vec![(json!({"total": 12, "first": "Ada", "last": "Lovelace"}), "2".to_owned())]
    );
    assert_eq!(
        body_at(&receiver, "/v1"),
        vec![(json!({"amount": 12, "first": "Ada", "last": "Lovelace"}), "1".to_owned())]
    );
    // The signature covers the converted bytes.
    let endpoint_secret = server.get(&format!("/api/v1/app/acme/endpoint/{pinned}/secret")).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let v1 = receiver.received().into_iter().find(|r| r.path == "/v1").unwrap();
    svix::webhooks::Webhook::new(&endpoint_secret).unwrap().verify(&v1.body, &v1.headers).unwrap();

    // Published at version 1 explicitly: nothing to convert for anyone.
    let old = server
        .post(
            "/api/v1/app/acme/msg",
            json!({"eventType": "order.paid", "payloadVersion": "1", "payload": {"amount": 5}}),
        )
        .await;
    assert_eq!(old.body["payloadVersion"], "1");
    assert_eq!(server.step().await.leased, 3);
    assert_eq!(body_at(&receiver, "/v2")[1], (json!({"amount": 5}), "1".to_owned()));

    // The customer moves the pin when ready.
    let moved =
        server.patch(&format!("/api/v1/app/acme/endpoint/{pinned}"), json!({"payloadVersion": "3"})).await;
    assert_eq!(moved.body["payloadVersion"], "3");
    server
        .post(
            "/api/v1/app/acme/msg",
            json!({"eventType": "order.paid", "payload": {"name": "A B", "total": 1}}),
        )
        .await;
    server.step().await;
    assert_eq!(body_at(&receiver, "/v1")[2], (json!({"name": "A B", "total": 1}), "3".to_owned()));
}

#[tokio::test]
async fn bad_versions_and_converters_are_refused_with_what_is_wrong() {
    let server = TestServer::start().await;
    let syntax = server
        .post(
            "/api/v1/event-type",
            json!({"name": "a.b", "description": "x", "converters": {"2": "function convert(p) {\n  return p;\n}}"}}),
        )
        .await;
    assert_eq!(assert_validation(&syntax), vec!["body.converters.2"]);
    let message = syntax.body["detail"][0]["msg"].as_str().unwrap();
    assert!(message.contains("line 3") && message.contains("SyntaxError"), "{message}");
    assert_eq!(syntax.body["detail"][0]["type"], "script_does_not_compile");

    let missing = server
        .post("/api/v1/event-type", json!({"name": "a.b", "description": "x", "converters": {"2": "function other(p) { return p; }"}}))
        .await;
    assert!(assert_validation(&missing) == vec!["body.converters.2"]);
    for key in ["1", "0", "x", "10000"] {
        let reply = server
            .post(
                "/api/v1/event-type",
                json!({"name": "a.b", "description": "x", "converters": {key: TWO_TO_ONE}}),
            )
            .await;
        assert_eq!(assert_validation(&reply), vec!["body.converters"], "{key}");
    }
    let too_long = format!("{TWO_TO_ONE}//{}", "x".repeat(herald_script::MAX_SOURCE_BYTES));
    let reply = server
        .post("/api/v1/event-type", json!({"name": "a.b", "description": "x", "converters": {"2": too_long}}))
        .await;
    assert_eq!(assert_validation(&reply), vec!["body.converters"]);

    server.create_app("Acme", Some("acme")).await;
    for bad in ["0", "v1", "", "1.5"] {
        let reply = server
            .post("/api/v1/app/acme/endpoint", json!({"url": "https://example.com/", "payloadVersion": bad}))
            .await;
        assert_eq!(assert_validation(&reply), vec!["body.payloadVersion"], "{bad}");
        let reply = server
            .post("/api/v1/app/acme/msg", json!({"eventType": "a.b", "payload": {}, "payloadVersion": bad}))
            .await;
        assert_eq!(assert_validation(&reply), vec!["body.payloadVersion"], "{bad}");
    }
}

#[tokio::test]
async fn a_missing_converter_fails_the_delivery_and_says_which_step() {
    let server = stepped_server().await;
    let receiver = Receiver::start().await;
    server
        .post(
            "/api/v1/event-type",
            json!({"name": "order.paid", "description": "x", "schemas": {"1": {}, "2": {}}}),
        )
        .await;
    server.create_app("Acme", Some("acme")).await;
    endpoint(&server, &receiver, "/v1", json!({"payloadVersion": "1"})).await;
    let sent = server
        .post("/api/v1/app/acme/msg", json!({"eventType": "order.paid", "payload": {"total": 1}}))
        .await;
    assert_eq!(server.step().await.leased, 1);
    assert_eq!(receiver.count(), 0, "nothing is sent that the endpoint cannot read");
    let attempts =
        server.get(&format!("/api/v1/app/acme/attempt/msg/{}", sent.body["id"].as_str().unwrap())).await;
    let attempt = &attempts.body["data"][0];
    assert_eq!(attempt["status"], 2);
    assert!(attempt["response"].as_str().unwrap().contains("no converter from version 2 to 1"), "{attempt}");
    server.advance(chrono::Duration::hours(1));
    assert_eq!(server.step().await.leased, 0, "not retried: it would fail the same way");
}

#[tokio::test]
async fn a_transformation_changes_the_payload_url_and_method_and_can_cancel() {
    let server = stepped_server().await;
    let receiver = Receiver::start().await;
    server.create_app("Acme", Some("acme")).await;
    let id = endpoint(&server, &receiver, "/hooks", json!({})).await;
    let path = format!("/api/v1/app/acme/endpoint/{id}/transformation");
    assert_eq!(server.get(&path).await.body, json!({"code": null, "enabled": false, "updatedAt": null}));
    let code = format!(
        "function handler(webhook) {{\n  if (webhook.payload.skip) {{ webhook.cancel = true; return webhook; }}\n  \
         webhook.payload = {{ kind: webhook.eventType, amount: webhook.payload.total }};\n  \
         webhook.url = '{}';\n  webhook.method = 'PUT';\n  return webhook;\n}}",
        receiver.url("/elsewhere")
    );
    let set = server.patch(&path, json!({"code": code, "enabled": true})).await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{:?}", set.body);
    let got = server.get(&path).await.body;
    assert_eq!((got["code"].as_str().unwrap(), got["enabled"].clone()), (code.as_str(), json!(true)));

    server.post("/api/v1/app/acme/msg", json!({"eventType": "order.paid", "payload": {"total": 7}})).await;
    let skipped = server
        .post("/api/v1/app/acme/msg", json!({"eventType": "order.paid", "payload": {"skip": true}}))
        .await;
    assert_eq!(server.step().await.leased, 2);
    let received = receiver.received();
    assert_eq!(received.len(), 1, "the cancelled one is not sent");
    assert_eq!((received[0].path.as_str(), received[0].method.as_str()), ("/elsewhere", "PUT"));
    assert_eq!(
        serde_json::from_slice::<Value>(&received[0].body).unwrap(),
        json!({"kind": "order.paid", "amount": 7})
    );
    let secret = server.get(&format!("/api/v1/app/acme/endpoint/{id}/secret")).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    svix::webhooks::Webhook::new(&secret).unwrap().verify(&received[0].body, &received[0].headers).unwrap();

    // The cancelled delivery is recorded as such, and as done, not failed.
    let attempts =
        server.get(&format!("/api/v1/app/acme/attempt/msg/{}", skipped.body["id"].as_str().unwrap())).await;
    let attempt = &attempts.body["data"][0];
    assert_eq!(attempt["status"], 0, "{attempt}");
    assert!(attempt["response"].as_str().unwrap().contains("cancelled"), "{attempt}");

    // Disabled: deliveries go out untouched again.
    server.patch(&path, json!({"enabled": false})).await;
    server.post("/api/v1/app/acme/msg", json!({"eventType": "order.paid", "payload": {"total": 8}})).await;
    server.step().await;
    let last = receiver.received().pop().unwrap();
    assert_eq!((last.path.as_str(), last.method.as_str()), ("/hooks", "POST"));
    assert_eq!(serde_json::from_slice::<Value>(&last.body).unwrap(), json!({"total": 8}));
}

#[tokio::test]
async fn simulate_returns_what_would_be_sent_without_sending() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.create_app("Acme", Some("acme")).await;
    let id = endpoint(&server, &receiver, "/hooks", json!({})).await;
    let simulate = format!("/api/v1/app/acme/endpoint/{id}/transformation/simulate");
    let reply = server
        .post(
            &simulate,
            json!({"code": "function handler(w) { w.payload.seen = w.eventType; w.method = 'PATCH'; return w; }",
                   "eventType": "order.paid", "payload": {"a": 1}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(
        (reply.body["url"].as_str().unwrap(), reply.body["method"].clone(), reply.body["cancel"].clone()),
        (receiver.url("/hooks").as_str(), json!("PATCH"), json!(false))
    );
    assert_eq!(
        serde_json::from_str::<Value>(reply.body["payload"].as_str().unwrap()).unwrap(),
        json!({"a": 1, "seen": "order.paid"})
    );
    assert_eq!(receiver.count(), 0);

    let throws = server
        .post(&simulate, json!({"code": "function handler(w) { throw new Error('nope'); }", "eventType": "a", "payload": {}}))
        .await;
    assert_eq!(throws.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", throws.body);
    assert!(throws.body["detail"].as_str().unwrap().contains("Error: nope"), "{:?}", throws.body);
    let syntax = server
        .post(&simulate, json!({"code": "function handler(w) {", "eventType": "a", "payload": {}}))
        .await;
    assert_eq!(assert_validation(&syntax), vec!["body.code"]);
    let variables = server
        .post(&simulate, json!({"code": "function handler(w) { return w; }", "eventType": "a", "payload": {}, "variables": {"k": "v"}}))
        .await;
    assert_eq!(assert_validation(&variables), vec!["body.variables"]);
}

#[tokio::test]
async fn a_looping_memory_hungry_or_throwing_transformation_fails_its_delivery_and_says_why() {
    // The smallest memory limit, and time enough to reach it on a busy machine.
    let server = stepped_server_with(vec![
        ("HERALD_SCRIPT_MEMORY_LIMIT", "1048576".to_owned()),
        ("HERALD_SCRIPT_TIME_LIMIT", "1s".to_owned()),
    ])
    .await;
    let receiver = Receiver::start().await;
    server.create_app("Acme", Some("acme")).await;
    let cases = [
        ("function handler(w) { while (true) {} }", "time limit"),
        (
            "function handler(w) { var a = []; for (;;) { a.push('x'.repeat(65536) + a.length); } }",
            "memory limit",
        ),
        (
            "function handler(w) {\n  throw new TypeError('bad payload');\n}",
            "TypeError: bad payload (line 2)",
        ),
        ("function handler(w) { return 42; }", "unusable: not an object"),
        ("function handler(w) { return { url: w.url }; }", "an object without `payload`"),
    ];
    let mut ids = Vec::new();
    for (code, _) in &cases {
        let id = endpoint(&server, &receiver, "/hooks", json!({})).await;
        let reply = server
            .patch(
                &format!("/api/v1/app/acme/endpoint/{id}/transformation"),
                json!({"code": code, "enabled": true}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{code}: {:?}", reply.body);
        ids.push(id);
    }
    let sent =
        server.post("/api/v1/app/acme/msg", json!({"eventType": "order.paid", "payload": {"a": 1}})).await;
    assert_eq!(server.step().await.leased, cases.len());
    assert_eq!(receiver.count(), 0);
    let msg = sent.body["id"].as_str().unwrap();
    for ((_, expected), id) in cases.iter().zip(&ids) {
        let attempts = server.get(&format!("/api/v1/app/acme/attempt/endpoint/{id}?msg_id={msg}")).await;
        let attempt = &attempts.body["data"][0];
        assert_eq!(attempt["status"], 2, "{attempt}");
        let response = attempt["response"].as_str().unwrap();
        assert!(
            response.contains("transformation failed") && response.contains(expected),
            "{expected}: {response}"
        );
    }
    server.advance(chrono::Duration::hours(1));
    assert_eq!(server.step().await.leased, 0, "not retried");
}

#[tokio::test]
async fn transformation_code_is_checked_before_it_is_kept() {
    let server = TestServer::start().await;
    server.create_app("Acme", Some("acme")).await;
    let id =
        server.post("/api/v1/app/acme/endpoint", json!({"url": "https://example.com/"})).await.body["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let path = format!("/api/v1/app/acme/endpoint/{id}/transformation");
    let reply = server
        .patch(&path, json!({"code": "function handler(w) {\n  return w\n  }}", "enabled": true}))
        .await;
    assert_eq!(assert_validation(&reply), vec!["body.code"]);
    assert!(reply.body["detail"][0]["msg"].as_str().unwrap().contains("line 3"), "{:?}", reply.body);
    for bad in [
        "short",
        &format!("function handler(w) {{ return w; }}//{}", "x".repeat(herald_script::MAX_SOURCE_BYTES)),
    ] {
        assert_eq!(assert_validation(&server.patch(&path, json!({"code": bad})).await), vec!["body.code"]);
    }
    assert_eq!(server.get(&path).await.body["code"], Value::Null, "nothing was kept");
    let missing =
        server.patch("/api/v1/app/acme/endpoint/ep_missing/transformation", json!({"enabled": true})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn with_validation_a_payload_that_breaks_its_versions_schema_is_refused_with_each_violation() {
    let server = TestServer::start().await;
    let schemas = json!({
        "1": {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "integer"}}},
        "2": {"type": "object", "required": ["total"], "additionalProperties": false,
              "properties": {"total": {"type": "integer", "minimum": 0},
                             "lines": {"type": "array", "items": {"type": "object", "required": ["sku"]}}}}
    });
    let created = server
        .post(
            "/api/v1/event-type",
            json!({"name": "order.paid", "description": "x", "schemas": schemas, "validatePayloads": true}),
        )
        .await;
    assert_eq!(created.body["validatePayloads"], true, "{:?}", created.body);
    server.create_app("Acme", Some("acme")).await;

    let bad = server
        .post(
            "/api/v1/app/acme/msg",
            json!({"eventType": "order.paid", "payload": {"total": -1, "lines": [{}], "x": 1}}),
        )
        .await;
    let mut paths = assert_validation(&bad);
    paths.sort();
    assert_eq!(paths, vec!["body.payload.lines.0", "body.payload.total", "body.payload.x"]);
    assert!(
        bad.body["detail"].as_array().unwrap().iter().all(|d| d["type"] == "payload_does_not_match_schema")
    );
    // Each payload is checked against its own version's schema.
    let old = server
        .post(
            "/api/v1/app/acme/msg",
            json!({"eventType": "order.paid", "payloadVersion": "1", "payload": {"amount": 3}}),
        )
        .await;
    assert_eq!(old.status, StatusCode::ACCEPTED, "{:?}", old.body);
    let good = server
        .post("/api/v1/app/acme/msg", json!({"eventType": "order.paid", "payload": {"total": 3}}))
        .await;
    assert_eq!(good.status, StatusCode::ACCEPTED, "{:?}", good.body);
    let unknown = server
        .post(
            "/api/v1/app/acme/msg",
            json!({"eventType": "order.paid", "payloadVersion": "7", "payload": {}}),
        )
        .await;
    assert_eq!(assert_validation(&unknown), vec!["body.payloadVersion"]);

    // Turned off: accepted as before (a change through this node is seen at once).
    server.patch("/api/v1/event-type/order.paid", json!({"validatePayloads": false})).await;
    let accepted = server
        .post("/api/v1/app/acme/msg", json!({"eventType": "order.paid", "payload": {"total": -1}}))
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
}

#[tokio::test]
async fn the_organisation_can_check_every_event_types_payloads() {
    let server = TestServer::start_with(Options {
        env: vec![("HERALD_VALIDATE_PAYLOADS", "true".to_owned())],
        ..Options::default()
    })
    .await;
    server
        .post("/api/v1/event-type", json!({"name": "a.b", "description": "x", "schemas": {"1": {"type": "object", "required": ["id"]}}}))
        .await;
    server.create_app("Acme", Some("acme")).await;
    let bad = server.post("/api/v1/app/acme/msg", json!({"eventType": "a.b", "payload": {}})).await;
    assert_eq!(assert_validation(&bad), vec!["body.payload"]);
    assert!(
        bad.body["detail"][0]["msg"].as_str().unwrap().contains("required property \"id\""),
        "{:?}",
        bad.body
    );
}

#[tokio::test]
async fn a_pinned_endpoint_previews_the_next_version_then_moves_its_pin() {
    let server = stepped_server().await;
    let receiver = Receiver::start().await;
    server
        .post(
            "/api/v1/event-type",
            json!({"name": "order.paid", "description": "x", "schemas": {"1": {}, "2": {}, "3": {}},
                   "converters": {"2": TWO_TO_ONE, "3": THREE_TO_TWO}}),
        )
        .await;
    server.create_app("Acme", Some("acme")).await;
    let id = endpoint(&server, &receiver, "/v1", json!({"payloadVersion": "1"})).await;
    let preview = format!("/api/v1/app/acme/endpoint/{id}/payload-preview");
    let none = server.get(&format!("{preview}?version=2")).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "no message yet: {:?}", none.body);

    // An older message first: the preview is of the most recent one.
    server
        .post(
            "/api/v1/app/acme/msg",
            json!({"eventType": "order.paid", "payloadVersion": "1", "payload": {"amount": 1}}),
        )
        .await;
    server.advance(chrono::Duration::seconds(1));
    let sent = server
        .post(
            "/api/v1/app/acme/msg",
            json!({"eventType": "order.paid", "payload": {"name": "A B", "total": 5}}),
        )
        .await;
    server.step().await;
    let next = server.get(&format!("{preview}?version=2")).await;
    assert_eq!(next.status, StatusCode::OK, "{:?}", next.body);
    assert_eq!(
        next.body,
        json!({"msgId": sent.body["id"], "eventType": "order.paid", "publishedVersion": "3", "version": "2",
               "payload": {"total": 5, "first": "A", "last": "B"}})
    );
    assert_eq!(
        server.get(&format!("{preview}?version=9")).await.body["version"],
        "3",
        "nothing above what was published"
    );
    assert_eq!(assert_validation(&server.get(&format!("{preview}?version=x")).await), vec!["query.version"]);

    // The customer upgrades with their portal token.
    let portal = server.post("/api/v1/auth/app-portal-access/acme", json!({})).await;
    let token = portal.body["token"].as_str().unwrap();
    let moved = server
        .call_as(
            token,
            reqwest::Method::PATCH,
            &format!("/api/v1/app/acme/endpoint/{id}"),
            Some(json!({"payloadVersion": "2"})),
        )
        .await;
    assert_eq!(moved.body["payloadVersion"], "2", "{:?}", moved.body);
    let seen = server.call_as(token, reqwest::Method::GET, &format!("{preview}?version=2"), None).await;
    assert_eq!(seen.status, StatusCode::OK);
}

#[tokio::test]
async fn an_attempt_records_the_request_it_sent_without_secrets() {
    let server = stepped_server().await;
    let receiver = Receiver::start().await;
    server.create_app("Acme", Some("acme")).await;
    let plain = endpoint(
        &server,
        &receiver,
        "/plain",
        json!({"bearerToken": "tok_secret_1", "headers": {"X-Tenant": "acme"}}),
    )
    .await;
    let shaped = endpoint(&server, &receiver, "/shaped", json!({})).await;
    let code = "function handler(w) { w.payload = { wrapped: w.payload }; w.method = 'PUT'; return w; }";
    server
        .patch(
            &format!("/api/v1/app/acme/endpoint/{shaped}/transformation"),
            json!({"code": code, "enabled": true}),
        )
        .await;
    let sent =
        server.post("/api/v1/app/acme/msg", json!({"eventType": "order.paid", "payload": {"n": 1}})).await;
    assert_eq!(server.step().await.leased, 2);
    let msg = sent.body["id"].as_str().unwrap();
    let attempt = |endpoint: String| {
        let server = &server;
        async move {
            let list =
                server.get(&format!("/api/v1/app/acme/attempt/endpoint/{endpoint}?msg_id={msg}")).await;
            list.body["data"][0]["request"].clone()
        }
    };
    let request = attempt(plain).await;
    assert_eq!(request["method"], "POST");
    assert!(request.get("body").is_none(), "the payload itself was sent: {request}");
    let headers: Vec<(String, String)> = serde_json::from_value(request["headers"].clone()).unwrap();
    let value =
        |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    assert_eq!(value("webhook-id"), Some(msg));
    assert_eq!(value("x-tenant"), Some("acme"));
    assert_eq!(value("authorization"), Some("****"), "no credential is kept");
    assert_eq!(value("webhook-signature"), Some("****"));
    assert!(!request.to_string().contains("tok_secret_1"));

    let request = attempt(shaped).await;
    assert_eq!(request["method"], "PUT");
    assert_eq!(
        serde_json::from_str::<Value>(request["body"].as_str().unwrap()).unwrap(),
        json!({"wrapped": {"n": 1}})
    );
}

#[tokio::test]
async fn the_operator_hears_of_a_delivery_a_failing_script_ended() {
    let operator = Receiver::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let server = stepped_server_with(vec![
        ("HERALD_OPERATIONAL_WEBHOOK_URL", operator.url("/ops")),
        ("HERALD_OPERATIONAL_WEBHOOK_SECRET", secret.to_owned()),
    ])
    .await;
    let receiver = Receiver::start().await;
    server.create_app("Acme", Some("acme")).await;
    let id = endpoint(&server, &receiver, "/hooks", json!({})).await;
    let code = "function handler(w) { throw new Error('no such field'); }";
    server
        .patch(
            &format!("/api/v1/app/acme/endpoint/{id}/transformation"),
            json!({"code": code, "enabled": true}),
        )
        .await;
    let sent = server.post("/api/v1/app/acme/msg", json!({"eventType": "order.paid", "payload": {}})).await;
    assert_eq!(server.step().await.leased, 1);
    let events = operator.wait_for(1, std::time::Duration::from_secs(10)).await;
    svix::webhooks::Webhook::new(secret).unwrap().verify(&events[0].body, &events[0].headers).unwrap();
    let event: Value = serde_json::from_slice(&events[0].body).unwrap();
    assert_eq!(event["type"], "message.attempt.exhausted");
    assert_eq!(event["data"]["msgId"], sent.body["id"]);
    // The event names the attempt (Svix's shape); the attempt says why.
    let attempts =
        server.get(&format!("/api/v1/app/acme/attempt/msg/{}", sent.body["id"].as_str().unwrap())).await;
    let attempt = &attempts.body["data"][0];
    assert_eq!(event["data"]["lastAttempt"]["id"], attempt["id"]);
    assert!(attempt["response"].as_str().unwrap().contains("Error: no such field"), "{attempt}");
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn a_transformation_and_other_endpoint_changes_made_at_once_all_land() {
    let server = TestServer::start().await;
    server.create_app("Acme", Some("acme")).await;
    let id =
        server.post("/api/v1/app/acme/endpoint", json!({"url": "https://example.com/"})).await.body["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let code = "function handler(w) { return w; }";
    let endpoint = format!("/api/v1/app/acme/endpoint/{id}");
    let transformation = format!("{endpoint}/transformation");
    for round in 0..10 {
        let description = format!("round {round}");
        let (a, b, c) = tokio::join!(
            server.patch(&transformation, json!({"code": code, "enabled": round % 2 == 0})),
            server.patch(&endpoint, json!({"description": description})),
            server.patch(&endpoint, json!({"payloadVersion": (round + 1).to_string()})),
        );
        assert_eq!((a.status, b.status, c.status), (StatusCode::NO_CONTENT, StatusCode::OK, StatusCode::OK));
        let shown = server.get(&endpoint).await.body;
        assert_eq!(
            (shown["description"].as_str(), shown["payloadVersion"].clone()),
            (Some(description.as_str()), json!((round + 1).to_string()))
        );
        let t = server.get(&transformation).await.body;
        assert_eq!(
            (t["code"].as_str(), t["enabled"].clone()),
            (Some(code), json!(round % 2 == 0)),
            "round {round}"
        );
    }
}
