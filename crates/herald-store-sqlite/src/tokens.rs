//! API tokens (stored as hashes: found, listed, revoked, purged once expired) on SQLite; idempotency keys are the writer thread's
//! (`writer::keys`).

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::id::TokenId;
use herald_core::model::{ApiToken, TokenScope};
use herald_core::store::{Page, PageRequest};
use herald_core::token::TokenHash;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::rows::{PagePlan, corrupt, from_micros, to_micros};
use crate::{SqliteStore, backend, store_error};

pub(crate) async fn insert(store: &SqliteStore, token: &ApiToken) -> Result<(), StoreError> {
    let app_id = match &token.scope {
        TokenScope::Organization => None,
        TokenScope::Application(app) => Some(app.as_str()),
    };
    sqlx::query(
        "INSERT INTO api_tokens (id, hash, app_id, description, created_at, expires_at, session_id)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(token.id.as_str())
    .bind(token.hash.to_hex())
    .bind(app_id)
    .bind(&token.description)
    .bind(to_micros(token.created_at))
    .bind(token.expires_at.map(to_micros))
    .bind(token.session_id.as_deref())
    .execute(&store.writer)
    .await
    .map_err(|e| store_error(e, "token"))?;
    Ok(())
}

/// The columns [`from_row`] reads.
const COLUMNS: &str = "id, hash, app_id, description, created_at, expires_at, session_id";

pub(crate) async fn find(store: &SqliteStore, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE hash = ?");
    let row = sqlx::query(&sql).bind(hash.to_hex()).fetch_optional(&store.reader).await.map_err(backend)?;
    row.as_ref().map(from_row).transpose()
}

fn from_row(row: &SqliteRow) -> Result<ApiToken, StoreError> {
    let app_id: Option<String> = row.try_get("app_id").map_err(|e| corrupt("app_id", e))?;
    let hash_text: String = row.try_get("hash").map_err(|e| corrupt("hash", e))?;
    let id: String = row.try_get("id").map_err(|e| corrupt("id", e))?;
    let expires_at: Option<i64> = row.try_get("expires_at").map_err(|e| corrupt("expires_at", e))?;
    Ok(ApiToken {
        id: id.parse().map_err(|e| corrupt("id", e))?,
        hash: TokenHash::from_hex(&hash_text).ok_or_else(|| corrupt("hash", "not hex"))?,
        scope: match app_id {
            None => TokenScope::Organization,
            Some(app) => TokenScope::Application(app.parse().map_err(|e| corrupt("app_id", e))?),
        },
        description: row.try_get("description").map_err(|e| corrupt("description", e))?,
        created_at: from_micros(row.try_get("created_at").map_err(|e| corrupt("created_at", e))?)?,
        expires_at: expires_at.map(from_micros).transpose()?,
        session_id: row.try_get("session_id").map_err(|e| corrupt("session_id", e))?,
    })
}

pub(crate) async fn list(store: &SqliteStore, page: &PageRequest) -> Result<Page<ApiToken>, StoreError> {
    let plan = PagePlan::new(page);
    let filter = match &plan.cursor {
        Some((cmp, _)) => format!("WHERE id {cmp} ?"),
        None => String::new(),
    };
    let sql = format!("SELECT {COLUMNS} FROM api_tokens {filter} ORDER BY id {} LIMIT ?", plan.direction);
    let mut query = sqlx::query(&sql);
    if let Some((_, key)) = &plan.cursor {
        query = query.bind(key);
    }
    let rows = query.bind(plan.fetch).fetch_all(&store.reader).await.map_err(backend)?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

pub(crate) async fn delete(store: &SqliteStore, id: &TokenId) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM api_tokens WHERE id = ?")
        .bind(id.as_str())
        .execute(&store.writer)
        .await
        .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

/// Shortens the expiry of an application's tokens (of some sessions) to `at`, in one statement.
pub(crate) async fn expire_application(
    store: &SqliteStore,
    app: &herald_core::id::ApplicationId,
    sessions: Option<&[String]>,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut sql = "UPDATE api_tokens SET expires_at = ?
                   WHERE app_id = ? AND (expires_at IS NULL OR expires_at > ?)"
        .to_owned();
    if let Some(sessions) = sessions {
        if sessions.is_empty() {
            return Ok(0);
        }
        let marks = vec!["?"; sessions.len()].join(", ");
        sql.push_str(&format!(" AND session_id IN ({marks})"));
    }
    let mut query = sqlx::query(&sql).bind(to_micros(at)).bind(app.as_str()).bind(to_micros(at));
    for session in sessions.unwrap_or_default() {
        query = query.bind(session);
    }
    let result = query.execute(&store.writer).await.map_err(backend)?;
    Ok(result.rows_affected())
}

/// Deletes up to `limit` expired tokens in one statement.
pub(crate) async fn delete_expired(
    store: &SqliteStore,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "DELETE FROM api_tokens WHERE id IN
           (SELECT id FROM api_tokens WHERE expires_at <= ? LIMIT ?)",
    )
    .bind(to_micros(now))
    .bind(i64::from(limit))
    .execute(&store.writer)
    .await
    .map_err(backend)?;
    Ok(result.rows_affected())
}

pub(crate) async fn count_organization(store: &SqliteStore) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE app_id IS NULL")
        .fetch_one(&store.reader)
        .await
        .map_err(backend)?;
    Ok(u64::try_from(count).unwrap_or_default())
}
