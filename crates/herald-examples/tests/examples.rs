//! Both examples end to end over loopback, against a real Herald started in-process.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use herald::config::{Config, Overrides};
use herald_examples::herald_api::HeraldClient;
use herald_examples::receiver::{ReceiverConfig, Stats};
use herald_receiver::Verifier;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const ADMIN_TOKEN: &str = "sk_test_examples_admin_0123456789";
/// Every wait in these tests gives up after this long.
const DEADLINE: Duration = Duration::from_secs(20);

/// A Herald on 127.0.0.1:0 with its own data directory, stopped on drop.
struct TestHerald {
    address: SocketAddr,
    shutdown: CancellationToken,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl TestHerald {
    async fn start() -> TestHerald {
        let dir = tempfile::tempdir().unwrap();
        let env: Vec<(String, String)> = [
            ("HERALD_LISTEN", "127.0.0.1:0".to_owned()),
            ("HERALD_DATA_DIR", dir.path().display().to_string()),
            ("HERALD_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
            // The receivers in these tests listen on loopback, which Herald refuses by default.
            ("HERALD_ALLOWED_CIDRS", "127.0.0.0/8".to_owned()),
            ("HERALD_REQUEST_TIMEOUT", "5s".to_owned()),
            ("HERALD_SHUTDOWN_GRACE", "1s".to_owned()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        let config = Config::load_from(&Overrides::default(), &env).unwrap();
        let listener = TcpListener::bind(config.listen).await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = herald::app::App::build(config).await.unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(app.serve(listener, shutdown.clone()));
        TestHerald { address, shutdown, http: reqwest::Client::new(), _dir: dir }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url())).bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn secret(&self, app_id: &str, endpoint_id: &str) -> String {
        let (status, body) = self
            .call(reqwest::Method::GET, &format!("/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["key"].as_str().unwrap().to_owned()
    }
}

impl Drop for TestHerald {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// One request a callback server received.
#[derive(Debug, Clone)]
struct Delivery {
    headers: HeaderMap,
    body: Bytes,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A client's callback server: records every request and answers 200.
struct Callback {
    address: SocketAddr,
    received: Arc<Mutex<Vec<Delivery>>>,
}

impl Callback {
    async fn start() -> Callback {
        let received = Arc::new(Mutex::new(Vec::new()));
        let recorder = received.clone();
        let router = axum::Router::new().route(
            "/callback",
            post(move |headers: HeaderMap, body: Bytes| async move {
                recorder.lock().unwrap().push(Delivery { headers, body });
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Callback { address, received }
    }

    fn url(&self) -> String {
        format!("http://{}/callback", self.address)
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.received.lock().unwrap().clone()
    }
}

/// Polls `condition` until it holds, failing the test after [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchase_order_events_follow_the_clients_webhook_url() {
    let herald = TestHerald::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shop = format!("http://{}", listener.local_addr().unwrap());
    let stop_shop = CancellationToken::new();
    tokio::spawn(herald_examples::purchase_orders::serve(
        listener,
        HeraldClient::new(&herald.url(), ADMIN_TOKEN),
        stop_shop.clone().cancelled_owned(),
    ));
    let old = Callback::start().await;
    let new = Callback::start().await;
    let http = reqwest::Client::new();
    let token = "r32j4hu32ji3j24ipj324ioj234oi2j432io3j4";

    // The client places an order and says where to call back, with which token.
    let response = http
        .post(format!("{shop}/purchase-orders"))
        .header("X-Client-Id", "acme")
        .json(&json!({"payload": {"sku": "book-42", "quantity": 2}, "webhook": {"url": old.url(), "token": token}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    let order_id = order["id"].as_str().unwrap();
    let secret =
        herald.secret(order["applicationId"].as_str().unwrap(), order["endpointId"].as_str().unwrap()).await;

    eventually("order.created at the first URL", || async { !old.deliveries().is_empty() }).await;
    let created = &old.deliveries()[0];
    assert_eq!(created.headers["authorization"], format!("Bearer {token}").as_str());
    Verifier::new(&secret).unwrap().verify(&created.headers, &created.body).unwrap();
    assert_eq!(created.json()["type"], "order.created");
    assert_eq!(created.json()["orderId"], order_id);
    assert_eq!(created.json()["order"]["sku"], "book-42");

    // The client moves its callback; the next event goes to the new URL only.
    let response = http
        .put(format!("{shop}/purchase-orders/webhooks"))
        .header("X-Client-Id", "acme")
        .json(&json!({"webhook": {"url": new.url()}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // The very next event goes to the new URL: Herald applies an endpoint change made through
    // its API to the next delivery.
    let response = http
        .post(format!("{shop}/purchase-orders/{order_id}/ship"))
        .header("X-Client-Id", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    eventually("order.shipped at the new URL", || async { !new.deliveries().is_empty() }).await;
    let shipped = &new.deliveries()[0];
    assert_eq!(shipped.headers["authorization"], format!("Bearer {token}").as_str());
    Verifier::new(&secret).unwrap().verify(&shipped.headers, &shipped.body).unwrap();
    assert_eq!(shipped.json()["type"], "order.shipped");
    assert_eq!(shipped.json()["orderId"], order_id);
    assert_eq!(old.deliveries().len(), 1, "the old URL got only order.created");
    assert_eq!(new.deliveries().len(), 1);

    // Another client can't ship acme's order, nor move a webhook it never registered.
    let response = http
        .post(format!("{shop}/purchase-orders/{order_id}/ship"))
        .header("X-Client-Id", "globex")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = http
        .put(format!("{shop}/purchase-orders/webhooks"))
        .header("X-Client-Id", "globex")
        .json(&json!({"webhook": {"url": new.url()}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    stop_shop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_acknowledges_processes_once_and_refuses_unsigned_requests() {
    let herald = TestHerald::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_url = format!("http://{}/webhooks", listener.local_addr().unwrap());
    let token = "receiver-bearer-token";
    let (status, app) =
        herald.call(reqwest::Method::POST, "/api/v1/app", Some(json!({"name": "Receiver demo"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    let app_id = app["id"].as_str().unwrap();
    let (status, endpoint) = herald
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/app/{app_id}/endpoint"),
            Some(json!({"url": receiver_url, "bearerToken": token})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let secret = herald.secret(app_id, endpoint_id).await;

    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("webhooks.jsonl");
    let config = ReceiverConfig {
        verifier: Verifier::new(&secret).unwrap(),
        bearer_token: Some(token.to_owned()),
        journal: journal.clone(),
        queue_capacity: 16,
    };
    let stats = Arc::new(Stats::default());
    let stop_receiver = CancellationToken::new();
    let receiver = tokio::spawn(herald_examples::receiver::serve(
        listener,
        config,
        stats.clone(),
        stop_receiver.clone().cancelled_owned(),
    ));

    let (status, message) = herald
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/app/{app_id}/msg"),
            Some(json!({"eventType": "order.created", "payload": {"type": "order.created", "orderId": "po_1"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{message}");
    let message_id = message["id"].as_str().unwrap();
    eventually("the message to be processed", || async { stats.processed() == 1 }).await;
    // Herald recorded the receiver's immediate 200.
    let attempts_path = format!("/api/v1/app/{app_id}/attempt/msg/{message_id}");
    eventually("a successful attempt in Herald", || async {
        let (_, attempts) = herald.call(reqwest::Method::GET, &attempts_path, None).await;
        attempts["data"].as_array().is_some_and(|data| data.iter().any(|a| a["responseStatusCode"] == 200))
    })
    .await;

    // The same message again (same webhook-id): acknowledged, journaled, not processed.
    let (status, body) = herald
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/app/{app_id}/msg/{message_id}/endpoint/{endpoint_id}/resend"),
            None,
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    eventually("the resend to be seen as a duplicate", || async { stats.duplicates() == 1 }).await;
    assert_eq!(stats.processed(), 1);
    eventually("two successful attempts in Herald", || async {
        let (_, attempts) = herald.call(reqwest::Method::GET, &attempts_path, None).await;
        attempts["data"]
            .as_array()
            .is_some_and(|data| data.iter().filter(|a| a["responseStatusCode"] == 200).count() == 2)
    })
    .await;

    // Without a signature (even with the right token), and without the token, it is refused.
    let http = reqwest::Client::new();
    let unsigned = http
        .post(&receiver_url)
        .bearer_auth(token)
        .header("webhook-id", "msg_forged")
        .json(&json!({"type": "order.created"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let no_token = http.post(&receiver_url).json(&json!({"type": "order.created"})).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);

    stop_receiver.cancel();
    receiver.await.unwrap().unwrap();
    assert_eq!((stats.processed(), stats.duplicates()), (1, 1));
    // Both accepted deliveries, and nothing else, reached the journal, without the token.
    let journal = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(journal.lines().count(), 2, "{journal}");
    assert!(!journal.contains(token));
    for line in journal.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["headers"]["webhook-id"], message_id);
    }
}
