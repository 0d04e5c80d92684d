//! The bench's webhook receiver on 127.0.0.1: one path per endpoint (`/e/{index}`). It
//! answers 200 at once, checks each delivery's signature, and records which messages arrived
//! at which endpoint, how often, and how long after they were sent.
//!
//! It must stay cheap per request (one HMAC, one small JSON parse, one short lock), since it
//! shares the machine with the Herald being measured: it serves HTTP/1.1 with hyper directly,
//! without a router or extractors (a third less CPU per delivery than with axum's).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use herald_core::secret::SigningSecret;
use herald_core::signature::sign;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::BenchClock;

/// Counters updated on every request, read by the progress line and the wait loop.
#[derive(Debug, Default)]
pub struct ReceiverStats {
    /// Deliveries of a message to an endpoint for the first time.
    first_deliveries: AtomicU64,
    /// Deliveries of a message to an endpoint that had already received it.
    duplicates: AtomicU64,
    signature_failures: AtomicU64,
    /// Requests without the webhook headers, or whose body is not a bench payload.
    malformed: AtomicU64,
    /// Bench time of the latest first-time delivery (nanoseconds).
    last_arrival: AtomicU64,
}

impl ReceiverStats {
    pub fn first_deliveries(&self) -> u64 {
        self.first_deliveries.load(Ordering::Relaxed)
    }
}

/// What one endpoint received.
#[derive(Debug, Default)]
struct EndpointLog {
    /// The `webhook-id`s seen.
    seen: HashSet<Box<str>>,
    /// Arrival minus send time of each first-time delivery, in nanoseconds.
    latencies: Vec<u64>,
}

#[derive(Debug)]
struct Endpoint {
    secret: SigningSecret,
    log: Mutex<EndpointLog>,
}

#[derive(Debug)]
struct Shared {
    clock: BenchClock,
    endpoints: Vec<Endpoint>,
    stats: Arc<ReceiverStats>,
}

/// The part of a bench payload the receiver reads: when it was (scheduled to be) sent.
#[derive(Deserialize)]
struct Probe {
    t: u64,
}

/// The numbers gathered at the end.
#[derive(Debug)]
pub struct Tally {
    /// First-time deliveries of accepted messages, over all endpoints.
    pub deliveries: u64,
    /// (accepted message, endpoint) pairs that never arrived.
    pub missing: u64,
    /// Deliveries of messages whose send did not succeed as far as the bench knows.
    pub unexpected: u64,
    pub duplicates: u64,
    pub signature_failures: u64,
    pub malformed: u64,
    /// Bench time of the last first-time delivery, nanoseconds.
    pub last_arrival: u64,
    /// Latencies of all first-time deliveries, nanoseconds, sorted.
    pub latencies: Vec<u64>,
}

/// A running receiver; it stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    shared: Arc<Shared>,
    _stop: DropGuard,
}

impl Receiver {
    /// Serves on `listener`; endpoint `i` is `/e/{i}`, verified with `secrets[i]`.
    pub fn start(listener: TcpListener, secrets: Vec<SigningSecret>, clock: BenchClock) -> Self {
        let endpoints =
            secrets.into_iter().map(|secret| Endpoint { secret, log: Mutex::default() }).collect();
        let shared = Arc::new(Shared { clock, endpoints, stats: Arc::default() });
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let serving = shared.clone();
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    () = stopped.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        // Out of file descriptors, say: wait a moment rather than spin.
                        Err(_) => {
                            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let _ = stream.set_nodelay(true);
                let (shared, stopped) = (serving.clone(), stopped.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(&shared, request).await) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        () = stopped.cancelled() => {}
                    }
                });
            }
        });
        Self { shared, _stop: stop.drop_guard() }
    }

    pub fn stats(&self) -> Arc<ReceiverStats> {
        self.shared.stats.clone()
    }

    /// Compares what arrived with the messages Herald accepted.
    pub fn tally(&self, accepted: &HashSet<&str>) -> Tally {
        let stats = &self.shared.stats;
        let mut tally = Tally {
            deliveries: 0,
            missing: 0,
            unexpected: 0,
            duplicates: stats.duplicates.load(Ordering::Relaxed),
            signature_failures: stats.signature_failures.load(Ordering::Relaxed),
            malformed: stats.malformed.load(Ordering::Relaxed),
            last_arrival: stats.last_arrival.load(Ordering::Relaxed),
            latencies: Vec::new(),
        };
        for endpoint in &self.shared.endpoints {
            let log = endpoint.log.lock().unwrap_or_else(PoisonError::into_inner);
            let arrived = log.seen.iter().filter(|id| accepted.contains(&***id)).count() as u64;
            tally.deliveries += arrived;
            tally.unexpected += log.seen.len() as u64 - arrived;
            tally.missing += accepted.len() as u64 - arrived;
            tally.latencies.extend_from_slice(&log.latencies);
        }
        tally.latencies.sort_unstable();
        tally
    }
}

/// Routes `POST /e/{index}` to [`receive`]; anything else is a 404.
async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Empty<Bytes>> {
    let index = request.uri().path().strip_prefix("/e/").and_then(|index| index.parse::<usize>().ok());
    let status = match index {
        Some(index) if request.method() == http::Method::POST => {
            let (parts, body) = request.into_parts();
            match body.collect().await {
                Ok(body) => receive(shared, index, &parts.headers, &body.to_bytes()),
                Err(_) => StatusCode::BAD_REQUEST,
            }
        }
        _ => StatusCode::NOT_FOUND,
    };
    let mut response = Response::new(Empty::new());
    *response.status_mut() = status;
    response
}

fn receive(shared: &Shared, index: usize, headers: &HeaderMap, body: &[u8]) -> StatusCode {
    let arrived = shared.clock.now();
    let Some(endpoint) = shared.endpoints.get(index) else {
        return StatusCode::NOT_FOUND;
    };
    let stats = &shared.stats;
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) =
        (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"))
    else {
        stats.malformed.fetch_add(1, Ordering::Relaxed);
        return StatusCode::OK;
    };
    let valid = timestamp.parse::<i64>().is_ok_and(|timestamp| {
        let expected = sign(&endpoint.secret, id, timestamp, body);
        signatures.split(' ').any(|signature| signature == expected)
    });
    if !valid {
        stats.signature_failures.fetch_add(1, Ordering::Relaxed);
    }
    let sent_at = match serde_json::from_slice::<Probe>(body) {
        Ok(probe) => Some(probe.t),
        Err(_) => {
            stats.malformed.fetch_add(1, Ordering::Relaxed);
            None
        }
    };
    let first = {
        let mut log = endpoint.log.lock().unwrap_or_else(PoisonError::into_inner);
        let first = log.seen.insert(id.into());
        if let (true, Some(sent_at)) = (first, sent_at) {
            log.latencies.push(arrived.saturating_sub(sent_at));
        }
        first
    };
    if first {
        stats.first_deliveries.fetch_add(1, Ordering::Relaxed);
        stats.last_arrival.fetch_max(arrived, Ordering::Relaxed);
    } else {
        stats.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    StatusCode::OK
}
