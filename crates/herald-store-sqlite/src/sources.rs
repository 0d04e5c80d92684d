//! Ingest sources and their refusal logs on SQLite.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::id::SourceId;
use herald_core::ingest::{Refusal, RefusalReason, Source, SourceChange, SourceConfig, SourceType};
use herald_core::model::Application;
use herald_core::name::Uid;
use herald_core::secret::SecretString;
use herald_core::store::{IngestStore, Key, Page, PageRequest, REFUSALS_KEPT, SourceKey};
use herald_core::token::TokenHash;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::rows::{PagePlan, corrupt, from_micros, metadata_from_json, metadata_to_json, to_micros};
use crate::{SqliteStore, backend, store_error};

/// The ingest commands of the store, here with the rest of what sources need.
#[async_trait::async_trait]
impl IngestStore for SqliteStore {
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
        delete(self, id).await
    }
    async fn record_refusal(&self, refusal: &Refusal) -> Result<(), StoreError> {
        record_refusal(self, refusal).await
    }
    async fn list_refusals(&self, source: &SourceId, limit: u16) -> Result<Vec<Refusal>, StoreError> {
        list_refusals(self, source, limit).await
    }
}

const COLUMNS: &str = "id, app_id, uid, name, type, sealed_config, metadata, token_hash, sealed_token, previous_token_hash, \
                       previous_token_expires_at, created_at, updated_at";

pub(crate) async fn insert(
    store: &SqliteStore,
    source: &Source,
    app: &Application,
) -> Result<(), StoreError> {
    let mut tx = store.writer.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    sqlx::query(
        "INSERT INTO applications (id, uid, name, metadata, throttle_rate, created_at, updated_at)
         VALUES (?, NULL, ?, ?, ?, ?, ?)",
    )
    .bind(app.id.as_str())
    .bind(&app.name)
    .bind(metadata_to_json(&app.metadata))
    .bind(app.throttle_rate.map(i64::from))
    .bind(to_micros(app.created_at))
    .bind(to_micros(app.updated_at))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    sqlx::query(
        "INSERT INTO ingest_sources (id, app_id, uid, name, type, sealed_config, metadata, token_hash, sealed_token,
                                     previous_token_hash, previous_token_expires_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    .bind(source.previous_token.map(|(_, until)| to_micros(until)))
    .bind(to_micros(source.created_at))
    .bind(to_micros(source.updated_at))
    .execute(&mut *tx)
    .await
    .map_err(|e| store_error(e, "uid"))?;
    tx.commit().await.map_err(backend)?;
    Ok(())
}

pub(crate) async fn find(store: &SqliteStore, key: &SourceKey) -> Result<Option<Source>, StoreError> {
    let (column, value) = match key {
        Key::Id(id) => ("id", id.as_str()),
        Key::Uid(uid) => ("uid", uid.as_str()),
    };
    let sql = format!("SELECT {COLUMNS} FROM ingest_sources WHERE {column} = ?");
    let row = sqlx::query(&sql).bind(value).fetch_optional(&store.reader).await.map_err(backend)?;
    row.map(|row| from_row(store, &row)).transpose()
}

pub(crate) async fn find_by_token(
    store: &SqliteStore,
    token: &TokenHash,
    now: DateTime<Utc>,
) -> Result<Option<Source>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM ingest_sources WHERE token_hash = ?1
         UNION ALL
         SELECT {COLUMNS} FROM ingest_sources WHERE previous_token_hash = ?1 AND previous_token_expires_at > ?2
         LIMIT 1"
    );
    let row = sqlx::query(&sql)
        .bind(token.to_hex())
        .bind(to_micros(now))
        .fetch_optional(&store.reader)
        .await
        .map_err(backend)?;
    row.map(|row| from_row(store, &row)).transpose()
}

pub(crate) async fn list(store: &SqliteStore, page: &PageRequest) -> Result<Page<Source>, StoreError> {
    let plan = PagePlan::new(page);
    let filter = match &plan.cursor {
        Some((cmp, _)) => format!("WHERE id {cmp} ?"),
        None => String::new(),
    };
    let sql = format!("SELECT {COLUMNS} FROM ingest_sources {filter} ORDER BY id {} LIMIT ?", plan.direction);
    let mut query = sqlx::query(&sql);
    if let Some((_, key)) = &plan.cursor {
        query = query.bind(key);
    }
    let rows = query.bind(plan.fetch).fetch_all(&store.reader).await.map_err(backend)?;
    let items = rows.iter().map(|row| from_row(store, row)).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

/// Applies `change` to the source as it is now, under the write lock (`BEGIN IMMEDIATE`).
pub(crate) async fn update(
    store: &SqliteStore,
    id: &SourceId,
    change: &SourceChange,
    now: DateTime<Utc>,
) -> Result<Option<Source>, StoreError> {
    let mut tx = store.writer.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let sql = format!("SELECT {COLUMNS} FROM ingest_sources WHERE id = ?");
    let row = sqlx::query(&sql).bind(id.as_str()).fetch_optional(&mut *tx).await.map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    let mut source = from_row(store, &row)?;
    change.apply(&mut source, now);
    sqlx::query(
        "UPDATE ingest_sources SET uid = ?, name = ?, type = ?, sealed_config = ?, metadata = ?, token_hash = ?,
                sealed_token = ?, previous_token_hash = ?, previous_token_expires_at = ?, updated_at = ?
         WHERE id = ?",
    )
    .bind(source.uid.as_ref().map(Uid::as_str))
    .bind(&source.name)
    .bind(source.kind.name())
    .bind(store.cipher.seal(&source.config.to_bytes()))
    .bind(metadata_to_json(&source.metadata))
    .bind(TokenHash::of(source.token.expose()).to_hex())
    .bind(store.cipher.seal(source.token.expose().as_bytes()))
    .bind(source.previous_token.map(|(hash, _)| hash.to_hex()))
    .bind(source.previous_token.map(|(_, until)| to_micros(until)))
    .bind(to_micros(source.updated_at))
    .bind(source.id.as_str())
    .execute(&mut *tx)
    .await
    .map_err(|e| store_error(e, "uid"))?;
    tx.commit().await.map_err(backend)?;
    Ok(Some(source))
}

pub(crate) async fn delete(store: &SqliteStore, id: &SourceId) -> Result<bool, StoreError> {
    // The source goes with its application (ON DELETE CASCADE), and with it everything else.
    let result =
        sqlx::query("DELETE FROM applications WHERE id = (SELECT app_id FROM ingest_sources WHERE id = ?)")
            .bind(id.as_str())
            .execute(&store.writer)
            .await
            .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

pub(crate) async fn record_refusal(store: &SqliteStore, refusal: &Refusal) -> Result<(), StoreError> {
    let mut tx = store.writer.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    sqlx::query("INSERT INTO ingest_refusals (source_id, reason, at, address) VALUES (?, ?, ?, ?)")
        .bind(refusal.source_id.as_str())
        .bind(refusal.reason.name())
        .bind(to_micros(refusal.at))
        .bind(&refusal.address)
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error(e, "source"))?;
    sqlx::query(
        "DELETE FROM ingest_refusals WHERE source_id = ?1 AND id <=
            (SELECT id FROM ingest_refusals WHERE source_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )
    .bind(refusal.source_id.as_str())
    .bind(i64::from(REFUSALS_KEPT))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(())
}

pub(crate) async fn list_refusals(
    store: &SqliteStore,
    source: &SourceId,
    limit: u16,
) -> Result<Vec<Refusal>, StoreError> {
    let rows = sqlx::query(
        "SELECT source_id, reason, at, address FROM ingest_refusals WHERE source_id = ? ORDER BY id DESC LIMIT ?",
    )
    .bind(source.as_str())
    .bind(i64::from(limit))
    .fetch_all(&store.reader)
    .await
    .map_err(backend)?;
    rows.iter()
        .map(|row| {
            let reason: String = row.try_get("reason").map_err(|e| corrupt("reason", e))?;
            let source_id: String = row.try_get("source_id").map_err(|e| corrupt("source_id", e))?;
            Ok(Refusal {
                source_id: source_id.parse().map_err(|e| corrupt("source_id", e))?,
                reason: RefusalReason::parse(&reason).ok_or_else(|| corrupt("reason", &reason))?,
                at: from_micros(row.try_get("at").map_err(|e| corrupt("at", e))?)?,
                address: row.try_get("address").map_err(|e| corrupt("address", e))?,
            })
        })
        .collect()
}

/// The token's value, from its sealed copy.
fn open_token(store: &SqliteStore, sealed: Vec<u8>) -> Result<SecretString, StoreError> {
    let bytes = store
        .cipher
        .open(&sealed)
        .map_err(|_| corrupt("sealed_token", "does not open with the configured key"))?;
    String::from_utf8(bytes).map(SecretString::new).map_err(|e| corrupt("sealed_token", e))
}

fn from_row(store: &SqliteStore, row: &SqliteRow) -> Result<Source, StoreError> {
    let get_text = |name: &str| row.try_get::<String, _>(name).map_err(|e| corrupt(name, e));
    let opt_text = |name: &str| row.try_get::<Option<String>, _>(name).map_err(|e| corrupt(name, e));
    let sealed: Vec<u8> = row.try_get("sealed_config").map_err(|e| corrupt("sealed_config", e))?;
    let config = store
        .cipher
        .open(&sealed)
        .ok()
        .and_then(|bytes| SourceConfig::from_bytes(&bytes))
        .ok_or_else(|| corrupt("sealed_config", "does not open with the configured key"))?;
    let hash = |text: String| TokenHash::from_hex(&text).ok_or_else(|| corrupt("token_hash", "not a hash"));
    let previous_until: Option<i64> =
        row.try_get("previous_token_expires_at").map_err(|e| corrupt("previous_token_expires_at", e))?;
    let previous_token = match (opt_text("previous_token_hash")?, previous_until) {
        (Some(text), Some(until)) => Some((hash(text)?, from_micros(until)?)),
        _ => None,
    };
    Ok(Source {
        id: get_text("id")?.parse().map_err(|e| corrupt("id", e))?,
        app_id: get_text("app_id")?.parse().map_err(|e| corrupt("app_id", e))?,
        uid: opt_text("uid")?.map(|u| Uid::parse(&u)).transpose().map_err(|e| corrupt("uid", e))?,
        name: get_text("name")?,
        kind: SourceType::parse(&get_text("type")?).map_err(|e| corrupt("type", e))?,
        config,
        metadata: metadata_from_json(&get_text("metadata")?)?,
        token: open_token(store, row.try_get("sealed_token").map_err(|e| corrupt("sealed_token", e))?)?,
        previous_token,
        created_at: from_micros(row.try_get("created_at").map_err(|e| corrupt("created_at", e))?)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(|e| corrupt("updated_at", e))?)?,
    })
}
