//! Ordered endpoints over HTTP: messages with one ordering key arrive one at a time, in the
//! order Herald accepted them, also when some first attempts fail; other keys go on meanwhile.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use herald_core::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestServer, assert_validation};
use crate::receiver::Receiver;

#[tokio::test]
async fn an_ordered_endpoint_delivers_each_key_in_order_while_first_attempts_fail() {
    let clock = Arc::new(ManualClock::starting_now());
    let server =
        TestServer::start_with(Options { clock: Some(clock), stepped: true, ..Options::default() }).await;
    let receiver = Receiver::start().await;
    receiver.fail_first_attempt_of_every(3);
    server.create_app("Acme", Some("acme")).await;
    let created = server
        .post("/api/v1/app/acme/endpoint", json!({"url": receiver.url("/hooks"), "ordered": true}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        (created.body["ordered"].clone(), created.body["orderedOnExhausted"].clone()),
        (json!(true), json!("skip"))
    );

    const KEYS: usize = 5;
    const MESSAGES: usize = 150;
    let mut accepted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in 0..MESSAGES {
        let key = format!("customer-{}", n % KEYS);
        let body = json!({"eventType": "order.updated", "orderingKey": key, "payload": {"n": n}});
        let reply = server.post("/api/v1/app/acme/msg", body).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
        assert_eq!(reply.body["orderingKey"], key.as_str());
        accepted.entry(key).or_default().push(reply.body["id"].as_str().unwrap().to_owned());
    }

    // Step the worker, moving the clock past each retry, until every message arrived.
    let mut steps = 0;
    while delivered(&receiver).len() < MESSAGES {
        steps += 1;
        assert!(steps <= 400, "not all delivered after {steps} steps: {}", delivered(&receiver).len());
        if server.step().await.leased == 0 {
            server.advance(chrono::Duration::seconds(10));
        }
    }

    // Within each key: every request (failed ones too) for message i came before any request
    // for message i+1, and each arrived once successfully, in the accepted order.
    let order: BTreeMap<&str, (String, usize)> = accepted
        .iter()
        .flat_map(|(key, ids)| ids.iter().enumerate().map(move |(i, id)| (id.as_str(), (key.clone(), i))))
        .collect();
    let mut seen: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for request in receiver.received() {
        let (key, i) = order[request.header("webhook-id")].clone();
        seen.entry(key).or_default().push(i);
    }
    for (key, positions) in &seen {
        assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{key}: out of order: {positions:?}");
        let mut distinct = positions.clone();
        distinct.dedup();
        assert_eq!(distinct, (0..accepted[key].len()).collect::<Vec<_>>(), "{key}: each message, in order");
    }
    let retried = receiver.received().len() - MESSAGES;
    assert!(retried >= MESSAGES / 3 - 1, "a third of the first attempts failed and were retried: {retried}");
}

/// The `webhook-id`s of the requests answered 2xx (every request but first attempts the
/// receiver failed).
fn delivered(receiver: &Receiver) -> std::collections::HashSet<String> {
    let mut attempts: BTreeMap<String, usize> = BTreeMap::new();
    for request in receiver.received() {
        *attempts.entry(request.header("webhook-id").to_owned()).or_default() += 1;
    }
    // A message failed on its first attempt has arrived successfully once it was tried twice;
    // the others on their first attempt. Which ones failed is the receiver's rule: the first
    // attempt of every third distinct id.
    let mut ids_in_order: Vec<String> = Vec::new();
    for request in receiver.received() {
        let id = request.header("webhook-id").to_owned();
        if !ids_in_order.contains(&id) {
            ids_in_order.push(id);
        }
    }
    ids_in_order
        .iter()
        .enumerate()
        .filter(|(i, id)| attempts[*id] >= if (i + 1) % 3 == 0 { 2 } else { 1 })
        .map(|(_, id)| id.clone())
        .collect()
}

#[tokio::test]
async fn ordering_settings_are_validated_and_can_be_changed() {
    let server = TestServer::start().await;
    server.create_app("Acme", Some("acme")).await;
    let bad = server
        .post(
            "/api/v1/app/acme/endpoint",
            json!({"url": "https://example.com/a", "orderedOnExhausted": "later"}),
        )
        .await;
    assert_eq!(assert_validation(&bad), vec!["body.orderedOnExhausted".to_owned()]);
    let created = server.post("/api/v1/app/acme/endpoint", json!({"url": "https://example.com/a"})).await;
    assert_eq!(created.body["ordered"], false, "unordered by default");
    let id = created.body["id"].as_str().unwrap();
    let patched = server
        .patch(
            &format!("/api/v1/app/acme/endpoint/{id}"),
            json!({"ordered": true, "orderedOnExhausted": "pause"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(
        (patched.body["ordered"].clone(), patched.body["orderedOnExhausted"].clone()),
        (json!(true), json!("pause"))
    );
    let key = "x".repeat(257);
    let message = server
        .post("/api/v1/app/acme/msg", json!({"eventType": "a.b", "orderingKey": key, "payload": {}}))
        .await;
    assert_eq!(assert_validation(&message), vec!["body.orderingKey".to_owned()]);
    let plain = server.post("/api/v1/app/acme/msg", json!({"eventType": "a.b", "payload": {}})).await;
    assert_eq!(plain.status, StatusCode::ACCEPTED);
    assert_eq!(plain.body.get("orderingKey"), None::<&Value>, "absent unless given");
}

#[tokio::test]
async fn a_paused_lane_is_visible_and_a_resend_lets_it_go_on_in_order() {
    let clock = Arc::new(ManualClock::starting_now());
    let options = Options {
        clock: Some(clock),
        stepped: true,
        env: vec![("HERALD_RETRY_SCHEDULE", "1s".to_owned())],
        ..Options::default()
    };
    let server = TestServer::start_with(options).await;
    let receiver = Receiver::start().await;
    receiver.always(crate::receiver::Reply::Status(500));
    server.create_app("Acme", Some("acme")).await;
    let body =
        json!({"url": receiver.url("/hooks"), "uid": "main", "ordered": true, "orderedOnExhausted": "pause"});
    assert_eq!(server.post("/api/v1/app/acme/endpoint", body).await.status, StatusCode::CREATED);
    let mut sent = Vec::new();
    for n in 0..2 {
        let body = json!({"eventType": "a.b", "orderingKey": "k", "payload": {"n": n}});
        sent.push(server.post("/api/v1/app/acme/msg", body).await.body["id"].as_str().unwrap().to_owned());
    }
    // Two failed attempts (one retry configured): the head is exhausted and holds the lane.
    assert_eq!(server.step().await.leased, 1);
    server.advance(chrono::Duration::seconds(2));
    assert_eq!(server.step().await.leased, 1);
    server.advance(chrono::Duration::hours(1));
    assert_eq!(server.step().await.leased, 0, "nothing behind a held head");
    let ids: Vec<String> = receiver.received().iter().map(|r| r.header("webhook-id").to_owned()).collect();
    assert_eq!(ids, vec![sent[0].clone(), sent[0].clone()]);

    let stats = server.get("/api/v1/app/acme/endpoint/main/stats").await;
    let lanes = stats.body["orderedLanes"].as_array().unwrap_or_else(|| panic!("{:?}", stats.body));
    assert_eq!(lanes.len(), 1, "{:?}", stats.body);
    assert_eq!(lanes[0]["orderingKey"], "k");
    assert_eq!(lanes[0]["headMsgId"], sent[0].as_str());
    assert_eq!((lanes[0]["held"].clone(), lanes[0]["waiting"].clone()), (json!(true), json!(1)));
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("herald_ordered_lanes_held 1"), "{metrics}");

    // The receiver is fixed; a resend queues the held head again, then the lane goes on.
    receiver.always(crate::receiver::Reply::Status(200));
    let resend =
        server.post(&format!("/api/v1/app/acme/msg/{}/endpoint/main/resend", sent[0]), json!({})).await;
    assert_eq!(resend.status, StatusCode::ACCEPTED, "{:?}", resend.body);
    assert_eq!(server.step().await.leased, 1);
    assert_eq!(server.step().await.leased, 1);
    let ids: Vec<String> = receiver.received().iter().map(|r| r.header("webhook-id").to_owned()).collect();
    assert_eq!(ids, vec![sent[0].clone(), sent[0].clone(), sent[0].clone(), sent[1].clone()]);
    let stats = server.get("/api/v1/app/acme/endpoint/main/stats").await;
    assert_eq!(stats.body["orderedLanes"], json!([]), "no lane has work left");
}

/// Paused lanes at scale, with the worker running on its own: 8 keys × 40 messages, a
/// receiver failing the first attempt of every third message and every attempt of one
/// message in each of four keys. Those four lanes pause at that message and nothing behind
/// it arrives, while the other keys finish; a recover queues the held heads again and every
/// key completes, each in the order its messages were accepted.
#[tokio::test]
async fn paused_lanes_never_deliver_out_of_order_with_many_keys_and_failures() {
    const KEYS: usize = 8;
    const PER_KEY: usize = 40;
    const POISONED: usize = 20;
    let options = Options {
        env: vec![
            ("HERALD_RETRY_SCHEDULE", "20ms,20ms".to_owned()),
            ("HERALD_CIRCUIT_BREAKER_FAILURES", "0".to_owned()),
        ],
        ..Options::default()
    };
    let server = TestServer::start_with(options).await;
    let receiver = Receiver::start().await;
    receiver.fail_first_attempt_of_every(3);
    receiver.fail_bodies_containing(Some("poison"));
    server.create_app("Acme", Some("acme")).await;
    let body =
        json!({"url": receiver.url("/hooks"), "uid": "main", "ordered": true, "orderedOnExhausted": "pause"});
    assert_eq!(server.post("/api/v1/app/acme/endpoint", body).await.status, StatusCode::CREATED);
    let started = chrono::Utc::now() - chrono::Duration::minutes(1);

    // Posted one after the other, keys interleaved: one acceptance order in every key.
    let mut position: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for n in 0..PER_KEY {
        for key in 0..KEYS {
            let poison = key < 4 && n == POISONED;
            let payload = if poison { json!({"n": n, "poison": true}) } else { json!({"n": n}) };
            let body = json!({"eventType": "a.b", "orderingKey": format!("k{key}"), "payload": payload});
            let reply = server.post("/api/v1/app/acme/msg", body).await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
            position.insert(reply.body["id"].as_str().unwrap().to_owned(), (key, n));
        }
    }
    let positions = |receiver: &Receiver| -> BTreeMap<usize, Vec<usize>> {
        let mut seen: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for request in receiver.received() {
            let (key, n) = position[request.header("webhook-id")];
            seen.entry(key).or_default().push(n);
        }
        seen
    };

    // Four lanes hold (their poisoned head exhausted) and the other four finish.
    let held = || async {
        let stats = server.get("/api/v1/app/acme/endpoint/main/stats").await;
        let lanes = stats.body["orderedLanes"].as_array().cloned().unwrap_or_default();
        lanes.iter().filter(|lane| lane["held"] == json!(true)).count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let seen = positions(&receiver);
        let finished =
            (4..KEYS).filter(|key| seen.get(key).is_some_and(|s| s.contains(&(PER_KEY - 1)))).count();
        if held().await == 4 && finished == 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "lanes not settled: {seen:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let seen = positions(&receiver);
    for key in 0..4 {
        let arrived = &seen[&key];
        assert!(
            arrived.iter().all(|n| *n <= POISONED),
            "k{key}: something behind its held head: {arrived:?}"
        );
        assert_eq!(
            arrived.iter().filter(|n| **n == POISONED).count(),
            3,
            "k{key}: three attempts, then held"
        );
    }

    // Fixed and recovered: the held heads go again, then everything behind them.
    receiver.fail_bodies_containing(None);
    let recover = server.post("/api/v1/app/acme/endpoint/main/recover", json!({"since": started})).await;
    assert_eq!(recover.status, StatusCode::ACCEPTED, "{:?}", recover.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(0..KEYS).all(|key| positions(&receiver).get(&key).is_some_and(|s| s.contains(&(PER_KEY - 1)))) {
        assert!(std::time::Instant::now() < deadline, "not all delivered: {:?}", positions(&receiver));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for (key, arrived) in positions(&receiver) {
        assert!(arrived.windows(2).all(|w| w[0] <= w[1]), "k{key} out of order: {arrived:?}");
        let mut distinct = arrived.clone();
        distinct.dedup();
        assert_eq!(distinct, (0..PER_KEY).collect::<Vec<_>>(), "k{key}: every message, in order");
    }
    // The last request arrived; its attempt is recorded a moment later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stats = server.get("/api/v1/app/acme/endpoint/main/stats").await;
        if stats.body["orderedLanes"] == json!([]) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "a lane still has work: {:?}", stats.body);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
