//! Ingest sources and their refusal logs on PostgreSQL (and the `IngestStore` impl, which
//! only calls these).

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::id::SourceId;
use herald_core::ingest::{Refusal, RefusalReason, Source, SourceChange, SourceConfig, SourceType};
use herald_core::model::Application;
use herald_core::name::Uid;
use herald_core::secret::SecretString;
use herald_core::store::{IngestStore, Key, Page, PageRequest, REFUSALS_KEPT, SourceKey};
use herald_core::token::TokenHash;
use sqlx::QueryBuilder;
use sqlx::postgres::PgRow;

use crate::rows::{PagePlan, corrupt, get, metadata_from_json, metadata_to_json, parse, parse_optional_name};
use crate::{PostgresStore, backend, retry_transient, store_error};

const COLUMNS: &str = "id, app_id, uid, name, type, sealed_config, metadata::text AS metadata, token_hash, sealed_token, \
                       previous_token_hash, previous_token_expires_at, created_at, updated_at";

async fn insert(store: &PostgresStore, source: &Source, app: &Application) -> Result<(), StoreError> {
    let mut tx = store.pool.begin().await.map_err(backend)?;
    sqlx::query(
        "INSERT INTO applications (id, uid, name, metadata, throttle_rate, created_at, updated_at)
         VALUES ($1, NULL, $2, $3::jsonb, $4, $5, $6)",
    )
    .bind(app.id.as_str())
    .bind(&app.name)
    .bind(metadata_to_json(&app.metadata))
    .bind(app.throttle_rate.map(i32::from))
    .bind(app.created_at)
    .bind(app.updated_at)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    sqlx::query(
        "INSERT INTO ingest_sources (id, app_id, uid, name, type, sealed_config, metadata, token_hash, sealed_token,
                                     previous_token_hash, previous_token_expires_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13)",
    )
    .bind(source.id.as_str())
    .bind(source.app_id.as_str())
    .bind(source.uid.as_ref().map(Uid::as_str))
    .bind(&source.name)
    .bind(source.kind.name())
    .bind(store.cipher.seal(&source.config.to_bytes()))
    .bind(metadata_to_json(&source.metadata))
    .bind(TokenHash::of(source.token.expose()).to_hex())
    .bind(store.cipher.seal(source.token.expose().as_bytes()))
    .bind(source.previous_token.map(|(hash, _)| hash.to_hex()))
    .bind(source.previous_token.map(|(_, until)| until))
    .bind(source.created_at)
    .bind(source.updated_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| store_error(e, "uid"))?;
    tx.commit().await.map_err(backend)?;
    Ok(())
}

async fn find(store: &PostgresStore, key: &SourceKey) -> Result<Option<Source>, StoreError> {
    let (column, value) = match key {
        Key::Id(id) => ("id", id.as_str()),
        Key::Uid(uid) => ("uid", uid.as_str()),
    };
    let sql = format!("SELECT {COLUMNS} FROM ingest_sources WHERE {column} = $1");
    let row = sqlx::query(&sql).bind(value).fetch_optional(&store.pool).await.map_err(backend)?;
    row.map(|row| from_row(store, &row)).transpose()
}

async fn find_by_token(
    store: &PostgresStore,
    token: &TokenHash,
    now: DateTime<Utc>,
) -> Result<Option<Source>, StoreError> {
    let sql = format!(
        "(SELECT {COLUMNS} FROM ingest_sources WHERE token_hash = $1)
         UNION ALL
         (SELECT {COLUMNS} FROM ingest_sources WHERE previous_token_hash = $1 AND previous_token_expires_at > $2)
         LIMIT 1"
    );
    let row = sqlx::query(&sql)
        .bind(token.to_hex())
        .bind(now)
        .fetch_optional(&store.pool)
        .await
        .map_err(backend)?;
    row.map(|row| from_row(store, &row)).transpose()
}

async fn list(store: &PostgresStore, page: &PageRequest) -> Result<Page<Source>, StoreError> {
    let plan = PagePlan::new(page);
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM ingest_sources WHERE TRUE"));
    plan.push_cursor(&mut query, "id");
    plan.push_order_and_limit(&mut query, "id");
    let rows = query.build().fetch_all(&store.pool).await.map_err(backend)?;
    let items = rows.iter().map(|row| from_row(store, row)).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

/// Applies `change` to the source as it is now (the row read `FOR UPDATE`).
async fn update(
    store: &PostgresStore,
    id: &SourceId,
    change: &SourceChange,
    now: DateTime<Utc>,
) -> Result<Option<Source>, StoreError> {
    let mut tx = store.pool.begin().await.map_err(backend)?;
    let sql = format!("SELECT {COLUMNS} FROM ingest_sources WHERE id = $1 FOR UPDATE");
    let row = sqlx::query(&sql).bind(id.as_str()).fetch_optional(&mut *tx).await.map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    let mut source = from_row(store, &row)?;
    change.apply(&mut source, now);
    sqlx::query(
        "UPDATE ingest_sources SET uid = $1, name = $2, type = $3, sealed_config = $4, metadata = $5::jsonb,
                token_hash = $6, sealed_token = $7, previous_token_hash = $8, previous_token_expires_at = $9,
                updated_at = $10
         WHERE id = $11",
    )
    .bind(source.uid.as_ref().map(Uid::as_str))
    .bind(&source.name)
    .bind(source.kind.name())
    .bind(store.cipher.seal(&source.config.to_bytes()))
    .bind(metadata_to_json(&source.metadata))
    .bind(TokenHash::of(source.token.expose()).to_hex())
    .bind(store.cipher.seal(source.token.expose().as_bytes()))
    .bind(source.previous_token.map(|(hash, _)| hash.to_hex()))
    .bind(source.previous_token.map(|(_, until)| until))
    .bind(source.updated_at)
    .bind(source.id.as_str())
    .execute(&mut *tx)
    .await
    .map_err(|e| store_error(e, "uid"))?;
    tx.commit().await.map_err(backend)?;
    Ok(Some(source))
}

async fn delete(store: &PostgresStore, id: &SourceId) -> Result<bool, StoreError> {
    // The source goes with its application (ON DELETE CASCADE), and with it everything else.
    let mut tx = store.pool.begin().await.map_err(backend)?;
    let deleted = crate::applications::delete_in(
        &mut tx,
        "DELETE FROM applications WHERE id = (SELECT app_id FROM ingest_sources WHERE id = $1)",
        id.as_str(),
    )
    .await?;
    tx.commit().await.map_err(backend)?;
    Ok(deleted)
}

async fn record_refusal(store: &PostgresStore, refusal: &Refusal) -> Result<(), StoreError> {
    let mut tx = store.pool.begin().await.map_err(backend)?;
    sqlx::query("INSERT INTO ingest_refusals (source_id, reason, at, address) VALUES ($1, $2, $3, $4)")
        .bind(refusal.source_id.as_str())
        .bind(refusal.reason.name())
        .bind(refusal.at)
        .bind(&refusal.address)
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error(e, "source"))?;
    sqlx::query(
        "DELETE FROM ingest_refusals WHERE source_id = $1 AND id <=
            (SELECT id FROM ingest_refusals WHERE source_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
    )
    .bind(refusal.source_id.as_str())
    .bind(i64::from(REFUSALS_KEPT))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(())
}

async fn list_refusals(
    store: &PostgresStore,
    source: &SourceId,
    limit: u16,
) -> Result<Vec<Refusal>, StoreError> {
    let rows = sqlx::query(
        "SELECT source_id, reason, at, address FROM ingest_refusals WHERE source_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(source.as_str())
    .bind(i64::from(limit))
    .fetch_all(&store.pool)
    .await
    .map_err(backend)?;
    rows.iter()
        .map(|row| {
            let reason: String = get(row, "reason")?;
            Ok(Refusal {
                source_id: parse(row, "source_id")?,
                reason: RefusalReason::parse(&reason).ok_or_else(|| corrupt("reason", &reason))?,
                at: get(row, "at")?,
                address: get(row, "address")?,
            })
        })
        .collect()
}

/// The token's value, from its sealed copy.
fn open_token(store: &PostgresStore, sealed: Vec<u8>) -> Result<SecretString, StoreError> {
    let bytes = store
        .cipher
        .open(&sealed)
        .map_err(|_| corrupt("sealed_token", "does not open with the configured key"))?;
    String::from_utf8(bytes).map(SecretString::new).map_err(|e| corrupt("sealed_token", e))
}

fn from_row(store: &PostgresStore, row: &PgRow) -> Result<Source, StoreError> {
    let sealed: Vec<u8> = get(row, "sealed_config")?;
    let config = store
        .cipher
        .open(&sealed)
        .ok()
        .and_then(|bytes| SourceConfig::from_bytes(&bytes))
        .ok_or_else(|| corrupt("sealed_config", "does not open with the configured key"))?;
    let hash = |text: String| TokenHash::from_hex(&text).ok_or_else(|| corrupt("token_hash", "not a hash"));
    let previous_hash: Option<String> = get(row, "previous_token_hash")?;
    let previous_until: Option<DateTime<Utc>> = get(row, "previous_token_expires_at")?;
    let previous_token = match (previous_hash, previous_until) {
        (Some(text), Some(until)) => Some((hash(text)?, until)),
        _ => None,
    };
    Ok(Source {
        id: parse(row, "id")?,
        app_id: parse(row, "app_id")?,
        uid: parse_optional_name(row, "uid", Uid::parse)?,
        name: get(row, "name")?,
        kind: SourceType::parse(&get::<String>(row, "type")?).map_err(|e| corrupt("type", e))?,
        config,
        metadata: metadata_from_json(row, "metadata")?,
        token: open_token(store, get(row, "sealed_token")?)?,
        previous_token,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

#[async_trait::async_trait]
impl IngestStore for PostgresStore {
    async fn insert_source(&self, source: &Source, app: &Application) -> Result<(), StoreError> {
        insert(self, source, app).await
    }
    async fn find_source(&self, key: &SourceKey) -> Result<Option<Source>, StoreError> {
        find(self, key).await
    }
    async fn find_source_by_token(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Source>, StoreError> {
        find_by_token(self, token, now).await
    }
    async fn list_sources(&self, page: &PageRequest) -> Result<Page<Source>, StoreError> {
        list(self, page).await
    }
    async fn update_source(
        &self,
        id: &SourceId,
        change: &SourceChange,
        now: DateTime<Utc>,
    ) -> Result<Option<Source>, StoreError> {
        update(self, id, change, now).await
    }
    async fn delete_source(&self, id: &SourceId) -> Result<bool, StoreError> {
        retry_transient(|| delete(self, id)).await
    }
    async fn record_refusal(&self, refusal: &Refusal) -> Result<(), StoreError> {
        record_refusal(self, refusal).await
    }
    async fn list_refusals(&self, source: &SourceId, limit: u16) -> Result<Vec<Refusal>, StoreError> {
        list_refusals(self, source, limit).await
    }
}
