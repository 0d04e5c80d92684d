//! A webhook receiver that answers fast and processes later: each request is checked
//! (signature and bearer token), appended to a journal file and flushed to disk, queued, and
//! acknowledged with 200; a background task takes it from the bounded queue, drops it if its
//! `webhook-id` was already processed, and otherwise processes it.
//!
//! Checking at the edge costs microseconds and keeps forgeries out of the journal; the work
//! that may be slow happens after the answer, so Herald never times out waiting for it. The
//! journal is what makes the early 200 safe: a crash after the answer loses nothing that a
//! restart couldn't replay from the file. This module does not replay it.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use herald_receiver::{MemorySeen, SeenStore as _, Verifier, verify_bearer};
use serde_json::json;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};

/// How the receiver checks and where it writes.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Checks `webhook-signature` with the endpoint's secret (`whsec_…`).
    pub verifier: Verifier,
    /// When set, every request must carry `Authorization: Bearer <token>` too.
    pub bearer_token: Option<String>,
    /// The journal: one JSON line per accepted request, fsynced before the answer.
    pub journal: PathBuf,
    /// How many accepted requests may wait for processing; beyond it the receiver answers
    /// 503 and Herald retries later.
    pub queue_capacity: usize,
}

/// What the background task has done, for the log and for tests.
#[derive(Debug, Default)]
pub struct Stats {
    processed: AtomicU64,
    duplicates: AtomicU64,
}

impl Stats {
    /// Messages processed (each `webhook-id` at most once).
    pub fn processed(&self) -> u64 {
        self.processed.load(Ordering::SeqCst)
    }

    /// Deliveries acknowledged but skipped because their `webhook-id` was already processed.
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::SeqCst)
    }
}

/// A request that passed the checks, on its way to the background task.
#[derive(Debug)]
struct Accepted {
    id: String,
    body: Bytes,
}

/// The handler's state.
#[derive(Debug)]
struct Edge {
    verifier: Verifier,
    bearer_token: Option<String>,
    /// One writer at a time, so that lines never interleave.
    journal: Mutex<tokio::fs::File>,
    queue: mpsc::Sender<Accepted>,
}

/// Serves the receiver on `listener` (webhooks are POSTed to any path) until `shutdown`
/// completes, then lets the background task finish what is queued.
pub async fn serve(
    listener: TcpListener,
    config: ReceiverConfig,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let journal = tokio::fs::OpenOptions::new().create(true).append(true).open(&config.journal).await?;
    let (queue, pending) = mpsc::channel(config.queue_capacity.max(1));
    let processor = tokio::spawn(process_all(pending, stats));
    let edge = Arc::new(Edge {
        verifier: config.verifier,
        bearer_token: config.bearer_token,
        journal: Mutex::new(journal),
        queue,
    });
    let router = Router::new().fallback(post(receive)).with_state(edge);
    let served = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
    // The router, and with it the queue's only sender, is gone: the task drains and ends.
    if let Err(error) = processor.await {
        tracing::error!(%error, "the processing task failed");
    }
    served
}

fn refuse(code: &'static str, detail: String) -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"code": code, "detail": detail}))).into_response()
}

async fn receive(State(edge): State<Arc<Edge>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(token) = &edge.bearer_token
        && let Err(error) = verify_bearer(&headers, token)
    {
        return refuse(error.code(), error.to_string());
    }
    let verified = match edge.verifier.verify(&headers, &body) {
        Ok(verified) => verified,
        Err(error) => return refuse(error.code(), error.to_string()),
    };
    if let Err(error) = append(&edge.journal, &headers, &body).await {
        // Not on disk: answer an error so that Herald delivers it again.
        tracing::error!(%error, id = %verified.id, "could not write the journal");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    match edge.queue.try_send(Accepted { id: verified.id, body }) {
        Ok(()) => StatusCode::OK.into_response(),
        // On disk but not queued: Herald's retry brings it back, and the id check keeps a
        // message that did get through from being processed twice.
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Appends the request (headers but the bearer token, and the body) as one JSON line and
/// waits until it is on disk.
async fn append(journal: &Mutex<tokio::fs::File>, headers: &HeaderMap, body: &[u8]) -> std::io::Result<()> {
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .filter(|(name, _)| *name != header::AUTHORIZATION)
        .map(|(name, value)| (name.to_string(), json!(String::from_utf8_lossy(value.as_bytes()))))
        .collect();
    let mut line = serde_json::to_vec(&json!({"headers": headers, "body": String::from_utf8_lossy(body)}))?;
    line.push(b'\n');
    let mut file = journal.lock().await;
    file.write_all(&line).await?;
    file.flush().await?;
    file.sync_data().await
}

/// The background task: processes each message once, in arrival order.
async fn process_all(mut pending: mpsc::Receiver<Accepted>, stats: Arc<Stats>) {
    let seen = MemorySeen::default();
    while let Some(accepted) = pending.recv().await {
        if !seen.check_and_mark(&accepted.id) {
            stats.duplicates.fetch_add(1, Ordering::SeqCst);
            tracing::info!(id = %accepted.id, "duplicate ignored");
            continue;
        }
        process(&accepted);
        stats.processed.fetch_add(1, Ordering::SeqCst);
    }
}

/// The example's "work": reading the event type. A real receiver would update its database
/// here, and call `seen.forget(id)` if that failed, so that a retry is processed.
fn process(accepted: &Accepted) {
    let event: serde_json::Value = serde_json::from_slice(&accepted.body).unwrap_or_default();
    tracing::info!(id = %accepted.id, event_type = %event["type"], "processed");
}
