//! The delivery queue shared by every node: leasing due deliveries and releasing leases,
//! fenced by the lease id (attempts are recorded in `records`).
//!
//! A lease is one statement: due rows are locked with `FOR NO KEY UPDATE SKIP LOCKED` (rows
//! another node is leasing at that moment are passed over, never waited for), at most
//! `per_endpoint` of them per endpoint are picked, and they are marked as sending under a lease
//! id drawn from a sequence, so the id is new across every node sharing the database.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::delivery::{DeliveryId, LeaseRequest, LeasedDelivery};
use herald_core::name::EventTypeName;
use herald_core::version::PayloadVersion;

use crate::rows::{corrupt, get, parse, parse_trigger};
use crate::{PostgresStore, backend};

/// The most due rows one lease call locks before taking at most `per_endpoint` of each
/// endpoint. Rows locked but not taken stay invisible to other nodes only until the statement
/// ends; the bound keeps that window (and the row-lock writes) small when one endpoint has a
/// large backlog.
const LEASE_SCAN: i64 = 4096;

/// How many due rows to lock for a request: exactly `limit` when the per-endpoint share can't
/// bind, else a few times `limit` so that other endpoints' rows are within reach.
fn scan_size(request: &LeaseRequest) -> i64 {
    let limit = i64::from(request.limit);
    if request.per_endpoint >= request.limit {
        return limit;
    }
    limit.saturating_mul(8).min(LEASE_SCAN).max(limit)
}

/// Pending deliveries whose time has come and sending ones whose lease expired are both due;
/// the latter keep their attempt count (an attempt that was never recorded does not count).
/// The two kinds are read through their own partial indexes, in due order.
const LEASE_SQL: &str = "
WITH lease AS (SELECT nextval('delivery_lease_ids') AS id),
due AS (
    SELECT d.id, d.endpoint_id, d.next_attempt_at FROM deliveries d
    WHERE d.status = 1 AND d.next_attempt_at <= $1 AND d.endpoint_id <> ALL($2::text[])
      AND (d.lane IS NULL OR NOT EXISTS (
          SELECT 1 FROM deliveries p
          WHERE p.endpoint_id = d.endpoint_id AND p.lane = d.lane AND p.id < d.id
            AND (p.status IN (1, 3) OR p.held)))
    ORDER BY d.next_attempt_at, d.id LIMIT $3
    FOR NO KEY UPDATE OF d SKIP LOCKED
),
expired AS (
    SELECT id, endpoint_id, next_attempt_at FROM deliveries
    WHERE status = 3 AND lease_expires_at <= $1 AND endpoint_id <> ALL($2::text[])
    ORDER BY lease_expires_at, id LIMIT $3
    FOR NO KEY UPDATE SKIP LOCKED
),
ranked AS (
    SELECT id, next_attempt_at,
           row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at, id) AS nth
    FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) AS candidates
),
chosen AS (
    SELECT id FROM ranked WHERE nth <= $4 ORDER BY next_attempt_at, id LIMIT $5
),
leased AS (
    UPDATE deliveries d
    SET status = 3, lease_id = (SELECT id FROM lease), lease_expires_at = $6, updated_at = $1
    FROM chosen WHERE d.id = chosen.id
    RETURNING d.id, d.lease_id, d.msg_id, d.app_id, d.endpoint_id, d.attempts, d.trigger,
              d.next_attempt_at, d.lane IS NOT NULL AS in_lane
)
SELECT l.id, l.lease_id, l.msg_id, l.app_id, l.endpoint_id, l.attempts, l.trigger, l.in_lane,
       m.event_type, m.payload, m.payload_version, m.envelope
FROM leased l JOIN messages m ON m.id = l.msg_id
ORDER BY l.next_attempt_at, l.id";

pub(crate) async fn lease(
    store: &PostgresStore,
    request: &LeaseRequest,
) -> Result<Vec<LeasedDelivery>, StoreError> {
    if request.limit == 0 || request.per_endpoint == 0 {
        return Ok(Vec::new());
    }
    let exclude: Vec<String> = request.exclude.iter().map(ToString::to_string).collect();
    let rows = sqlx::query(LEASE_SQL)
        .bind(request.now)
        .bind(exclude)
        .bind(scan_size(request))
        .bind(i64::from(request.per_endpoint))
        .bind(i64::from(request.limit))
        .bind(request.lease_until)
        .fetch_all(&store.pool)
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|row| {
            let attempts: i32 = get(row, "attempts")?;
            Ok(LeasedDelivery {
                delivery_id: get(row, "id")?,
                lease_id: get(row, "lease_id")?,
                msg_id: parse(row, "msg_id")?,
                app_id: parse(row, "app_id")?,
                endpoint_id: parse(row, "endpoint_id")?,
                event_type: EventTypeName::parse(&get::<String>(row, "event_type")?)
                    .map_err(|e| corrupt("event_type", e))?,
                payload: get(row, "payload")?,
                attempt: u32::try_from(attempts).map_err(|e| corrupt("attempts", e))?.saturating_add(1),
                trigger: parse_trigger(row, "trigger")?,
                in_lane: get(row, "in_lane")?,
                payload_version: {
                    let number: i32 = get(row, "payload_version")?;
                    PayloadVersion::from_stored(i64::from(number))
                        .ok_or_else(|| corrupt("payload_version", number))?
                },
                envelope: crate::messages::envelope(get(row, "envelope")?)?,
            })
        })
        .collect()
}

pub(crate) async fn release(
    store: &PostgresStore,
    delivery: DeliveryId,
    lease_id: i64,
    due: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE deliveries SET status = 1, next_attempt_at = $1, lease_id = NULL, lease_expires_at = NULL
         WHERE id = $2 AND lease_id = $3 AND status = 3",
    )
    .bind(due)
    .bind(delivery)
    .bind(lease_id)
    .execute(&store.pool)
    .await
    .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

/// The earliest time work may be due: a pending delivery's time, or a lease's expiry.
pub(crate) async fn next_due_at(store: &PostgresStore) -> Result<Option<DateTime<Utc>>, StoreError> {
    sqlx::query_scalar(
        "SELECT LEAST((SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 1),
                      (SELECT MIN(lease_expires_at) FROM deliveries WHERE status = 3))",
    )
    .fetch_one(&store.pool)
    .await
    .map_err(backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(limit: u32, per_endpoint: u32) -> LeaseRequest {
        let now = Utc::now();
        LeaseRequest { now, limit, per_endpoint, exclude: Vec::new(), lease_until: now }
    }

    #[test]
    fn scans_only_as_far_as_the_per_endpoint_share_needs() {
        assert_eq!(scan_size(&request(100, 100)), 100);
        assert_eq!(scan_size(&request(100, 10)), 800);
        assert_eq!(scan_size(&request(512, 20)), LEASE_SCAN);
        assert_eq!(scan_size(&request(10_000, 20)), 10_000, "never fewer rows than the limit");
    }
}
