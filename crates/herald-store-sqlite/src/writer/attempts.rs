//! Attempt records, written inside the writer's transaction: each moves its delivery on and
//! logs the attempt, but only while the record's lease is still the delivery's lease (a stale
//! worker's record returns false and writes nothing).

use std::collections::HashMap;

use herald_core::StoreError;
use herald_core::delivery::{AttemptRecord, DeliveryStatus, HealthRun};
use rusqlite::{Connection, params};

use super::{Batch, sql_error};
use crate::rows::to_micros;

pub(super) fn record(
    conn: &Connection,
    record: &AttemptRecord,
    batch: &mut Batch,
) -> Result<bool, StoreError> {
    let attempt = &record.attempt;
    let at = to_micros(attempt.created_at);
    let (status, next_at) = record.delivery_state();
    let next_at = to_micros(next_at);
    let settled = conn
        .prepare_cached(
            "UPDATE deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?,
                    lease_id = NULL, lease_expires_at = NULL, updated_at = ?, held = ?
             WHERE id = ? AND lease_id = ? AND status = ?",
        )
        .and_then(|mut update| {
            update.execute(params![
                status.code(),
                next_at,
                at,
                record.holds_lane(),
                record.delivery_id,
                record.lease_id,
                DeliveryStatus::Sending.code(),
            ])
        })
        .map_err(sql_error)?;
    if settled == 0 {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO attempts (id, msg_id, app_id, endpoint_id, url, status, response_status_code,
                               response, response_duration_ms, trigger, created_at, request, request_body)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .and_then(|mut insert| {
        insert.execute(params![
            attempt.id.as_str(),
            attempt.msg_id.as_str(),
            attempt.app_id.as_str(),
            attempt.endpoint_id.as_str(),
            &attempt.url,
            attempt.status.code(),
            i64::from(attempt.response_status_code),
            &attempt.response,
            attempt.response_duration_ms,
            attempt.trigger.code(),
            at,
            attempt.request.as_ref().map(herald_core::delivery::SentRequest::head_to_json),
            attempt.request.as_ref().and_then(|r| r.body.as_deref()),
        ])
    })
    .map_err(sql_error)?;
    // Endpoint health (a success clears the failing streak, a failure starts one) is applied
    // once per endpoint when the batch's records are in.
    batch
        .health
        .entry(attempt.endpoint_id.to_string())
        .or_default()
        .record(attempt.status == DeliveryStatus::Success, attempt.created_at);
    if record.disable_endpoint {
        conn.prepare_cached("UPDATE endpoints SET disabled = 1, updated_at = ? WHERE id = ?")
            .and_then(|mut update| update.execute(params![at, attempt.endpoint_id.as_str()]))
            .map_err(sql_error)?;
    }
    Ok(true)
}

/// Writes the endpoint health a batch of attempts left behind.
pub(super) fn apply_health(conn: &Connection, health: &HashMap<String, HealthRun>) -> Result<(), StoreError> {
    for (endpoint, state) in health {
        let execute = |sql: &str, since: Option<i64>| {
            conn.prepare_cached(sql).and_then(|mut update| match since {
                Some(since) => update.execute(params![since, endpoint]),
                None => update.execute([endpoint]),
            })
        };
        match (state.succeeded, state.failing_since.map(to_micros)) {
            (true, None) => execute(
                "UPDATE endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL",
                None,
            ),
            // Failing again after a success in this batch: the streak starts with that failure.
            (true, Some(since)) => {
                execute("UPDATE endpoints SET failing_since = ? WHERE id = ?", Some(since))
            }
            // Only failures: an existing streak goes on, or one starts.
            (false, Some(since)) => execute(
                "UPDATE endpoints SET failing_since = ? WHERE id = ? AND failing_since IS NULL",
                Some(since),
            ),
            (false, None) => continue,
        }
        .map_err(sql_error)?;
    }
    Ok(())
}
