//! Deliveries made by people and maintenance on PostgreSQL: manual deliveries, recovery of
//! failed ones, per-endpoint statistics and disabling endpoints that keep failing.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::delivery::{DeliveryStats, DeliveryStatus, Trigger};
use herald_core::id::{ApplicationId, EndpointId, MessageId};

use crate::messages::notify_new_work;
use crate::rows::{corrupt, get, parse, status_code, trigger_code};
use crate::{PostgresStore, backend};

/// Queues one manual delivery of a message, due at `now`. Like every delivery it records the
/// message's creation time as its own, so statistics and recovery windows count it with the
/// message. `NotFound` when the message (or the endpoint) is not the application's.
pub(crate) async fn create_manual(
    store: &PostgresStore,
    app: &ApplicationId,
    msg: &MessageId,
    endpoint: &EndpointId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = store.pool.begin().await.map_err(backend)?;
    // A delivery holding its ordered lane (exhausted, the lane paused) is queued again itself,
    // as the lane's head, so nothing behind it is delivered before it.
    let requeued = sqlx::query(
        "UPDATE deliveries SET status = $1, held = false, trigger = $2, next_attempt_at = $3, updated_at = $3
         WHERE app_id = $4 AND msg_id = $5 AND endpoint_id = $6 AND held",
    )
    .bind(status_code(DeliveryStatus::Pending))
    .bind(trigger_code(Trigger::Manual))
    .bind(now)
    .bind(app.as_str())
    .bind(msg.as_str())
    .bind(endpoint.as_str())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    if requeued.rows_affected() > 0 {
        notify_new_work(&mut tx).await?;
        return tx.commit().await.map_err(backend);
    }
    let inserted = sqlx::query(
        "INSERT INTO deliveries (msg_id, app_id, endpoint_id, status, trigger, attempts, next_attempt_at,
                                 created_at, updated_at)
         SELECT m.id, m.app_id, e.id, $1, $2, 0, $3, m.created_at, m.created_at
         FROM messages m JOIN endpoints e ON e.app_id = m.app_id AND e.id = $4
         WHERE m.app_id = $5 AND m.id = $6
         FOR KEY SHARE OF m",
    )
    .bind(status_code(DeliveryStatus::Pending))
    .bind(trigger_code(Trigger::Manual))
    .bind(now)
    .bind(endpoint.as_str())
    .bind(app.as_str())
    .bind(msg.as_str())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    notify_new_work(&mut tx).await?;
    tx.commit().await.map_err(backend)
}

/// Queues a manual delivery for every message created in `[since, until)` whose latest
/// delivery to the endpoint failed.
pub(crate) async fn recover_failed(
    store: &PostgresStore,
    endpoint: &EndpointId,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = store.pool.begin().await.map_err(backend)?;
    // Recoveries of one endpoint take turns on its row: a second one (from another node) reads
    // after the first committed, finds the new deliveries latest, and queues nothing twice.
    sqlx::query("SELECT 1 FROM endpoints WHERE id = $1 FOR NO KEY UPDATE")
        .bind(endpoint.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    // Deliveries holding their ordered lane are queued again themselves, as their lane's head.
    let requeued = sqlx::query(
        "UPDATE deliveries SET status = $1, held = false, trigger = $2, next_attempt_at = $3, updated_at = $3
         WHERE endpoint_id = $4 AND held AND created_at >= $5 AND created_at < $6",
    )
    .bind(status_code(DeliveryStatus::Pending))
    .bind(trigger_code(Trigger::Manual))
    .bind(now)
    .bind(endpoint.as_str())
    .bind(since)
    .bind(until)
    .execute(&mut *tx)
    .await
    .map_err(backend)?
    .rows_affected();
    let result = sqlx::query(
        "INSERT INTO deliveries (msg_id, app_id, endpoint_id, status, trigger, attempts, next_attempt_at,
                                 created_at, updated_at)
         SELECT d.msg_id, d.app_id, d.endpoint_id, $1, $2, 0, $3, d.created_at, d.created_at
         FROM deliveries d JOIN messages m ON m.id = d.msg_id
         WHERE d.endpoint_id = $4 AND d.status = $5 AND d.created_at >= $6 AND d.created_at < $7
           AND d.id = (SELECT MAX(id) FROM deliveries
                       WHERE msg_id = d.msg_id AND endpoint_id = d.endpoint_id)
         FOR KEY SHARE OF m",
    )
    .bind(status_code(DeliveryStatus::Pending))
    .bind(trigger_code(Trigger::Manual))
    .bind(now)
    .bind(endpoint.as_str())
    .bind(status_code(DeliveryStatus::Failed))
    .bind(since)
    .bind(until)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    let queued = requeued + result.rows_affected();
    if queued > 0 {
        notify_new_work(&mut tx).await?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(queued)
}

pub(crate) async fn stats(
    store: &PostgresStore,
    endpoint: &EndpointId,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<DeliveryStats, StoreError> {
    let rows = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM deliveries
         WHERE endpoint_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY status",
    )
    .bind(endpoint.as_str())
    .bind(since)
    .bind(until)
    .fetch_all(&store.pool)
    .await
    .map_err(backend)?;
    let mut stats = DeliveryStats::default();
    for row in &rows {
        let status: i16 = get(row, "status")?;
        let count: i64 = get(row, "n")?;
        let count = u64::try_from(count).unwrap_or_default();
        match DeliveryStatus::from_code(i64::from(status)) {
            Some(DeliveryStatus::Success) => stats.success += count,
            Some(DeliveryStatus::Pending) => stats.pending += count,
            Some(DeliveryStatus::Failed) => stats.failed += count,
            Some(DeliveryStatus::Sending) => stats.sending += count,
            None => return Err(corrupt("status", status)),
        }
    }
    Ok(stats)
}

/// Disables every enabled endpoint failing since before `failing_since`. The rows are locked
/// in id order, so two nodes running maintenance at once can't deadlock on them.
pub(crate) async fn disable_failing(
    store: &PostgresStore,
    failing_since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<(ApplicationId, EndpointId)>, StoreError> {
    let rows = sqlx::query(
        "UPDATE endpoints SET disabled = TRUE, updated_at = $1
         WHERE id IN (SELECT id FROM endpoints
                      WHERE NOT disabled AND failing_since IS NOT NULL AND failing_since < $2
                      ORDER BY id FOR NO KEY UPDATE)
           AND NOT disabled
         RETURNING app_id, id",
    )
    .bind(now)
    .bind(failing_since)
    .fetch_all(&store.pool)
    .await
    .map_err(backend)?;
    let mut disabled = rows
        .iter()
        .map(|row| Ok((parse(row, "app_id")?, parse(row, "id")?)))
        .collect::<Result<Vec<(ApplicationId, EndpointId)>, StoreError>>()?;
    disabled.sort();
    Ok(disabled)
}
