//! Attempt records in shared transactions: records from many tasks are queued to one task,
//! which settles everything waiting in one transaction (three statements, one commit), so a
//! busy node pays one round trip and one WAL flush per batch instead of per attempt.
//!
//! When idle a record is written alone at once; under load the batch is whatever arrived while
//! the previous one was being written (at most [`MAX_BATCH`]). Each record is still fenced by
//! its lease: a stale record settles nothing and writes no attempt, and only its caller hears
//! `false`.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::delivery::{AttemptRecord, DeliveryId, DeliveryStatus, HealthRun};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::rows::{status_code, trigger_code};
use crate::{backend, retry_transient};

/// The most records settled in one transaction.
const MAX_BATCH: usize = 256;
/// Records that may wait; callers wait when it is full (back-pressure).
const QUEUE_CAPACITY: usize = 4096;

type Job = (AttemptRecord, oneshot::Sender<Result<bool, StoreError>>);

/// Handle for queueing records to the batching task.
#[derive(Debug, Clone)]
pub(crate) struct Records {
    queue: mpsc::Sender<Job>,
}

impl Records {
    /// Starts the task; it ends when every handle is dropped.
    pub(crate) fn start(pool: PgPool) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(pool, receiver));
        Self { queue }
    }

    /// Records an attempt; `false` when its lease was no longer the delivery's.
    pub(crate) async fn record(&self, record: AttemptRecord) -> Result<bool, StoreError> {
        let (reply, result) = oneshot::channel();
        let stopped = || StoreError::Backend("the attempt recorder has stopped".into());
        self.queue.send((record, reply)).await.map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }
}

async fn run(pool: PgPool, mut receiver: mpsc::Receiver<Job>) {
    let mut carried: Option<Job> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match receiver.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let mut jobs = vec![first];
        let mut ids: HashSet<DeliveryId> = HashSet::from([jobs[0].0.delivery_id]);
        while jobs.len() < MAX_BATCH {
            let Ok(job) = receiver.try_recv() else { break };
            // A delivery appears once per batch; a second record for it waits for the next.
            if !ids.insert(job.0.delivery_id) {
                carried = Some(job);
                break;
            }
            jobs.push(job);
        }
        let records: Vec<&AttemptRecord> = jobs.iter().map(|(record, _)| record).collect();
        match retry_transient(|| settle(&pool, &records)).await {
            Ok(settled) => {
                for (record, reply) in jobs {
                    drop(reply.send(Ok(settled.contains(&record.delivery_id))));
                }
            }
            Err(error) => {
                // Nothing was written: the leases expire and the deliveries are due again.
                let message = error.to_string();
                tracing::error!(error = %message, records = jobs.len(), "could not record a batch of attempts");
                for (_, reply) in jobs {
                    drop(reply.send(Err(StoreError::Backend(message.clone().into()))));
                }
            }
        }
    }
}

/// How a batch leaves one endpoint: its health run, and whether a `410 Gone` disables it.
#[derive(Debug, Default)]
struct EndpointChange {
    health: HealthRun,
    disable: bool,
    /// The latest attempt's time (the endpoint's `updated_at` when disabled).
    at: Option<DateTime<Utc>>,
}

/// Settles the records in one transaction; returns the deliveries whose lease was current.
async fn settle(pool: &PgPool, records: &[&AttemptRecord]) -> Result<HashSet<DeliveryId>, StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    // 1. The fenced updates: only deliveries still under the record's lease move on.
    let mut ids = Vec::with_capacity(records.len());
    let mut leases = Vec::with_capacity(records.len());
    let mut statuses = Vec::with_capacity(records.len());
    let mut dues = Vec::with_capacity(records.len());
    let mut ats = Vec::with_capacity(records.len());
    let mut helds = Vec::with_capacity(records.len());
    for record in records {
        let (status, due) = record.delivery_state();
        ids.push(record.delivery_id);
        leases.push(record.lease_id);
        statuses.push(status_code(status));
        dues.push(due);
        ats.push(record.attempt.created_at);
        helds.push(record.holds_lane());
    }
    let settled: Vec<DeliveryId> = sqlx::query_scalar(
        "UPDATE deliveries d
         SET status = i.status, attempts = d.attempts + 1, next_attempt_at = i.due,
             lease_id = NULL, lease_expires_at = NULL, updated_at = i.at, held = i.held
         FROM unnest($1::bigint[], $2::bigint[], $3::smallint[], $4::timestamptz[], $5::timestamptz[],
                     $6::boolean[])
              AS i(id, lease_id, status, due, at, held)
         WHERE d.id = i.id AND d.lease_id = i.lease_id AND d.status = 3
         RETURNING d.id",
    )
    .bind(&ids)
    .bind(&leases)
    .bind(&statuses)
    .bind(&dues)
    .bind(&ats)
    .bind(&helds)
    .fetch_all(&mut *tx)
    .await
    .map_err(backend)?;
    let settled: HashSet<DeliveryId> = settled.into_iter().collect();
    let kept: Vec<&&AttemptRecord> = records.iter().filter(|r| settled.contains(&r.delivery_id)).collect();
    if kept.is_empty() {
        tx.rollback().await.map_err(backend)?;
        return Ok(settled);
    }

    // 2. The attempts of the settled records.
    let column = |f: fn(&AttemptRecord) -> String| kept.iter().map(|r| f(r)).collect::<Vec<String>>();
    let statuses: Vec<i16> = kept.iter().map(|r| status_code(r.attempt.status)).collect();
    let codes: Vec<i32> = kept.iter().map(|r| i32::from(r.attempt.response_status_code)).collect();
    let durations: Vec<i64> = kept.iter().map(|r| r.attempt.response_duration_ms).collect();
    let triggers: Vec<i16> = kept.iter().map(|r| trigger_code(r.attempt.trigger)).collect();
    let created: Vec<DateTime<Utc>> = kept.iter().map(|r| r.attempt.created_at).collect();
    let requests: Vec<Option<String>> =
        kept.iter().map(|r| r.attempt.request.as_ref().map(|q| without_nul(&q.head_to_json()))).collect();
    let request_bodies: Vec<Option<Vec<u8>>> =
        kept.iter().map(|r| r.attempt.request.as_ref().and_then(|q| q.body.clone())).collect();
    sqlx::query(
        "INSERT INTO attempts (id, msg_id, app_id, endpoint_id, url, status, response_status_code,
                               response, response_duration_ms, trigger, created_at, request, request_body)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[],
                              $7::int[], $8::text[], $9::bigint[], $10::smallint[], $11::timestamptz[],
                              $12::text[], $13::bytea[])",
    )
    .bind(column(|r| r.attempt.id.to_string()))
    .bind(column(|r| r.attempt.msg_id.to_string()))
    .bind(column(|r| r.attempt.app_id.to_string()))
    .bind(column(|r| r.attempt.endpoint_id.to_string()))
    .bind(column(|r| without_nul(&r.attempt.url)))
    .bind(&statuses)
    .bind(&codes)
    .bind(column(|r| without_nul(&r.attempt.response)))
    .bind(&durations)
    .bind(&triggers)
    .bind(&created)
    .bind(requests)
    .bind(request_bodies)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;

    // 3. Endpoint health, once per endpoint, written only where it changes (so an endpoint
    // row is not locked by every batch): a success clears the failing streak, a failure
    // starts one or lets it run on, a `410 Gone` disables. Endpoints in id order.
    let mut health: BTreeMap<String, EndpointChange> = BTreeMap::new();
    for record in &kept {
        let attempt = &record.attempt;
        let state = health.entry(attempt.endpoint_id.to_string()).or_default();
        state.health.record(attempt.status == DeliveryStatus::Success, attempt.created_at);
        state.disable |= record.disable_endpoint;
        state.at = Some(attempt.created_at);
    }
    let endpoints: Vec<&String> = health.keys().collect();
    let succeeded: Vec<bool> = health.values().map(|h| h.health.succeeded).collect();
    let since: Vec<Option<DateTime<Utc>>> = health.values().map(|h| h.health.failing_since).collect();
    let disable: Vec<bool> = health.values().map(|h| h.disable).collect();
    let at: Vec<Option<DateTime<Utc>>> = health.values().map(|h| h.at).collect();
    sqlx::query(
        "UPDATE endpoints e
         SET failing_since = CASE WHEN h.succeeded THEN h.since ELSE COALESCE(e.failing_since, h.since) END,
             disabled = e.disabled OR h.disable,
             updated_at = CASE WHEN h.disable THEN h.at ELSE e.updated_at END
         FROM unnest($1::text[], $2::bool[], $3::timestamptz[], $4::bool[], $5::timestamptz[])
              AS h(id, succeeded, since, disable, at)
         WHERE e.id = h.id
           AND (h.disable
                OR (h.succeeded AND e.failing_since IS DISTINCT FROM h.since)
                OR (NOT h.succeeded AND e.failing_since IS NULL))",
    )
    .bind(&endpoints)
    .bind(&succeeded)
    .bind(&since)
    .bind(&disable)
    .bind(&at)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(settled)
}

/// PostgreSQL text can't hold NUL characters, and a receiver's response body may contain
/// them; they are replaced so that such a response can't make its attempt unrecordable (and
/// its delivery stuck in a loop of expiring leases).
fn without_nul(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_replaced() {
        assert_eq!(without_nul("a\0b"), "a\u{FFFD}b");
        assert_eq!(without_nul("plain"), "plain");
    }
}
