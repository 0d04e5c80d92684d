//! The delivery queue on SQLite: leasing due deliveries, recording attempts (fenced by the
//! lease), manual deliveries, recovery, statistics and endpoint health.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::delivery::{
    AttemptRecord, DeliveryId, DeliveryStats, DeliveryStatus, LeaseRequest, LeasedDelivery, NextStep, Trigger,
};
use herald_core::id::{ApplicationId, EndpointId, MessageId};
use herald_core::name::EventTypeName;
use herald_core::store::MessageKey;
use sqlx::sqlite::{SqliteArguments, SqliteConnection};
use sqlx::{Arguments, Row};

use crate::rows::{corrupt, from_micros, to_micros};
use crate::writer::{Batch, EndpointHealth};
use crate::{SqliteStore, backend, messages};

/// How many due rows one lease looks at before taking at most `per_endpoint` of each
/// endpoint; bounds the work of a lease when one endpoint has a large backlog.
const LEASE_SCAN: i64 = 4096;

/// Records an attempt and moves its delivery on; runs inside the writer's transaction.
/// Records a batch's attempts and moves their deliveries on, in a few statements; runs inside
/// the writer's transaction. Each record counts only if its lease is still the delivery's
/// lease (a stale worker's record returns false and writes nothing).
pub(crate) async fn record_attempts(
    conn: &mut SqliteConnection,
    records: &[&AttemptRecord],
    batch: &mut Batch,
) -> Result<Vec<bool>, StoreError> {
    let mut recorded = vec![false; records.len()];
    // Rounds in which each delivery appears once, so a repeated record sees the first one's
    // effect (it then finds the lease gone).
    let mut pending: Vec<usize> = (0..records.len()).collect();
    while !pending.is_empty() {
        let mut seen = std::collections::HashSet::new();
        let (round, later): (Vec<usize>, Vec<usize>) =
            pending.iter().partition(|&&i| seen.insert(records[i].delivery_id));
        for chunk in round.chunks(RECORDS_PER_STATEMENT) {
            let updated = settle(conn, records, chunk).await?;
            let winners: Vec<usize> =
                chunk.iter().copied().filter(|i| updated.contains(&records[*i].delivery_id)).collect();
            insert_attempts(conn, records, &winners).await?;
            for &i in &winners {
                recorded[i] = true;
                let attempt = &records[i].attempt;
                let at = to_micros(attempt.created_at);
                // Endpoint health (a success clears the failing streak, a failure starts
                // one) is applied once per endpoint when the batch ends.
                batch
                    .health
                    .entry(attempt.endpoint_id.to_string())
                    .or_default()
                    .record(attempt.status == DeliveryStatus::Success, at);
                if records[i].disable_endpoint {
                    sqlx::query("UPDATE endpoints SET disabled = 1, updated_at = ? WHERE id = ?")
                        .bind(at)
                        .bind(attempt.endpoint_id.as_str())
                        .execute(&mut *conn)
                        .await
                        .map_err(backend)?;
                }
            }
        }
        pending = later;
    }
    Ok(recorded)
}

/// Records settled by one statement at most (11 values each, within SQLite's limits).
const RECORDS_PER_STATEMENT: usize = 200;

/// Moves the deliveries of `chunk` on, where their lease still holds; returns those moved.
async fn settle(
    conn: &mut SqliteConnection,
    records: &[&AttemptRecord],
    chunk: &[usize],
) -> Result<std::collections::HashSet<i64>, StoreError> {
    let rows = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
    let sql = format!(
        "WITH settled(id, lease, status, next_at, at) AS (VALUES {rows})
         UPDATE deliveries SET status = settled.status, attempts = attempts + 1,
                next_attempt_at = settled.next_at, lease_id = NULL, lease_expires_at = NULL,
                updated_at = settled.at
         FROM settled
         WHERE deliveries.id = settled.id AND deliveries.lease_id = settled.lease AND deliveries.status = 3
         RETURNING deliveries.id"
    );
    let mut query = sqlx::query_scalar::<_, i64>(&sql);
    for &i in chunk {
        let record = records[i];
        let now = to_micros(record.attempt.created_at);
        let (status, next_at) = match record.next {
            NextStep::Delivered => (DeliveryStatus::Success, now),
            NextStep::RetryAt(at) => (DeliveryStatus::Pending, to_micros(at)),
            NextStep::Failed => (DeliveryStatus::Failed, now),
        };
        query =
            query.bind(record.delivery_id).bind(record.lease_id).bind(status.code()).bind(next_at).bind(now);
    }
    Ok(query.fetch_all(&mut *conn).await.map_err(backend)?.into_iter().collect())
}

/// Inserts the attempts of the records at `indexes`.
async fn insert_attempts(
    conn: &mut SqliteConnection,
    records: &[&AttemptRecord],
    indexes: &[usize],
) -> Result<(), StoreError> {
    if indexes.is_empty() {
        return Ok(());
    }
    let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; indexes.len()].join(", ");
    let sql = format!(
        "INSERT INTO attempts (id, msg_id, app_id, endpoint_id, url, status, response_status_code,
                               response, response_duration_ms, trigger, created_at) VALUES {rows}"
    );
    let mut query = sqlx::query(&sql);
    for &i in indexes {
        let attempt = &records[i].attempt;
        query = query
            .bind(attempt.id.as_str())
            .bind(attempt.msg_id.as_str())
            .bind(attempt.app_id.as_str())
            .bind(attempt.endpoint_id.as_str())
            .bind(&attempt.url)
            .bind(attempt.status.code())
            .bind(i64::from(attempt.response_status_code))
            .bind(&attempt.response)
            .bind(attempt.response_duration_ms)
            .bind(attempt.trigger.code())
            .bind(to_micros(attempt.created_at));
    }
    query.execute(&mut *conn).await.map_err(backend)?;
    Ok(())
}

/// Writes the endpoint health a batch of attempts left behind.
pub(crate) async fn apply_health(
    conn: &mut SqliteConnection,
    health: &HashMap<String, EndpointHealth>,
) -> Result<(), StoreError> {
    for (endpoint, state) in health {
        let query = match (state.succeeded, state.failing_since) {
            (true, None) => sqlx::query(
                "UPDATE endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL",
            )
            .bind(endpoint),
            // Failing again after a success in this batch: the streak starts with that failure.
            (true, Some(since)) => {
                sqlx::query("UPDATE endpoints SET failing_since = ? WHERE id = ?").bind(since).bind(endpoint)
            }
            // Only failures: an existing streak goes on, or one starts.
            (false, Some(since)) => {
                sqlx::query("UPDATE endpoints SET failing_since = ? WHERE id = ? AND failing_since IS NULL")
                    .bind(since)
                    .bind(endpoint)
            }
            (false, None) => continue,
        };
        query.execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

pub(crate) async fn lease(
    store: &SqliteStore,
    request: &LeaseRequest,
) -> Result<Vec<LeasedDelivery>, StoreError> {
    let now = to_micros(request.now);
    let mut conn = store.writer.acquire().await.map_err(backend)?;
    // Deliveries whose lease ran out (their worker died) become due again.
    sqlx::query(
        "UPDATE deliveries SET status = 1, lease_id = NULL, lease_expires_at = NULL
         WHERE status = 3 AND lease_expires_at <= ?",
    )
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;

    let lease_id = store.next_lease_id();
    let mut args = SqliteArguments::default();
    let bind = |args: &mut SqliteArguments<'_>, value: i64| args.add(value).map_err(StoreError::Backend);
    bind(&mut args, lease_id)?;
    bind(&mut args, to_micros(request.lease_until))?;
    bind(&mut args, now)?;
    bind(&mut args, now)?;
    let mut exclude = String::new();
    if !request.exclude.is_empty() {
        exclude = format!("AND endpoint_id NOT IN ({})", vec!["?"; request.exclude.len()].join(", "));
        for endpoint in &request.exclude {
            args.add(endpoint.as_str().to_owned()).map_err(StoreError::Backend)?;
        }
    }
    bind(&mut args, LEASE_SCAN)?;
    bind(&mut args, i64::from(request.per_endpoint))?;
    bind(&mut args, i64::from(request.limit))?;
    let sql = format!(
        "UPDATE deliveries SET status = 3, lease_id = ?, lease_expires_at = ?, updated_at = ?
         WHERE id IN (
           SELECT id FROM (
             SELECT id, next_attempt_at,
                    ROW_NUMBER() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at, id) AS nth
             FROM (SELECT id, endpoint_id, next_attempt_at FROM deliveries
                   WHERE status = 1 AND next_attempt_at <= ? {exclude}
                   ORDER BY next_attempt_at LIMIT ?))
           WHERE nth <= ? ORDER BY next_attempt_at, id LIMIT ?)
         RETURNING id, msg_id, app_id, endpoint_id, attempts, trigger"
    );
    let rows = sqlx::query_with(&sql, args).fetch_all(&mut *conn).await.map_err(backend)?;
    drop(conn);
    if rows.is_empty() {
        return Ok(Vec::new());
    }

    // The messages' payloads, read once per message.
    let msg_ids: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String, _>("msg_id").map_err(|e| corrupt("msg_id", e)))
        .collect::<Result<_, _>>()?;
    let mut unique = msg_ids.clone();
    unique.sort();
    unique.dedup();
    let mut payloads: HashMap<String, (String, Option<Vec<u8>>)> = HashMap::with_capacity(unique.len());
    for chunk in unique.chunks(500) {
        let sql = format!(
            "SELECT id, event_type, payload FROM messages WHERE id IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(&store.reader).await.map_err(backend)? {
            let id: String = row.try_get("id").map_err(|e| corrupt("id", e))?;
            let event_type: String = row.try_get("event_type").map_err(|e| corrupt("event_type", e))?;
            payloads.insert(id, (event_type, row.try_get("payload").map_err(|e| corrupt("payload", e))?));
        }
    }

    let mut leased = Vec::with_capacity(rows.len());
    for row in rows {
        let msg_id: String = row.try_get("msg_id").map_err(|e| corrupt("msg_id", e))?;
        // A message deleted with its application since the lease: its deliveries went too.
        let Some((event_type, payload)) = payloads.get(&msg_id) else {
            continue;
        };
        let attempts: i64 = row.try_get("attempts").map_err(|e| corrupt("attempts", e))?;
        let trigger: i64 = row.try_get("trigger").map_err(|e| corrupt("trigger", e))?;
        leased.push(LeasedDelivery {
            delivery_id: row.try_get("id").map_err(|e| corrupt("id", e))?,
            lease_id,
            msg_id: msg_id.parse().map_err(|e| corrupt("msg_id", e))?,
            app_id: row
                .try_get::<String, _>("app_id")
                .map_err(|e| corrupt("app_id", e))?
                .parse()
                .map_err(|e| corrupt("app_id", e))?,
            endpoint_id: row
                .try_get::<String, _>("endpoint_id")
                .map_err(|e| corrupt("endpoint_id", e))?
                .parse()
                .map_err(|e| corrupt("endpoint_id", e))?,
            event_type: EventTypeName::parse(event_type).map_err(|e| corrupt("event_type", e))?,
            payload: payload.clone(),
            attempt: u32::try_from(attempts + 1).map_err(|e| corrupt("attempts", e))?,
            trigger: Trigger::from_code(trigger).ok_or_else(|| corrupt("trigger", trigger))?,
        });
    }
    Ok(leased)
}

pub(crate) async fn release(
    store: &SqliteStore,
    delivery: DeliveryId,
    lease_id: i64,
    due: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE deliveries SET status = 1, next_attempt_at = ?, lease_id = NULL, lease_expires_at = NULL
         WHERE id = ? AND lease_id = ? AND status = 3",
    )
    .bind(to_micros(due))
    .bind(delivery)
    .bind(lease_id)
    .execute(&store.writer)
    .await
    .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

pub(crate) async fn next_due_at(store: &SqliteStore) -> Result<Option<DateTime<Utc>>, StoreError> {
    let row = sqlx::query(
        "SELECT (SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 1) AS due,
                (SELECT MIN(lease_expires_at) FROM deliveries WHERE status = 3) AS expiry",
    )
    .fetch_one(&store.reader)
    .await
    .map_err(backend)?;
    let due: Option<i64> = row.try_get("due").map_err(|e| corrupt("due", e))?;
    let expiry: Option<i64> = row.try_get("expiry").map_err(|e| corrupt("expiry", e))?;
    let earliest = match (due, expiry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
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
    messages::insert_delivery(&mut conn, &message, endpoint, Trigger::Manual, now).await
}

pub(crate) async fn recover_failed(
    store: &SqliteStore,
    endpoint: &EndpointId,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    // One manual delivery per message whose latest delivery to the endpoint failed.
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
    .execute(&store.writer)
    .await
    .map_err(backend)?;
    Ok(result.rows_affected())
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
