//! API tokens (stored as SHA-256 hashes: found, listed, revoked, purged once expired) and idempotency keys on PostgreSQL.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::id::TokenId;
use herald_core::model::{ApiToken, TokenScope};
use herald_core::store::{IdempotencyClaim, IdempotencyKey, Page, PageRequest, StoredResponse};
use herald_core::token::TokenHash;
use sqlx::QueryBuilder;
use sqlx::postgres::PgRow;

use crate::rows::{PagePlan, corrupt, get, parse};
use crate::{PostgresStore, backend, store_error};

/// Expired idempotency keys deleted by each claim, so the table never grows unbounded.
const EXPIRED_KEYS_PER_CLAIM: i64 = 100;

pub(crate) async fn insert(store: &PostgresStore, token: &ApiToken) -> Result<(), StoreError> {
    let app_id = match &token.scope {
        TokenScope::Organization => None,
        TokenScope::Application(app) => Some(app.as_str()),
    };
    sqlx::query(
        "INSERT INTO api_tokens (id, hash, app_id, description, created_at, expires_at, session_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(token.id.as_str())
    .bind(&token.hash.0[..])
    .bind(app_id)
    .bind(&token.description)
    .bind(token.created_at)
    .bind(token.expires_at)
    .bind(token.session_id.as_deref())
    .execute(&store.pool)
    .await
    .map_err(|e| store_error(e, "token"))?;
    Ok(())
}

/// The columns [`from_row`] reads.
const COLUMNS: &str = "id, hash, app_id, description, created_at, expires_at, session_id";

pub(crate) async fn find(store: &PostgresStore, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE hash = $1");
    let row = sqlx::query(&sql).bind(&hash.0[..]).fetch_optional(&store.pool).await.map_err(backend)?;
    row.as_ref().map(from_row).transpose()
}

fn from_row(row: &PgRow) -> Result<ApiToken, StoreError> {
    let stored: Vec<u8> = get(row, "hash")?;
    let app_id: Option<String> = get(row, "app_id")?;
    Ok(ApiToken {
        id: parse(row, "id")?,
        hash: TokenHash(stored.try_into().map_err(|_| corrupt("hash", "not 32 bytes"))?),
        scope: match app_id {
            None => TokenScope::Organization,
            Some(app) => TokenScope::Application(app.parse().map_err(|e| corrupt("app_id", e))?),
        },
        description: get(row, "description")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        session_id: get(row, "session_id")?,
    })
}

pub(crate) async fn list(store: &PostgresStore, page: &PageRequest) -> Result<Page<ApiToken>, StoreError> {
    let plan = PagePlan::new(page);
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM api_tokens WHERE TRUE"));
    plan.push_cursor(&mut query, "id");
    plan.push_order_and_limit(&mut query, "id");
    let rows = query.build().fetch_all(&store.pool).await.map_err(backend)?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

pub(crate) async fn delete(store: &PostgresStore, id: &TokenId) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
        .bind(id.as_str())
        .execute(&store.pool)
        .await
        .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

/// Shortens the expiry of an application's tokens (of some sessions) to `at`, in one statement.
pub(crate) async fn expire_application(
    store: &PostgresStore,
    app: &herald_core::id::ApplicationId,
    sessions: Option<&[String]>,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "UPDATE api_tokens SET expires_at = $1
         WHERE app_id = $2 AND (expires_at IS NULL OR expires_at > $1)
           AND ($3::text[] IS NULL OR session_id = ANY($3))",
    )
    .bind(at)
    .bind(app.as_str())
    .bind(sessions)
    .execute(&store.pool)
    .await
    .map_err(backend)?;
    Ok(result.rows_affected())
}

/// Deletes up to `limit` expired tokens in one statement; rows another node is deleting at
/// that moment are passed over, not waited for.
pub(crate) async fn delete_expired(
    store: &PostgresStore,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "DELETE FROM api_tokens WHERE id IN
           (SELECT id FROM api_tokens WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(now)
    .bind(i64::from(limit))
    .execute(&store.pool)
    .await
    .map_err(backend)?;
    Ok(result.rows_affected())
}

pub(crate) async fn count_organization(store: &PostgresStore) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE app_id IS NULL")
        .fetch_one(&store.pool)
        .await
        .map_err(backend)?;
    Ok(u64::try_from(count).unwrap_or_default())
}

/// Claims a key in one transaction. The upsert either takes the key (new, or its earlier claim
/// or response expired) or leaves it alone; either way it holds the row's lock until commit,
/// so the follow-up read sees exactly the row that refused the claim. Two nodes claiming the
/// same new key meet at the primary key: the second waits for the first to commit, then finds
/// an unexpired claim, so exactly one of them gets `Claimed`.
pub(crate) async fn claim_idempotency_key(
    store: &PostgresStore,
    key: &IdempotencyKey,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<IdempotencyClaim, StoreError> {
    let mut tx = store.pool.begin().await.map_err(backend)?;
    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (key, completed, status, body, expires_at)
         VALUES ($1, FALSE, NULL, NULL, $2)
         ON CONFLICT (key) DO UPDATE
           SET completed = FALSE, status = NULL, body = NULL, expires_at = EXCLUDED.expires_at
           WHERE idempotency_keys.expires_at <= $3
         RETURNING key",
    )
    .bind(&key.0)
    .bind(expires_at)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?;
    let outcome = if claimed.is_some() {
        // Expired keys are dropped a few at a time; rows another claim holds are left to it.
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE key IN
               (SELECT key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(now)
        .bind(EXPIRED_KEYS_PER_CLAIM)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        IdempotencyClaim::Claimed
    } else {
        let row = sqlx::query("SELECT completed, status, body FROM idempotency_keys WHERE key = $1")
            .bind(&key.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        if get(&row, "completed")? {
            let status: Option<i32> = get(&row, "status")?;
            let status = status.ok_or_else(|| corrupt("status", "missing"))?;
            IdempotencyClaim::Completed(StoredResponse {
                status: u16::try_from(status).map_err(|e| corrupt("status", e))?,
                body: get::<Option<Vec<u8>>>(&row, "body")?.unwrap_or_default(),
            })
        } else {
            IdempotencyClaim::InProgress
        }
    };
    tx.commit().await.map_err(backend)?;
    Ok(outcome)
}

pub(crate) async fn complete_idempotency_key(
    store: &PostgresStore,
    key: &IdempotencyKey,
    response: &StoredResponse,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE idempotency_keys SET completed = TRUE, status = $1, body = $2, expires_at = $3
         WHERE key = $4",
    )
    .bind(i32::from(response.status))
    .bind(&response.body)
    .bind(expires_at)
    .bind(&key.0)
    .execute(&store.pool)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn release_idempotency_key(
    store: &PostgresStore,
    key: &IdempotencyKey,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND NOT completed")
        .bind(&key.0)
        .execute(&store.pool)
        .await
        .map_err(backend)?;
    Ok(())
}
