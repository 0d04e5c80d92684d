//! The bench's webhook receiver on 127.0.0.1: one path per endpoint (`/e/{index}`). It
//! answers 200 at once (or fails or holds a first attempt, as the run's [`Faults`] say),
//! checks each delivery's signature, and records which messages arrived at which endpoint,
//! how often, in which order, and how long after they were sent.
//!
//! It must stay cheap per request (one HMAC, one small JSON parse, one short lock), since it
//! shares the machine with the Herald being measured: it serves HTTP/1.1 with hyper directly,
//! without a router or extractors (a third less CPU per delivery than with axum's).

use std::collections::{HashMap, HashSet};
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
use super::faults::{self, Arrival, Faults, FirstAttempt};

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
    /// First attempts answered 500 on purpose (`--fail-first`).
    failed_first: AtomicU64,
    /// First attempts held past Herald's timeout on purpose (`--hang-first`).
    hung_first: AtomicU64,
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
    /// Requests per `webhook-id` (failed and held ones too), kept only when faults are on:
    /// a fault hits only a message's first attempt.
    attempts: HashMap<Box<str>, u32>,
    /// First-time deliveries in the order they arrived (ordered runs only).
    arrivals: Vec<Arrival>,
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
    faults: Faults,
    /// The run's ordering keys: arrivals are then kept in order, to check it.
    ordering_keys: Option<u32>,
}

/// The part of a bench payload the receiver reads: its sequence number and when it was
/// (scheduled to be) sent.
#[derive(Deserialize)]
struct Probe {
    seq: u64,
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
    pub failed_first: u64,
    pub hung_first: u64,
    /// Ordered runs: deliveries that arrived before a message of their ordering key that was
    /// accepted before they were sent ([`faults::order_violations`]).
    pub order_violations: Option<u64>,
}

/// A running receiver; it stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    shared: Arc<Shared>,
    _stop: DropGuard,
}

impl Receiver {
    /// Serves on `listener`; endpoint `i` is `/e/{i}`, verified with `secrets[i]`. With
    /// `ordering_keys`, message `seq` has key `seq mod keys` and arrivals are kept in order.
    pub fn start(
        listener: TcpListener,
        secrets: Vec<SigningSecret>,
        clock: BenchClock,
        faults: Faults,
        ordering_keys: Option<u32>,
    ) -> Self {
        let endpoints =
            secrets.into_iter().map(|secret| Endpoint { secret, log: Mutex::default() }).collect();
        let shared = Arc::new(Shared { clock, endpoints, stats: Arc::default(), faults, ordering_keys });
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

    /// Compares what arrived with the messages Herald accepted (`acks`: sequence number →
    /// bench time of its 202).
    pub fn tally(&self, accepted: &HashSet<&str>, acks: &HashMap<u64, u64>) -> Tally {
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
            failed_first: stats.failed_first.load(Ordering::Relaxed),
            hung_first: stats.hung_first.load(Ordering::Relaxed),
            order_violations: self.shared.ordering_keys.map(|_| 0),
        };
        for endpoint in &self.shared.endpoints {
            let log = endpoint.log.lock().unwrap_or_else(PoisonError::into_inner);
            let arrived = log.seen.iter().filter(|id| accepted.contains(&***id)).count() as u64;
            tally.deliveries += arrived;
            tally.unexpected += log.seen.len() as u64 - arrived;
            tally.missing += accepted.len() as u64 - arrived;
            tally.latencies.extend_from_slice(&log.latencies);
            if let (Some(keys), Some(violations)) = (self.shared.ordering_keys, &mut tally.order_violations) {
                let keys = u64::from(keys.max(1));
                *violations += faults::order_violations(&log.arrivals, acks, |seq| seq % keys);
            }
        }
        tally.latencies.sort_unstable();
        tally
    }
}

/// Routes `POST /e/{index}` to [`receive`]; anything else is a 404.
async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Empty<Bytes>> {
    let index = request.uri().path().strip_prefix("/e/").and_then(|index| index.parse::<usize>().ok());
    let status = match index {
        Some(index) if request.method() == http::Method::POST && index < shared.endpoints.len() => {
            let (parts, body) = request.into_parts();
            match body.collect().await {
                Ok(body) => match receive(shared, index, &parts.headers, &body.to_bytes()) {
                    FirstAttempt::Answer => StatusCode::OK,
                    FirstAttempt::Fail => StatusCode::INTERNAL_SERVER_ERROR,
                    FirstAttempt::Hang => {
                        tokio::time::sleep(faults::HANG).await;
                        StatusCode::OK
                    }
                },
                Err(_) => StatusCode::BAD_REQUEST,
            }
        }
        _ => StatusCode::NOT_FOUND,
    };
    let mut response = Response::new(Empty::new());
    *response.status_mut() = status;
    response
}

/// Records a request and says how to answer it: a fault on a message's first attempt (not
/// a delivery), else 200 (a delivery: the first, or a duplicate).
fn receive(shared: &Shared, index: usize, headers: &HeaderMap, body: &[u8]) -> FirstAttempt {
    let arrived = shared.clock.now();
    let Some(endpoint) = shared.endpoints.get(index) else {
        return FirstAttempt::Answer;
    };
    let stats = &shared.stats;
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) =
        (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"))
    else {
        stats.malformed.fetch_add(1, Ordering::Relaxed);
        return FirstAttempt::Answer;
    };
    let valid = timestamp.parse::<i64>().is_ok_and(|timestamp| {
        let expected = sign(&endpoint.secret, id, timestamp, body);
        signatures.split(' ').any(|signature| signature == expected)
    });
    if !valid {
        stats.signature_failures.fetch_add(1, Ordering::Relaxed);
    }
    let probe = match serde_json::from_slice::<Probe>(body) {
        Ok(probe) => Some(probe),
        Err(_) => {
            stats.malformed.fetch_add(1, Ordering::Relaxed);
            None
        }
    };
    let first = {
        let mut log = endpoint.log.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.faults.any()
            && let Some(probe) = &probe
        {
            let attempts = log.attempts.entry(id.into()).or_default();
            *attempts += 1;
            let answer =
                if *attempts == 1 { shared.faults.first_attempt(probe.seq) } else { FirstAttempt::Answer };
            match answer {
                FirstAttempt::Answer => {}
                FirstAttempt::Fail => {
                    stats.failed_first.fetch_add(1, Ordering::Relaxed);
                    return answer;
                }
                FirstAttempt::Hang => {
                    stats.hung_first.fetch_add(1, Ordering::Relaxed);
                    return answer;
                }
            }
        }
        let first = log.seen.insert(id.into());
        if let (true, Some(probe)) = (first, &probe) {
            log.latencies.push(arrived.saturating_sub(probe.t));
            if shared.ordering_keys.is_some() {
                log.arrivals.push(Arrival { seq: probe.seq, sent: probe.t });
            }
        }
        first
    };
    if first {
        stats.first_deliveries.fetch_add(1, Ordering::Relaxed);
        stats.last_arrival.fetch_max(arrived, Ordering::Relaxed);
    } else {
        stats.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    FirstAttempt::Answer
}
