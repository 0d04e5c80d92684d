//! API tokens (stored as hashes) and idempotency keys on SQLite.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::model::{ApiToken, TokenScope};
use herald_core::store::{IdempotencyClaim, IdempotencyKey, StoredResponse};
use herald_core::token::TokenHash;
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use crate::rows::{corrupt, from_micros, to_micros};
use crate::{SqliteStore, backend, store_error};

pub(crate) async fn insert(store: &SqliteStore, token: &ApiToken) -> Result<(), StoreError> {
    let app_id = match &token.scope {
        TokenScope::Organization => None,
        TokenScope::Application(app) => Some(app.as_str()),
    };
    sqlx::query(
        "INSERT INTO api_tokens (id, hash, app_id, description, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(token.id.as_str())
    .bind(token.hash.to_hex())
    .bind(app_id)
    .bind(&token.description)
    .bind(to_micros(token.created_at))
    .bind(token.expires_at.map(to_micros))
    .execute(&store.writer)
    .await
    .map_err(|e| store_error(e, "token"))?;
    Ok(())
}

pub(crate) async fn find(store: &SqliteStore, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
    let row = sqlx::query(
        "SELECT id, hash, app_id, description, created_at, expires_at FROM api_tokens WHERE hash = ?",
    )
    .bind(hash.to_hex())
    .fetch_optional(&store.reader)
    .await
    .map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    let app_id: Option<String> = row.try_get("app_id").map_err(|e| corrupt("app_id", e))?;
    let hash_text: String = row.try_get("hash").map_err(|e| corrupt("hash", e))?;
    let id: String = row.try_get("id").map_err(|e| corrupt("id", e))?;
    let expires_at: Option<i64> = row.try_get("expires_at").map_err(|e| corrupt("expires_at", e))?;
    Ok(Some(ApiToken {
        id: id.parse().map_err(|e| corrupt("id", e))?,
        hash: TokenHash::from_hex(&hash_text).ok_or_else(|| corrupt("hash", "not hex"))?,
        scope: match app_id {
            None => TokenScope::Organization,
            Some(app) => TokenScope::Application(app.parse().map_err(|e| corrupt("app_id", e))?),
        },
        description: row.try_get("description").map_err(|e| corrupt("description", e))?,
        created_at: from_micros(row.try_get("created_at").map_err(|e| corrupt("created_at", e))?)?,
        expires_at: expires_at.map(from_micros).transpose()?,
    }))
}

pub(crate) async fn count_organization(store: &SqliteStore) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE app_id IS NULL")
        .fetch_one(&store.reader)
        .await
        .map_err(backend)?;
    Ok(u64::try_from(count).unwrap_or_default())
}

/// Claims a key; runs inside the writer's transaction, so the read and the write are atomic.
pub(crate) async fn claim_idempotency_key(
    tx: &mut SqliteConnection,
    key: &IdempotencyKey,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<IdempotencyClaim, StoreError> {
    let existing =
        sqlx::query("SELECT completed, status, body, expires_at FROM idempotency_keys WHERE key = ?")
            .bind(&key.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
    if let Some(row) = existing {
        let expires: i64 = row.try_get("expires_at").map_err(|e| corrupt("expires_at", e))?;
        if expires > to_micros(now) {
            let completed: bool = row.try_get("completed").map_err(|e| corrupt("completed", e))?;
            if !completed {
                return Ok(IdempotencyClaim::InProgress);
            }
            let status: i64 = row.try_get("status").map_err(|e| corrupt("status", e))?;
            let body: Vec<u8> = row.try_get("body").map_err(|e| corrupt("body", e))?;
            return Ok(IdempotencyClaim::Completed(StoredResponse {
                status: u16::try_from(status).map_err(|e| corrupt("status", e))?,
                body,
            }));
        }
    }
    sqlx::query(
        "INSERT INTO idempotency_keys (key, completed, status, body, expires_at)
         VALUES (?, 0, NULL, NULL, ?)
         ON CONFLICT (key) DO UPDATE SET completed = 0, status = NULL, body = NULL,
                                         expires_at = excluded.expires_at",
    )
    .bind(&key.0)
    .bind(to_micros(expires_at))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    // Expired keys are dropped here, a few at a time, so the table never grows unbounded.
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE key IN
           (SELECT key FROM idempotency_keys WHERE expires_at <= ? LIMIT 100)",
    )
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    Ok(IdempotencyClaim::Claimed)
}

pub(crate) async fn complete_idempotency_key(
    conn: &mut SqliteConnection,
    key: &IdempotencyKey,
    response: &StoredResponse,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE idempotency_keys SET completed = 1, status = ?, body = ?, expires_at = ? WHERE key = ?",
    )
    .bind(i64::from(response.status))
    .bind(&response.body)
    .bind(to_micros(expires_at))
    .bind(&key.0)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn release_idempotency_key(
    conn: &mut SqliteConnection,
    key: &IdempotencyKey,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM idempotency_keys WHERE key = ? AND completed = 0")
        .bind(&key.0)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}
