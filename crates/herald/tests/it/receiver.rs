//! A webhook receiver on 127.0.0.1:0 for tests: records every request and answers as told.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: axum::http::Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or_default()
    }
}

/// How the receiver answers a request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// A status with headers, e.g. `Retry-After`.
    WithHeaders(u16, Vec<(&'static str, String)>),
    /// A status with a body.
    Body(u16, String),
    /// Wait this long, then answer 200 (longer than the request timeout: a hung endpoint).
    Delay(Duration),
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    /// Replies for the next requests, in order; afterwards `default`.
    script: VecDeque<Reply>,
    default: Option<Reply>,
    /// Fail (500) the first attempt of every n-th new `webhook-id`.
    fail_first_of_every: Option<usize>,
    /// Attempts seen per `webhook-id` (its length: the distinct ids so far).
    attempts_by_id: std::collections::HashMap<String, usize>,
    /// `OPTIONS` requests (consent handshakes), kept apart from deliveries.
    handshakes: Vec<Received>,
    /// How `OPTIONS` is answered; 200 without headers when not told.
    options: Option<Reply>,
    /// Paths answered with this body and status 500, whatever else is told.
    failing_paths: Vec<(String, String)>,
    /// Requests whose body contains this are answered 500, whatever else is told.
    failing_body: Option<String>,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    pub address: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    arrived: Arc<Notify>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let receiver = Self { address, inner: Arc::default(), arrived: Arc::new(Notify::new()) };
        let app = axum::Router::new().fallback(handle).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// Answers the next requests with `replies`, then with the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    /// Answers every request (after the script) with `reply`.
    pub fn always(&self, reply: Reply) {
        self.inner.lock().unwrap().default = Some(reply);
    }

    /// Answers 500 to the first attempt of every `n`-th new message (by `webhook-id`), and
    /// as told otherwise: a receiver that fails some first attempts.
    pub fn fail_first_attempt_of_every(&self, n: usize) {
        self.inner.lock().unwrap().fail_first_of_every = Some(n.max(1));
    }

    /// Answers every request to `path` with 500 and `body`.
    pub fn fail_at(&self, path: &str, body: &str) {
        self.inner.lock().unwrap().failing_paths.push((path.to_owned(), body.to_owned()));
    }

    /// Answers 500 to every request whose body contains `pattern` (`None`: stop).
    pub fn fail_bodies_containing(&self, pattern: Option<&str>) {
        self.inner.lock().unwrap().failing_body = pattern.map(str::to_owned);
    }

    /// Answers `OPTIONS` (the consent handshake) with `reply`.
    pub fn answer_options(&self, reply: Reply) {
        self.inner.lock().unwrap().options = Some(reply);
    }

    /// The `OPTIONS` requests so far.
    pub fn handshakes(&self) -> Vec<Received> {
        self.inner.lock().unwrap().handshakes.clone()
    }

    /// Deliveries (every request but `OPTIONS`) so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().received.len()
    }

    /// Waits until at least `n` requests arrived, for at most `limit`; returns them.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.arrived.notified();
            if self.count() >= n {
                return self.received();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("expected {n} requests within {limit:?}, got {}", self.count());
            }
        }
    }
}

async fn handle(
    State(receiver): State<Receiver>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == axum::http::Method::OPTIONS {
        let reply = {
            let mut inner = receiver.inner.lock().unwrap();
            inner.handshakes.push(Received {
                method: method.clone(),
                path: uri.path().to_owned(),
                headers,
                body,
                at: Instant::now(),
            });
            inner.options.clone().unwrap_or(Reply::Status(200))
        };
        receiver.arrived.notify_waiters();
        return answer(reply).await;
    }
    let reply = {
        let mut inner = receiver.inner.lock().unwrap();
        let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let distinct = inner.attempts_by_id.len();
        let attempts = {
            let count = inner.attempts_by_id.entry(id).or_insert(0);
            *count += 1;
            *count
        };
        let fail_first = inner.fail_first_of_every.is_some_and(|n| attempts == 1 && (distinct + 1) % n == 0);
        let poisoned = inner
            .failing_body
            .as_ref()
            .is_some_and(|pattern| body.windows(pattern.len()).any(|w| w == pattern.as_bytes()));
        inner.received.push(Received {
            method,
            path: uri.path().to_owned(),
            headers,
            body,
            at: Instant::now(),
        });
        if let Some((_, body)) = inner.failing_paths.iter().find(|(path, _)| path == uri.path()) {
            Reply::Body(500, body.clone())
        } else if fail_first || poisoned {
            Reply::Status(500)
        } else {
            inner.script.pop_front().or_else(|| inner.default.clone()).unwrap_or(Reply::Status(200))
        }
    };
    receiver.arrived.notify_waiters();
    answer(reply).await
}

async fn answer(reply: Reply) -> Response {
    match reply {
        Reply::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Reply::WithHeaders(code, headers) => {
            let mut response = StatusCode::from_u16(code).unwrap().into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
        Reply::Body(code, body) => (StatusCode::from_u16(code).unwrap(), body).into_response(),
        Reply::Delay(duration) => {
            tokio::time::sleep(duration).await;
            StatusCode::OK.into_response()
        }
    }
}
