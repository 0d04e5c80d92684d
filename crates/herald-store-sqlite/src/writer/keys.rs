//! Idempotency keys, claimed and settled inside the writer's transaction, so a claim's read
//! and write are atomic.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::store::{IdempotencyClaim, IdempotencyKey, StoredResponse};
use rusqlite::{Connection, OptionalExtension, params};

use super::sql_error;
use crate::rows::{corrupt, to_micros};

pub(super) fn claim(
    conn: &Connection,
    key: &IdempotencyKey,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<IdempotencyClaim, StoreError> {
    let existing = conn
        .prepare_cached("SELECT completed, status, body, expires_at FROM idempotency_keys WHERE key = ?")
        .and_then(|mut select| {
            select
                .query_row([&key.0], |row| {
                    Ok((
                        row.get::<_, bool>(0)?,
                        row.get::<_, Option<i64>>(1)?,
                        row.get::<_, Option<Vec<u8>>>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .optional()
        })
        .map_err(sql_error)?;
    if let Some((completed, status, body, expires)) = existing
        && expires > to_micros(now)
    {
        if !completed {
            return Ok(IdempotencyClaim::InProgress);
        }
        let status = status.ok_or_else(|| corrupt("status", "missing on a completed key"))?;
        return Ok(IdempotencyClaim::Completed(StoredResponse {
            status: u16::try_from(status).map_err(|e| corrupt("status", e))?,
            body: body.unwrap_or_default(),
        }));
    }
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (key, completed, status, body, expires_at)
         VALUES (?, 0, NULL, NULL, ?)
         ON CONFLICT (key) DO UPDATE SET completed = 0, status = NULL, body = NULL,
                                         expires_at = excluded.expires_at",
    )
    .and_then(|mut upsert| upsert.execute(params![&key.0, to_micros(expires_at)]))
    .map_err(sql_error)?;
    // Expired keys are dropped here, a few at a time, so the table never grows unbounded.
    conn.prepare_cached(
        "DELETE FROM idempotency_keys WHERE key IN
           (SELECT key FROM idempotency_keys WHERE expires_at <= ? LIMIT 100)",
    )
    .and_then(|mut delete| delete.execute([to_micros(now)]))
    .map_err(sql_error)?;
    Ok(IdempotencyClaim::Claimed)
}

pub(super) fn complete(
    conn: &Connection,
    key: &IdempotencyKey,
    response: &StoredResponse,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE idempotency_keys SET completed = 1, status = ?, body = ?, expires_at = ? WHERE key = ?",
    )
    .and_then(|mut update| {
        update.execute(params![i64::from(response.status), &response.body, to_micros(expires_at), &key.0])
    })
    .map_err(sql_error)?;
    Ok(())
}

pub(super) fn release(conn: &Connection, key: &IdempotencyKey) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM idempotency_keys WHERE key = ? AND completed = 0")
        .and_then(|mut delete| delete.execute([&key.0]))
        .map_err(sql_error)?;
    Ok(())
}
