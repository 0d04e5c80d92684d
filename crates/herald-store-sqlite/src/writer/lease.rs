//! Leasing due deliveries and releasing leases, inside the writer's transaction.

use herald_core::version::PayloadVersion;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::delivery::{DeliveryId, DeliveryStatus, Envelope, LeaseRequest, LeasedDelivery, Trigger};
use herald_core::name::EventTypeName;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::lanes::{self, LaneCursor};
use super::sql_error;
use crate::rows::{corrupt, to_micros};

/// How many due deliveries in no lane one lease looks at before taking at most `per_endpoint`
/// of each endpoint; bounds the work of a lease when one endpoint has a large backlog.
const LEASE_SCAN: i64 = 4096;

/// A message's event type, payload, payload version and envelope; `None` when the message is gone.
type MessageParts = Option<(String, Option<Vec<u8>>, i64, Option<String>)>;

/// A leased row, before its message is read.
struct Row {
    id: DeliveryId,
    msg_id: String,
    app_id: String,
    endpoint_id: String,
    attempts: i64,
    trigger: i64,
    in_lane: bool,
}

pub(super) fn lease(
    conn: &Connection,
    request: &LeaseRequest,
    lease_id: i64,
    cursor: &mut LaneCursor,
) -> Result<Vec<LeasedDelivery>, StoreError> {
    let now = to_micros(request.now);
    // Status codes are literals in these statements (1 pending, 3 sending): the partial
    // indexes on due and on leased deliveries serve only queries that name their status.
    // Deliveries whose lease ran out (their worker died) become due again.
    conn.prepare_cached(
        "UPDATE deliveries SET status = 1, lease_id = NULL, lease_expires_at = NULL
         WHERE status = 3 AND lease_expires_at <= ?",
    )
    .and_then(|mut update| update.execute([now]))
    .map_err(sql_error)?;

    // The heads of ordered lanes that may go now; the deliveries behind them are not read.
    let lane_heads: Vec<DeliveryId> = lanes::heads(conn, cursor, now)?
        .into_iter()
        .filter(|head| head.leasable && !request.exclude.iter().any(|e| e.as_str() == head.endpoint_id))
        .map(|head| head.id)
        .collect();
    let lane_heads = serde_json::to_string(&lane_heads).map_err(|e| StoreError::Backend(Box::new(e)))?;

    let mut values: Vec<Value> = vec![
        Value::Integer(lease_id),
        Value::Integer(to_micros(request.lease_until)),
        Value::Integer(now),
        Value::Integer(now),
    ];
    let mut exclude = String::new();
    if !request.exclude.is_empty() {
        exclude = format!("AND endpoint_id NOT IN ({})", vec!["?"; request.exclude.len()].join(", "));
        values.extend(request.exclude.iter().map(|endpoint| Value::Text(endpoint.to_string())));
    }
    values.extend([
        Value::Integer(LEASE_SCAN),
        Value::Text(lane_heads),
        Value::Integer(i64::from(request.per_endpoint)),
        Value::Integer(i64::from(request.limit)),
    ]);
    // Deliveries in no lane are read in due order through `deliveries_due` (which holds only
    // those); the lanes' heads come from the search above. Both compete for the endpoint's
    // share and the batch in due order.
    let sql = format!(
        "UPDATE deliveries SET status = 3, lease_id = ?, lease_expires_at = ?, updated_at = ?
         WHERE id IN (
           SELECT id FROM (
             SELECT id, next_attempt_at,
                    ROW_NUMBER() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at, id) AS nth
             FROM (SELECT * FROM (SELECT id, endpoint_id, next_attempt_at FROM deliveries
                                  WHERE status = 1 AND lane IS NULL AND next_attempt_at <= ? {exclude}
                                  ORDER BY next_attempt_at LIMIT ?)
                   UNION ALL
                   SELECT id, endpoint_id, next_attempt_at FROM deliveries
                   WHERE id IN (SELECT value FROM json_each(?))))
           WHERE nth <= ? ORDER BY next_attempt_at, id LIMIT ?)
         RETURNING id, msg_id, app_id, endpoint_id, attempts, trigger, lane IS NOT NULL"
    );
    let mut update = conn.prepare_cached(&sql).map_err(sql_error)?;
    let rows = update
        .query_map(params_from_iter(values), |row| {
            Ok(Row {
                id: row.get(0)?,
                msg_id: row.get(1)?,
                app_id: row.get(2)?,
                endpoint_id: row.get(3)?,
                attempts: row.get(4)?,
                trigger: row.get(5)?,
                in_lane: row.get(6)?,
            })
        })
        .map_err(sql_error)?
        .collect::<Result<Vec<Row>, _>>()
        .map_err(sql_error)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }

    // The messages' event types and payloads, read once per message.
    let mut messages: HashMap<String, MessageParts> = HashMap::new();
    let mut select = conn
        .prepare_cached("SELECT event_type, payload, payload_version, envelope FROM messages WHERE id = ?")
        .map_err(sql_error)?;
    let mut leased = Vec::with_capacity(rows.len());
    for row in rows {
        if !messages.contains_key(&row.msg_id) {
            let message = select
                .query_row([&row.msg_id], |found| {
                    Ok((found.get(0)?, found.get(1)?, found.get(2)?, found.get(3)?))
                })
                .optional()
                .map_err(sql_error)?;
            messages.insert(row.msg_id.clone(), message);
        }
        // A message deleted with its application: its deliveries went too.
        let Some((event_type, payload, version, envelope)) = &messages[&row.msg_id] else {
            continue;
        };
        leased.push(LeasedDelivery {
            delivery_id: row.id,
            lease_id,
            msg_id: row.msg_id.parse().map_err(|e| corrupt("msg_id", e))?,
            app_id: row.app_id.parse().map_err(|e| corrupt("app_id", e))?,
            endpoint_id: row.endpoint_id.parse().map_err(|e| corrupt("endpoint_id", e))?,
            event_type: EventTypeName::parse(event_type).map_err(|e| corrupt("event_type", e))?,
            payload: payload.clone(),
            attempt: u32::try_from(row.attempts + 1).map_err(|e| corrupt("attempts", e))?,
            trigger: Trigger::from_code(row.trigger).ok_or_else(|| corrupt("trigger", row.trigger))?,
            in_lane: row.in_lane,
            payload_version: PayloadVersion::from_stored(*version)
                .ok_or_else(|| corrupt("payload_version", version))?,
            envelope: envelope.as_deref().map(envelope_of).transpose()?,
        });
    }
    Ok(leased)
}

/// Reads a stored envelope.
fn envelope_of(text: &str) -> Result<Envelope, StoreError> {
    Envelope::from_text(text).ok_or_else(|| corrupt("envelope", "not an envelope"))
}

/// Makes a leased delivery due again at `due`, if the lease still holds.
pub(super) fn release(
    conn: &Connection,
    delivery: DeliveryId,
    lease_id: i64,
    due: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let released = conn
        .prepare_cached(
            "UPDATE deliveries SET status = ?, next_attempt_at = ?, lease_id = NULL, lease_expires_at = NULL
             WHERE id = ? AND lease_id = ? AND status = ?",
        )
        .and_then(|mut update| {
            update.execute(params![
                DeliveryStatus::Pending.code(),
                to_micros(due),
                delivery,
                lease_id,
                DeliveryStatus::Sending.code(),
            ])
        })
        .map_err(sql_error)?;
    Ok(released > 0)
}
