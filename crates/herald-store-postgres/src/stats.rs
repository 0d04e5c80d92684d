//! Summaries for operators on PostgreSQL: the delivery queue for the metrics gauges, an
//! application's statistics, and attempt retention. Every count is read from an index.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::delivery::DeliveryStatus;
use herald_core::id::{ApplicationId, EndpointId};
use herald_core::stats::{ApplicationStats, LaneState, QUEUE_COUNT_CAP, QueueStats};
use sqlx::postgres::PgRow;

use crate::rows::{corrupt, get, parse};
use crate::{PostgresStore, backend};

/// Reads a `COUNT(*)` column as `u64`.
fn count(row: &PgRow, name: &str) -> Result<u64, StoreError> {
    Ok(u64::try_from(get::<i64>(row, name)?).unwrap_or_default())
}

/// The queue through the partial indexes `deliveries_due` and `deliveries_due_in_lanes`
/// (pending in no lane, pending in one) and `deliveries_leased`, each count stopping at the
/// cap; the endpoint counts scan the endpoints table (one row per endpoint).
const QUEUE_SQL: &str = "
SELECT
  (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
    WHERE status = 1 AND lane IS NULL AND next_attempt_at <= $1 LIMIT $2) AS q) +
  (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
    WHERE status = 1 AND lane IS NOT NULL AND next_attempt_at <= $1 LIMIT $2) AS q) AS due,
  (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
    WHERE status = 1 AND lane IS NULL AND next_attempt_at > $1 LIMIT $2) AS q) +
  (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
    WHERE status = 1 AND lane IS NOT NULL AND next_attempt_at > $1 LIMIT $2) AS q) AS scheduled,
  (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
    WHERE status = 3 AND lease_expires_at <= $1 LIMIT $2) AS q) AS expired,
  (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
    WHERE status = 3 AND lease_expires_at > $1 LIMIT $2) AS q) AS leased,
  LEAST(
    (SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 1 AND lane IS NULL AND next_attempt_at <= $1),
    (SELECT MIN(next_attempt_at) FROM deliveries
     WHERE status = 1 AND lane IS NOT NULL AND next_attempt_at <= $1)) AS oldest_pending,
  (SELECT MIN(lease_expires_at) FROM deliveries WHERE status = 3 AND lease_expires_at <= $1)
    AS oldest_expiry,
  (SELECT COUNT(*) FROM endpoints WHERE disabled) AS disabled,
  (SELECT COUNT(*) FROM endpoints WHERE NOT disabled AND failing_since IS NOT NULL) AS failing,
  (SELECT COUNT(*) FROM endpoints WHERE circuit_open_until > $1) AS circuits,
  (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE lane IS NOT NULL AND held LIMIT $2) AS q)
    AS lanes_held,
  (SELECT MIN(created_at) FROM deliveries WHERE lane IS NOT NULL AND (status IN (1, 3) OR held))
    AS oldest_lane";

pub(crate) async fn queue(store: &PostgresStore, now: DateTime<Utc>) -> Result<QueueStats, StoreError> {
    let cap = i64::try_from(QUEUE_COUNT_CAP).unwrap_or(i64::MAX);
    let row = sqlx::query(QUEUE_SQL).bind(now).bind(cap).fetch_one(&store.pool).await.map_err(backend)?;
    let oldest_pending: Option<DateTime<Utc>> = get(&row, "oldest_pending")?;
    let oldest_expiry: Option<DateTime<Utc>> = get(&row, "oldest_expiry")?;
    Ok(QueueStats {
        due: (count(&row, "due")? + count(&row, "expired")?).min(QUEUE_COUNT_CAP),
        scheduled: count(&row, "scheduled")?.min(QUEUE_COUNT_CAP),
        leased: count(&row, "leased")?,
        oldest_due_at: [oldest_pending, oldest_expiry].into_iter().flatten().min(),
        endpoints_disabled: count(&row, "disabled")?,
        endpoints_failing: count(&row, "failing")?,
        circuits_open: count(&row, "circuits")?,
        lanes_held: count(&row, "lanes_held")?,
        oldest_lane_message_at: get(&row, "oldest_lane")?,
    })
}

/// The endpoint's lanes with work, through `deliveries_lane_holders`.
pub(crate) async fn lanes(
    store: &PostgresStore,
    endpoint: &EndpointId,
    limit: u32,
) -> Result<Vec<LaneState>, StoreError> {
    let rows = sqlx::query(
        "SELECT h.lane, h.msg_id, h.created_at, h.status, h.held, g.n
         FROM (SELECT lane, MIN(id) AS head_id, COUNT(*) AS n FROM deliveries
               WHERE endpoint_id = $1 AND lane IS NOT NULL AND (status IN (1, 3) OR held)
               GROUP BY lane) g
         JOIN deliveries h ON h.id = g.head_id
         ORDER BY h.id LIMIT $2",
    )
    .bind(endpoint.as_str())
    .bind(i64::from(limit))
    .fetch_all(&store.pool)
    .await
    .map_err(backend)?;
    rows.iter()
        .map(|row| {
            let status: i16 = get(row, "status")?;
            Ok(LaneState {
                key: get(row, "lane")?,
                head_msg_id: parse(row, "msg_id")?,
                head_since: get(row, "created_at")?,
                head_status: DeliveryStatus::from_code(i64::from(status))
                    .ok_or_else(|| corrupt("status", status))?,
                held: get(row, "held")?,
                waiting: count(row, "n")?.saturating_sub(1),
            })
        })
        .collect()
}

const APPLICATION_SQL: &str = "
SELECT
  (SELECT COUNT(*) FROM messages WHERE app_id = $1 AND created_at >= $2 AND created_at < $3)
    AS messages,
  (SELECT COUNT(*) FROM endpoints WHERE app_id = $1) AS endpoints,
  (SELECT COUNT(*) FROM endpoints WHERE app_id = $1 AND disabled) AS disabled,
  (SELECT COUNT(*) FROM endpoints WHERE app_id = $1 AND NOT disabled AND failing_since IS NOT NULL)
    AS failing";

pub(crate) async fn application(
    store: &PostgresStore,
    app: &ApplicationId,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<ApplicationStats, StoreError> {
    let row = sqlx::query(APPLICATION_SQL)
        .bind(app.as_str())
        .bind(since)
        .bind(until)
        .fetch_one(&store.pool)
        .await
        .map_err(backend)?;
    let mut stats = ApplicationStats {
        messages: count(&row, "messages")?,
        endpoints: count(&row, "endpoints")?,
        endpoints_disabled: count(&row, "disabled")?,
        endpoints_failing: count(&row, "failing")?,
        ..ApplicationStats::default()
    };
    let attempts = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM attempts
         WHERE app_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY status",
    )
    .bind(app.as_str())
    .bind(since)
    .bind(until)
    .fetch_all(&store.pool)
    .await
    .map_err(backend)?;
    for row in &attempts {
        let status: i16 = get(row, "status")?;
        match DeliveryStatus::from_code(i64::from(status)) {
            Some(DeliveryStatus::Success) => stats.attempts_succeeded += count(row, "n")?,
            Some(_) => stats.attempts_failed += count(row, "n")?,
            None => return Err(corrupt("status", status)),
        }
    }
    Ok(stats)
}

/// The oldest attempts first; rows another node is deleting are passed over.
const DELETE_ATTEMPTS_SQL: &str = "
WITH doomed AS MATERIALIZED (
    SELECT id FROM attempts WHERE created_at < $1
    ORDER BY created_at LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM attempts a USING doomed WHERE a.id = doomed.id";

pub(crate) async fn delete_attempts_before(
    store: &PostgresStore,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<u64, StoreError> {
    let result = sqlx::query(DELETE_ATTEMPTS_SQL)
        .bind(before)
        .bind(i64::from(limit))
        .execute(&store.pool)
        .await
        .map_err(backend)?;
    Ok(result.rows_affected())
}
