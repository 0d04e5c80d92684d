//! The delivery queue on SQLite, outside the writer thread: the next due time, manual
//! deliveries, recovery, statistics and disabling failing endpoints.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::delivery::{DeliveryStats, DeliveryStatus, Trigger};
use herald_core::id::{ApplicationId, EndpointId, MessageId};
use herald_core::store::MessageKey;
use sqlx::Row;

use crate::rows::{corrupt, from_micros, to_micros};
use crate::{SqliteStore, backend, messages};

/// The earliest time work may be due: a pending delivery in no lane, a lane's pending head
/// (not the deliveries waiting behind it, which are due but can't go), or a lease's expiry.
/// With more lanes than a lease looks at, the lanes count by their earliest pending delivery
/// instead (never later than the truth: the dispatcher then looks again at its next poll).
pub(crate) async fn next_due_at(store: &SqliteStore) -> Result<Option<DateTime<Utc>>, StoreError> {
    let row = sqlx::query(concat!(
        crate::writer::heads_cte!(),
        " SELECT (SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 1 AND lane IS NULL) AS due,
                 CASE WHEN (SELECT COUNT(*) FROM heads) >= ?3
                      THEN (SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 1 AND lane IS NOT NULL)
                      ELSE (SELECT MIN(next_attempt_at) FROM heads WHERE status = 1) END AS due_in_lanes,
                 (SELECT MIN(lease_expires_at) FROM deliveries WHERE status = 3) AS expiry"
    ))
    .bind("")
    .bind("")
    .bind(crate::writer::LANE_SCAN)
    .fetch_one(&store.reader)
    .await
    .map_err(backend)?;
    let mut earliest: Option<i64> = None;
    for column in ["due", "due_in_lanes", "expiry"] {
        let at: Option<i64> = row.try_get(column).map_err(|e| corrupt(column, e))?;
        earliest = earliest.into_iter().chain(at).min();
    }
    earliest.map(from_micros).transpose()
}

pub(crate) async fn create_manual(
    store: &SqliteStore,
    app: &ApplicationId,
    msg: &MessageId,
    endpoint: &EndpointId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let message =
        messages::find(store, app, &MessageKey::Id(msg.clone())).await?.ok_or(StoreError::NotFound)?;
    let mut conn = store.writer.acquire().await.map_err(backend)?;
    // A delivery holding its ordered lane (exhausted, the lane paused) is queued again itself,
    // as the lane's head, so nothing behind it is delivered before it.
    let requeued = sqlx::query(
        "UPDATE deliveries SET status = 1, held = 0, trigger = 1, next_attempt_at = ?, updated_at = ?
         WHERE msg_id = ? AND endpoint_id = ? AND held = 1",
    )
    .bind(to_micros(now))
    .bind(to_micros(now))
    .bind(msg.as_str())
    .bind(endpoint.as_str())
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    if requeued.rows_affected() > 0 {
        return Ok(());
    }
    messages::insert_delivery(&mut conn, &message, endpoint, Trigger::Manual, now).await
}

pub(crate) async fn recover_failed(
    store: &SqliteStore,
    endpoint: &EndpointId,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = store.writer.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    // Deliveries holding their ordered lane are queued again themselves, as their lane's head.
    let requeued = sqlx::query(
        "UPDATE deliveries SET status = 1, held = 0, trigger = 1, next_attempt_at = ?, updated_at = ?
         WHERE endpoint_id = ? AND held = 1 AND created_at >= ? AND created_at < ?",
    )
    .bind(to_micros(now))
    .bind(to_micros(now))
    .bind(endpoint.as_str())
    .bind(to_micros(since))
    .bind(to_micros(until))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    // One manual delivery per other message whose latest delivery to the endpoint failed.
    let result = sqlx::query(
        "INSERT INTO deliveries (msg_id, app_id, endpoint_id, status, trigger, attempts, next_attempt_at,
                                 created_at, updated_at)
         SELECT d.msg_id, d.app_id, d.endpoint_id, 1, 1, 0, ?, ?, ?
         FROM deliveries d
         WHERE d.endpoint_id = ? AND d.status = 2 AND d.created_at >= ? AND d.created_at < ?
           AND d.id = (SELECT MAX(id) FROM deliveries WHERE msg_id = d.msg_id AND endpoint_id = d.endpoint_id)",
    )
    .bind(to_micros(now))
    .bind(to_micros(now))
    .bind(to_micros(now))
    .bind(endpoint.as_str())
    .bind(to_micros(since))
    .bind(to_micros(until))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(requeued.rows_affected() + result.rows_affected())
}

pub(crate) async fn stats(
    store: &SqliteStore,
    endpoint: &EndpointId,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<DeliveryStats, StoreError> {
    let rows = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM deliveries
         WHERE endpoint_id = ? AND created_at >= ? AND created_at < ? GROUP BY status",
    )
    .bind(endpoint.as_str())
    .bind(to_micros(since))
    .bind(to_micros(until))
    .fetch_all(&store.reader)
    .await
    .map_err(backend)?;
    let mut stats = DeliveryStats::default();
    for row in rows {
        let status: i64 = row.try_get("status").map_err(|e| corrupt("status", e))?;
        let count: i64 = row.try_get("n").map_err(|e| corrupt("n", e))?;
        let count = u64::try_from(count).unwrap_or_default();
        match DeliveryStatus::from_code(status) {
            Some(DeliveryStatus::Success) => stats.success += count,
            Some(DeliveryStatus::Pending) => stats.pending += count,
            Some(DeliveryStatus::Failed) => stats.failed += count,
            Some(DeliveryStatus::Sending) => stats.sending += count,
            None => return Err(corrupt("status", status)),
        }
    }
    Ok(stats)
}

pub(crate) async fn disable_failing(
    store: &SqliteStore,
    failing_since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<(ApplicationId, EndpointId)>, StoreError> {
    let rows = sqlx::query(
        "UPDATE endpoints SET disabled = 1, updated_at = ?
         WHERE disabled = 0 AND failing_since IS NOT NULL AND failing_since < ?
         RETURNING app_id, id",
    )
    .bind(to_micros(now))
    .bind(to_micros(failing_since))
    .fetch_all(&store.writer)
    .await
    .map_err(backend)?;
    rows.iter()
        .map(|row| {
            let app: String = row.try_get("app_id").map_err(|e| corrupt("app_id", e))?;
            let id: String = row.try_get("id").map_err(|e| corrupt("id", e))?;
            Ok((app.parse().map_err(|e| corrupt("app_id", e))?, id.parse().map_err(|e| corrupt("id", e))?))
        })
        .collect()
}
