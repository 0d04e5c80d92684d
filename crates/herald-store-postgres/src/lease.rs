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

/// The most lanes one lease looks at for their heads.
const LANE_SCAN: i64 = 1024;

/// Where this node's next search for ordered lanes' heads starts: after this endpoint and
/// lane, or at the first lane when `None`. When more than [`LANE_SCAN`] lanes have work, each
/// lease goes on after the last lane the previous one looked at, so every lane has its turn.
/// Clones of the store (one per node) share it.
#[derive(Debug, Default, Clone)]
pub(crate) struct LaneCursor(std::sync::Arc<std::sync::Mutex<Option<(String, String)>>>);

/// The heads of ordered lanes with work after the lane (`$endpoint`, `$lane`), as the table
/// `heads` (n: 1, 2, … in lane order). A lane's head is its first holder by id (pending,
/// sending or held) in `deliveries_lane_holders`; the search skips from one lane to the next
/// (the next key of the endpoint, else the first lane of the next endpoint: two index seeks
/// per lane), so the messages queued behind a head are never read. A macro, so that
/// statements can append to it with `concat!` and name their own parameters.
macro_rules! heads_cte {
    ($endpoint:literal, $lane:literal) => {
        concat!(
            "WITH RECURSIVE heads(n, endpoint_id, lane, id, status, next_attempt_at) AS (
    SELECT 1::bigint, endpoint_id, lane, id, status, next_attempt_at FROM deliveries WHERE id = COALESCE(
        (SELECT id FROM deliveries
         WHERE lane IS NOT NULL AND (status IN (1, 3) OR held)
           AND endpoint_id = ",
            $endpoint,
            " AND lane > ",
            $lane,
            " ORDER BY lane, id LIMIT 1),
        (SELECT id FROM deliveries
         WHERE lane IS NOT NULL AND (status IN (1, 3) OR held)
           AND endpoint_id > ",
            $endpoint,
            " ORDER BY endpoint_id, lane, id LIMIT 1))
    UNION ALL
    SELECT h.n + 1, d.endpoint_id, d.lane, d.id, d.status, d.next_attempt_at
    FROM heads h JOIN deliveries d ON d.id = COALESCE(
        (SELECT p.id FROM deliveries p
         WHERE p.lane IS NOT NULL AND (p.status IN (1, 3) OR p.held)
           AND p.endpoint_id = h.endpoint_id AND p.lane > h.lane ORDER BY p.lane, p.id LIMIT 1),
        (SELECT p.id FROM deliveries p
         WHERE p.lane IS NOT NULL AND (p.status IN (1, 3) OR p.held)
           AND p.endpoint_id > h.endpoint_id ORDER BY p.endpoint_id, p.lane, p.id LIMIT 1))
)"
        )
    };
}

/// One statement (one round trip, as without lanes): the heads of up to `$9` lanes after the
/// node's cursor (`$7`, `$8`) are found first (`scanned`). Then pending deliveries in no lane
/// whose time has come, those heads that are pending and due, and sending deliveries whose
/// lease expired are all due; the last keep their attempt count (an attempt that was never
/// recorded does not count). Each kind is read through its own partial index. A head is
/// checked again as it is locked (still pending and due, still its lane's first holder),
/// because another node may have moved the lane on since the statement's snapshot. Every row
/// also says how many lanes were looked at and the last one (`scan_end`, also when nothing was
/// leased: then the lease columns are null), for the cursor.
const LEASE_SQL: &str = concat!(
    heads_cte!("$7", "$8"),
    ",
scanned AS MATERIALIZED (SELECT * FROM heads LIMIT $9),
scan_end AS (SELECT n AS lanes, endpoint_id AS last_endpoint, lane AS last_lane
             FROM scanned ORDER BY n DESC LIMIT 1),
lease AS (SELECT nextval('delivery_lease_ids') AS id),
due AS (
    SELECT d.id, d.endpoint_id, d.next_attempt_at FROM deliveries d
    WHERE d.status = 1 AND d.lane IS NULL AND d.next_attempt_at <= $1 AND d.endpoint_id <> ALL($2::text[])
    ORDER BY d.next_attempt_at, d.id LIMIT $3
    FOR NO KEY UPDATE OF d SKIP LOCKED
),
lane_heads AS (
    SELECT d.id, d.endpoint_id, d.next_attempt_at FROM deliveries d
    WHERE d.id IN (SELECT id FROM scanned WHERE status = 1 AND next_attempt_at <= $1)
      AND d.status = 1 AND d.next_attempt_at <= $1 AND d.endpoint_id <> ALL($2::text[])
      AND NOT EXISTS (
          SELECT 1 FROM deliveries p
          WHERE p.endpoint_id = d.endpoint_id AND p.lane = d.lane AND p.id < d.id
            AND p.lane IS NOT NULL AND (p.status IN (1, 3) OR p.held))
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
    FROM (SELECT * FROM due UNION ALL SELECT * FROM lane_heads UNION ALL SELECT * FROM expired)
         AS candidates
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
SELECT s.lanes, s.last_endpoint, s.last_lane,
       l.id, l.lease_id, l.msg_id, l.app_id, l.endpoint_id, l.attempts, l.trigger, l.in_lane,
       m.event_type, m.payload, m.payload_version, m.envelope
FROM (VALUES (1)) AS one(x)
LEFT JOIN scan_end s ON true
LEFT JOIN (leased l JOIN messages m ON m.id = l.msg_id) ON true
ORDER BY l.next_attempt_at, l.id"
);

pub(crate) async fn lease(
    store: &PostgresStore,
    request: &LeaseRequest,
) -> Result<Vec<LeasedDelivery>, StoreError> {
    if request.limit == 0 || request.per_endpoint == 0 {
        return Ok(Vec::new());
    }
    let exclude: Vec<String> = request.exclude.iter().map(ToString::to_string).collect();
    // Where this node's search for lanes' heads starts: after the last lane the previous lease
    // looked at when it looked at as many as it may, else at the first lane.
    let (endpoint, lane) =
        store.lanes.0.lock().map(|mut cursor| cursor.take()).unwrap_or_default().unwrap_or_default();
    let rows = sqlx::query(LEASE_SQL)
        .bind(request.now)
        .bind(exclude)
        .bind(scan_size(request))
        .bind(i64::from(request.per_endpoint))
        .bind(i64::from(request.limit))
        .bind(request.lease_until)
        .bind(endpoint)
        .bind(lane)
        .bind(LANE_SCAN)
        .fetch_all(&store.queue)
        .await
        .map_err(backend)?;
    if let Some(first) = rows.first()
        && get::<Option<i64>>(first, "lanes")?.is_some_and(|lanes| lanes >= LANE_SCAN)
        && let Ok(mut cursor) = store.lanes.0.lock()
    {
        *cursor = Some((get(first, "last_endpoint")?, get(first, "last_lane")?));
    }
    rows.iter()
        .filter(|row| get::<Option<i64>>(row, "id").is_ok_and(|id| id.is_some()))
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
    .execute(&store.queue)
    .await
    .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

/// The earliest time work may be due: a pending delivery in no lane, a lane's pending head
/// (not the deliveries waiting behind it, which are due but can't go), or a lease's expiry.
/// With more lanes than a lease looks at, the lanes count by their earliest pending delivery
/// instead (never later than the truth: the dispatcher then looks again at its next poll).
pub(crate) async fn next_due_at(store: &PostgresStore) -> Result<Option<DateTime<Utc>>, StoreError> {
    sqlx::query_scalar(concat!(
        heads_cte!("$1", "$2"),
        ", scanned AS (SELECT * FROM heads LIMIT $3)
        SELECT LEAST(
            (SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 1 AND lane IS NULL),
            CASE WHEN (SELECT COUNT(*) FROM scanned) >= $3
                 THEN (SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 1 AND lane IS NOT NULL)
                 ELSE (SELECT MIN(next_attempt_at) FROM scanned WHERE status = 1) END,
            (SELECT MIN(lease_expires_at) FROM deliveries WHERE status = 3))"
    ))
    .bind("")
    .bind("")
    .bind(LANE_SCAN)
    .fetch_one(&store.queue)
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
