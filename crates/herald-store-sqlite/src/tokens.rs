//! API tokens (stored as hashes) on SQLite; idempotency keys are the writer thread's
//! (`writer::keys`).

use herald_core::StoreError;
use herald_core::model::{ApiToken, TokenScope};
use herald_core::token::TokenHash;
use sqlx::Row;

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
