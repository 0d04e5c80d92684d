//! Applications on SQLite.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::change::ApplicationChange;
use herald_core::id::ApplicationId;
use herald_core::model::Application;
use herald_core::name::Uid;
use herald_core::store::{ApplicationKey, Key, Page, PageRequest};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::rows::{PagePlan, corrupt, from_micros, metadata_from_json, metadata_to_json, to_micros};
use crate::{SqliteStore, backend, store_error};

const COLUMNS: &str = "id, uid, name, metadata, throttle_rate, created_at, updated_at";

pub(crate) async fn insert(store: &SqliteStore, app: &Application) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO applications (id, uid, name, metadata, throttle_rate, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(app.id.as_str())
    .bind(app.uid.as_ref().map(Uid::as_str))
    .bind(&app.name)
    .bind(metadata_to_json(&app.metadata))
    .bind(app.throttle_rate.map(i64::from))
    .bind(to_micros(app.created_at))
    .bind(to_micros(app.updated_at))
    .execute(&store.writer)
    .await
    .map_err(|e| store_error(e, "uid"))?;
    Ok(())
}

pub(crate) async fn find(
    store: &SqliteStore,
    key: &ApplicationKey,
) -> Result<Option<Application>, StoreError> {
    let (column, value) = match key {
        Key::Id(id) => ("id", id.as_str()),
        Key::Uid(uid) => ("uid", uid.as_str()),
    };
    let sql = format!("SELECT {COLUMNS} FROM applications WHERE {column} = ?");
    let row = sqlx::query(&sql).bind(value).fetch_optional(&store.reader).await.map_err(backend)?;
    row.map(|row| from_row(&row)).transpose()
}

pub(crate) async fn list(store: &SqliteStore, page: &PageRequest) -> Result<Page<Application>, StoreError> {
    let plan = PagePlan::new(page);
    // Applications that back ingest sources are not listed (they are the sources').
    let filter = match &plan.cursor {
        Some((cmp, _)) => format!("WHERE id {cmp} ? AND id NOT IN (SELECT app_id FROM ingest_sources)"),
        None => "WHERE id NOT IN (SELECT app_id FROM ingest_sources)".to_owned(),
    };
    let sql = format!("SELECT {COLUMNS} FROM applications {filter} ORDER BY id {} LIMIT ?", plan.direction);
    let mut query = sqlx::query(&sql);
    if let Some((_, key)) = &plan.cursor {
        query = query.bind(key);
    }
    let rows = query.bind(plan.fetch).fetch_all(&store.reader).await.map_err(backend)?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

/// Applies `change` to the application as it is now, under the write lock (`BEGIN
/// IMMEDIATE`), so a concurrent change of other fields is never written back over.
pub(crate) async fn update(
    store: &SqliteStore,
    id: &ApplicationId,
    change: &ApplicationChange,
    now: DateTime<Utc>,
) -> Result<Option<Application>, StoreError> {
    let mut tx = store.writer.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let sql = format!("SELECT {COLUMNS} FROM applications WHERE id = ?");
    let row = sqlx::query(&sql).bind(id.as_str()).fetch_optional(&mut *tx).await.map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    let mut app = from_row(&row)?;
    change.apply(&mut app, now);
    sqlx::query(
        "UPDATE applications SET uid = ?, name = ?, metadata = ?, throttle_rate = ?, updated_at = ?
         WHERE id = ?",
    )
    .bind(app.uid.as_ref().map(Uid::as_str))
    .bind(&app.name)
    .bind(metadata_to_json(&app.metadata))
    .bind(app.throttle_rate.map(i64::from))
    .bind(to_micros(app.updated_at))
    .bind(app.id.as_str())
    .execute(&mut *tx)
    .await
    .map_err(|e| store_error(e, "uid"))?;
    tx.commit().await.map_err(backend)?;
    Ok(Some(app))
}

pub(crate) async fn delete(store: &SqliteStore, id: &ApplicationId) -> Result<bool, StoreError> {
    // Endpoints and tokens of the application go with it (ON DELETE CASCADE).
    let result = sqlx::query("DELETE FROM applications WHERE id = ?")
        .bind(id.as_str())
        .execute(&store.writer)
        .await
        .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

fn from_row(row: &SqliteRow) -> Result<Application, StoreError> {
    let get_text = |name: &str| row.try_get::<String, _>(name).map_err(|e| corrupt(name, e));
    let uid: Option<String> = row.try_get("uid").map_err(|e| corrupt("uid", e))?;
    let throttle: Option<i64> = row.try_get("throttle_rate").map_err(|e| corrupt("throttle_rate", e))?;
    Ok(Application {
        id: get_text("id")?.parse().map_err(|e| corrupt("id", e))?,
        uid: uid.map(|u| Uid::parse(&u)).transpose().map_err(|e| corrupt("uid", e))?,
        name: get_text("name")?,
        metadata: metadata_from_json(&get_text("metadata")?)?,
        throttle_rate: throttle.map(u16::try_from).transpose().map_err(|e| corrupt("throttle_rate", e))?,
        created_at: from_micros(row.try_get("created_at").map_err(|e| corrupt("created_at", e))?)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(|e| corrupt("updated_at", e))?)?,
    })
}
