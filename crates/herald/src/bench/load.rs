//! The senders: `concurrency` tasks that post messages to Herald's API, either back to back
//! (closed loop) or each at its scheduled time `start + seq / rate` (open loop).
//!
//! Every payload carries its sequence number and its send time on the bench clock — the
//! scheduled time in the open loop, so a server that falls behind can't hide it in the
//! measured latency. No idempotency keys are sent to the message API: the plain path is
//! measured. Events posted to an ingest URL carry a delivery id each (`webhook-id`), as every
//! provider's do, so the gateway's deduplication is part of what is measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::task::JoinSet;

use super::BenchClock;
use super::client::HeraldClient;

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub messages: u64,
    /// Senders, and so API calls in flight at most.
    pub concurrency: u32,
    /// Messages per second (open loop); `None`: as fast as the senders go (closed loop).
    pub rate: Option<f64>,
    pub payload_bytes: usize,
    /// Messages carry ordering key `k<seq mod n>` (for ordered endpoints); `None`: no key.
    pub ordering_keys: Option<u32>,
    /// Post each payload to this ingest URL (as a provider would) instead of the message API;
    /// `Some("")` until the source is made.
    pub ingest_url: Option<String>,
}

/// Counters the progress line reads while the load runs.
#[derive(Debug, Default)]
pub struct LoadCounters {
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub api_errors: AtomicU64,
}

/// What the senders achieved.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Ids of the messages Herald answered 202 for.
    pub accepted_ids: Vec<String>,
    pub api_errors: u64,
    /// The first API error, to show what went wrong.
    pub first_error: Option<String>,
    /// Bench time the first message was (scheduled to be) sent, nanoseconds.
    pub started: u64,
    /// Bench time of the last 202, nanoseconds.
    pub last_accepted: u64,
    /// How long each accepted send took to be answered (request start to answer), ns.
    pub answer_times: Vec<u64>,
    /// Each accepted message's sequence number and the bench time of its 202, ns.
    pub acks: Vec<(u64, u64)>,
}

/// Sends the plan's messages to `app_id` and returns once every sender is done.
pub async fn run(
    client: Arc<HeraldClient>,
    app_id: String,
    plan: &LoadPlan,
    clock: BenchClock,
    counters: Arc<LoadCounters>,
) -> LoadOutcome {
    let app_id: Arc<str> = app_id.into();
    let next = Arc::new(AtomicU64::new(0));
    let started = clock.now();
    let senders = u64::from(plan.concurrency).min(plan.messages);
    let mut tasks = JoinSet::new();
    for _ in 0..senders {
        let sender = Sender {
            client: client.clone(),
            app_id: app_id.clone(),
            plan: plan.clone(),
            clock,
            started,
            next: next.clone(),
            counters: counters.clone(),
        };
        tasks.spawn(sender.run());
    }
    let mut outcome = LoadOutcome { started, ..LoadOutcome::default() };
    while let Some(joined) = tasks.join_next().await {
        // A sender can't panic short of a bug; its messages then simply count as not accepted.
        let Ok(part) = joined else { continue };
        outcome.accepted_ids.extend(part.accepted_ids);
        outcome.api_errors += part.api_errors;
        outcome.first_error = outcome.first_error.or(part.first_error);
        outcome.last_accepted = outcome.last_accepted.max(part.last_accepted);
        outcome.answer_times.extend(part.answer_times);
        outcome.acks.extend(part.acks);
    }
    outcome
}

/// One sender task: takes the next sequence number until all are taken.
struct Sender {
    client: Arc<HeraldClient>,
    app_id: Arc<str>,
    plan: LoadPlan,
    clock: BenchClock,
    started: u64,
    /// The next sequence number to send, shared by all senders.
    next: Arc<AtomicU64>,
    counters: Arc<LoadCounters>,
}

impl Sender {
    async fn run(self) -> LoadOutcome {
        let mut outcome = LoadOutcome::default();
        loop {
            let seq = self.next.fetch_add(1, Ordering::Relaxed);
            if seq >= self.plan.messages {
                return outcome;
            }
            let send_time = match self.plan.rate {
                Some(rate) => {
                    let at = self.started + (seq as f64 / rate * 1e9) as u64;
                    self.clock.sleep_until(at).await;
                    at
                }
                None => self.clock.now(),
            };
            self.counters.sent.fetch_add(1, Ordering::Relaxed);
            let asked = self.clock.now();
            let sent = match &self.plan.ingest_url {
                Some(url) => {
                    let body = payload(seq, send_time, self.plan.payload_bytes);
                    self.client.send_event(url, &format!("bench_evt_{seq}"), body).await
                }
                None => {
                    let body = message_body(seq, send_time, self.plan.payload_bytes, self.plan.ordering_keys);
                    self.client.send_message(&self.app_id, body).await
                }
            };
            match sent {
                Ok(id) => {
                    self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    outcome.accepted_ids.push(id);
                    outcome.last_accepted = self.clock.now();
                    outcome.answer_times.push(outcome.last_accepted.saturating_sub(asked));
                    outcome.acks.push((seq, outcome.last_accepted));
                }
                Err(error) => {
                    self.counters.api_errors.fetch_add(1, Ordering::Relaxed);
                    outcome.api_errors += 1;
                    outcome.first_error.get_or_insert_with(|| format!("{error:#}"));
                }
            }
        }
    }
}

/// The payload of message `seq` alone (an ingest run posts it as the provider's body).
fn payload(seq: u64, send_time: u64, payload_bytes: usize) -> Vec<u8> {
    let bare = format!(r#"{{"seq":{seq},"t":{send_time},"pad":""}}"#);
    let pad = "x".repeat(payload_bytes.saturating_sub(bare.len()));
    format!(r#"{{"seq":{seq},"t":{send_time},"pad":"{pad}"}}"#).into_bytes()
}

/// The request body of message `seq`: its payload is `{"seq":…,"t":…,"pad":"…"}`, padded
/// to `payload_bytes` where that is longer than the payload without padding; with
/// `ordering_keys`, the message's `orderingKey` is `k<seq mod keys>`.
fn message_body(seq: u64, send_time: u64, payload_bytes: usize, ordering_keys: Option<u32>) -> Vec<u8> {
    let bare = format!(r#"{{"seq":{seq},"t":{send_time},"pad":""}}"#);
    let pad = "x".repeat(payload_bytes.saturating_sub(bare.len()));
    let key = ordering_keys
        .map(|keys| format!(r#","orderingKey":"k{}""#, seq % u64::from(keys.max(1))))
        .unwrap_or_default();
    format!(r#"{{"eventType":"bench.message"{key},"payload":{{"seq":{seq},"t":{send_time},"pad":"{pad}"}}}}"#)
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_padded_to_the_requested_size() {
        let body = message_body(7, 123_456_789, 100, None);
        let value: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let payload = serde_json::to_string(&value["payload"]).expect("serialise");
        assert_eq!(payload.len(), 100);
        assert_eq!(value["payload"]["t"], 123_456_789);
        // A size below the bare payload is a minimum, not an error.
        let small: serde_json::Value = serde_json::from_slice(&message_body(7, 1, 5, None)).expect("JSON");
        assert_eq!(small["payload"]["pad"], "");
        assert!(small.get("orderingKey").is_none());
    }

    #[test]
    fn ordered_runs_spread_messages_over_their_keys() {
        let keyed: serde_json::Value =
            serde_json::from_slice(&message_body(23, 1, 5, Some(20))).expect("JSON");
        assert_eq!(keyed["orderingKey"], "k3");
    }
}
