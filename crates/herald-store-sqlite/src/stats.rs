//! Summaries for operators on SQLite: the delivery queue for the metrics gauges, an
//! application's statistics, and attempt retention. Every count is read from an index.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::delivery::DeliveryStatus;
use herald_core::id::{ApplicationId, EndpointId};
use herald_core::stats::{ApplicationStats, LaneState, QUEUE_COUNT_CAP, QueueStats};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::rows::{corrupt, from_micros, to_micros};
use crate::{SqliteStore, backend};

/// Reads a count column as `u64`.
fn count(row: &SqliteRow, name: &str) -> Result<u64, StoreError> {
    let value: i64 = row.try_get(name).map_err(|e| corrupt(name, e))?;
    Ok(u64::try_from(value).unwrap_or_default())
}

pub(crate) async fn queue(store: &SqliteStore, now: DateTime<Utc>) -> Result<QueueStats, StoreError> {
    // Pending deliveries through `deliveries_due` and `deliveries_due_in_lanes` (those in no
    // lane, those in one), leased ones through `deliveries_leased`,
    // each count stopping at the cap; the endpoint counts scan the endpoints table, which
    // holds one row per endpoint.
    let row = sqlx::query(
        "SELECT
           (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
             WHERE status = 1 AND lane IS NULL AND next_attempt_at <= ?1 LIMIT ?2)) +
           (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
             WHERE status = 1 AND lane IS NOT NULL AND next_attempt_at <= ?1 LIMIT ?2)) AS due,
           (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
             WHERE status = 1 AND lane IS NULL AND next_attempt_at > ?1 LIMIT ?2)) +
           (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
             WHERE status = 1 AND lane IS NOT NULL AND next_attempt_at > ?1 LIMIT ?2)) AS scheduled,
           (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
             WHERE status = 3 AND lease_expires_at <= ?1 LIMIT ?2)) AS expired,
           (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
             WHERE status = 3 AND lease_expires_at > ?1 LIMIT ?2)) AS leased,
           (SELECT MIN(at) FROM (
              SELECT MIN(next_attempt_at) AS at FROM deliveries WHERE status = 1 AND lane IS NULL
              UNION ALL
              SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 1 AND lane IS NOT NULL))
             AS oldest_pending,
           (SELECT MIN(lease_expires_at) FROM deliveries WHERE status = 3) AS oldest_expiry,
           (SELECT COUNT(*) FROM endpoints WHERE disabled = 1) AS disabled,
           (SELECT COUNT(*) FROM endpoints WHERE disabled = 0 AND failing_since IS NOT NULL) AS failing,
           (SELECT COUNT(*) FROM endpoints WHERE circuit_open_until > ?1) AS circuits,
           (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
             WHERE lane IS NOT NULL AND held = 1 LIMIT ?2)) AS lanes_held,
           (SELECT MIN(created_at) FROM deliveries
             WHERE lane IS NOT NULL AND (status IN (1, 3) OR held = 1)) AS oldest_lane",
    )
    .bind(to_micros(now))
    .bind(i64::try_from(QUEUE_COUNT_CAP).unwrap_or(i64::MAX))
    .fetch_one(&store.reader)
    .await
    .map_err(backend)?;
    let now_micros = to_micros(now);
    let oldest_pending: Option<i64> = row.try_get("oldest_pending").map_err(|e| corrupt("oldest", e))?;
    let oldest_expiry: Option<i64> = row.try_get("oldest_expiry").map_err(|e| corrupt("oldest", e))?;
    let oldest = [oldest_pending, oldest_expiry].into_iter().flatten().filter(|at| *at <= now_micros).min();
    Ok(QueueStats {
        due: (count(&row, "due")? + count(&row, "expired")?).min(QUEUE_COUNT_CAP),
        scheduled: count(&row, "scheduled")?.min(QUEUE_COUNT_CAP),
        leased: count(&row, "leased")?,
        oldest_due_at: oldest.map(from_micros).transpose()?,
        endpoints_disabled: count(&row, "disabled")?,
        endpoints_failing: count(&row, "failing")?,
        circuits_open: count(&row, "circuits")?,
        lanes_held: count(&row, "lanes_held")?,
        oldest_lane_message_at: row
            .try_get::<Option<i64>, _>("oldest_lane")
            .map_err(|e| corrupt("oldest_lane", e))?
            .map(from_micros)
            .transpose()?,
    })
}

/// The endpoint's lanes with work, through `deliveries_lane_holders`.
pub(crate) async fn lanes(
    store: &SqliteStore,
    endpoint: &EndpointId,
    limit: u32,
) -> Result<Vec<LaneState>, StoreError> {
    let rows = sqlx::query(
        "SELECT h.lane, h.msg_id, h.created_at, h.status, h.held, g.n
         FROM (SELECT lane, MIN(id) AS head_id, COUNT(*) AS n FROM deliveries
               WHERE endpoint_id = ? AND lane IS NOT NULL AND (status IN (1, 3) OR held = 1)
               GROUP BY lane) g
         JOIN deliveries h ON h.id = g.head_id
         ORDER BY h.id LIMIT ?",
    )
    .bind(endpoint.as_str())
    .bind(i64::from(limit))
    .fetch_all(&store.reader)
    .await
    .map_err(backend)?;
    rows.iter()
        .map(|row| {
            let status: i64 = row.try_get("status").map_err(|e| corrupt("status", e))?;
            Ok(LaneState {
                key: row.try_get("lane").map_err(|e| corrupt("lane", e))?,
                head_msg_id: row
                    .try_get::<String, _>("msg_id")
                    .map_err(|e| corrupt("msg_id", e))?
                    .parse()
                    .map_err(|e| corrupt("msg_id", e))?,
                head_since: from_micros(row.try_get("created_at").map_err(|e| corrupt("created_at", e))?)?,
                head_status: DeliveryStatus::from_code(status).ok_or_else(|| corrupt("status", status))?,
                held: row.try_get("held").map_err(|e| corrupt("held", e))?,
                waiting: count(row, "n")?.saturating_sub(1),
            })
        })
        .collect()
}

pub(crate) async fn application(
    store: &SqliteStore,
    app: &ApplicationId,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<ApplicationStats, StoreError> {
    let (since, until) = (to_micros(since), to_micros(until));
    let row = sqlx::query(
        "SELECT
           (SELECT COUNT(*) FROM messages
             WHERE app_id = ?1 AND created_at >= ?2 AND created_at < ?3) AS messages,
           (SELECT COUNT(*) FROM endpoints WHERE app_id = ?1) AS endpoints,
           (SELECT COUNT(*) FROM endpoints WHERE app_id = ?1 AND disabled = 1) AS disabled,
           (SELECT COUNT(*) FROM endpoints
             WHERE app_id = ?1 AND disabled = 0 AND failing_since IS NOT NULL) AS failing",
    )
    .bind(app.as_str())
    .bind(since)
    .bind(until)
    .fetch_one(&store.reader)
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
         WHERE app_id = ?1 AND created_at >= ?2 AND created_at < ?3 GROUP BY status",
    )
    .bind(app.as_str())
    .bind(since)
    .bind(until)
    .fetch_all(&store.reader)
    .await
    .map_err(backend)?;
    for row in &attempts {
        let status: i64 = row.try_get("status").map_err(|e| corrupt("status", e))?;
        match DeliveryStatus::from_code(status) {
            Some(DeliveryStatus::Success) => stats.attempts_succeeded += count(row, "n")?,
            Some(_) => stats.attempts_failed += count(row, "n")?,
            None => return Err(corrupt("status", status)),
        }
    }
    Ok(stats)
}

pub(crate) async fn delete_attempts_before(
    store: &SqliteStore,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "DELETE FROM attempts WHERE id IN
           (SELECT id FROM attempts WHERE created_at < ? ORDER BY created_at LIMIT ?)",
    )
    .bind(to_micros(before))
    .bind(i64::from(limit))
    .execute(&store.writer)
    .await
    .map_err(backend)?;
    Ok(result.rows_affected())
}
