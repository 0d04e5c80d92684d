//! Applications on PostgreSQL.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::change::ApplicationChange;
use herald_core::id::ApplicationId;
use herald_core::model::Application;
use herald_core::name::Uid;
use herald_core::store::{ApplicationKey, Key, Page, PageRequest};
use sqlx::QueryBuilder;
use sqlx::postgres::PgRow;

use crate::rows::{
    PagePlan, get, metadata_from_json, metadata_to_json, parse, parse_optional_name, parse_throttle,
};
use crate::{PostgresStore, backend, store_error};

const COLUMNS: &str = "id, uid, name, metadata::text AS metadata, throttle_rate, created_at, updated_at";

pub(crate) async fn insert(store: &PostgresStore, app: &Application) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO applications (id, uid, name, metadata, throttle_rate, created_at, updated_at)
         VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)",
    )
    .bind(app.id.as_str())
    .bind(app.uid.as_ref().map(Uid::as_str))
    .bind(&app.name)
    .bind(metadata_to_json(&app.metadata))
    .bind(app.throttle_rate.map(i32::from))
    .bind(app.created_at)
    .bind(app.updated_at)
    .execute(&store.pool)
    .await
    .map_err(|e| store_error(e, "uid"))?;
    Ok(())
}

pub(crate) async fn find(
    store: &PostgresStore,
    key: &ApplicationKey,
) -> Result<Option<Application>, StoreError> {
    let (column, value) = match key {
        Key::Id(id) => ("id", id.as_str()),
        Key::Uid(uid) => ("uid", uid.as_str()),
    };
    let sql = format!("SELECT {COLUMNS} FROM applications WHERE {column} = $1");
    let row = sqlx::query(&sql).bind(value).fetch_optional(&store.pool).await.map_err(backend)?;
    row.map(|row| from_row(&row)).transpose()
}

pub(crate) async fn list(store: &PostgresStore, page: &PageRequest) -> Result<Page<Application>, StoreError> {
    let plan = PagePlan::new(page);
    // Applications that back ingest sources are not listed (they are the sources').
    let mut query = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM applications WHERE id NOT IN (SELECT app_id FROM ingest_sources)"
    ));
    plan.push_cursor(&mut query, "id");
    plan.push_order_and_limit(&mut query, "id");
    let rows = query.build().fetch_all(&store.pool).await.map_err(backend)?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

/// Applies `change` to the application as it is now (the row read `FOR UPDATE`).
pub(crate) async fn update(
    store: &PostgresStore,
    id: &ApplicationId,
    change: &ApplicationChange,
    now: DateTime<Utc>,
) -> Result<Option<Application>, StoreError> {
    let mut tx = store.pool.begin().await.map_err(backend)?;
    let sql = format!("SELECT {COLUMNS} FROM applications WHERE id = $1 FOR UPDATE");
    let row = sqlx::query(&sql).bind(id.as_str()).fetch_optional(&mut *tx).await.map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    let mut app = from_row(&row)?;
    change.apply(&mut app, now);
    sqlx::query(
        "UPDATE applications SET uid = $1, name = $2, metadata = $3::jsonb, throttle_rate = $4,
                updated_at = $5
         WHERE id = $6",
    )
    .bind(app.uid.as_ref().map(Uid::as_str))
    .bind(&app.name)
    .bind(metadata_to_json(&app.metadata))
    .bind(app.throttle_rate.map(i32::from))
    .bind(app.updated_at)
    .bind(app.id.as_str())
    .execute(&mut *tx)
    .await
    .map_err(|e| store_error(e, "uid"))?;
    tx.commit().await.map_err(backend)?;
    Ok(Some(app))
}

pub(crate) async fn delete(store: &PostgresStore, id: &ApplicationId) -> Result<bool, StoreError> {
    let mut tx = store.pool.begin().await.map_err(backend)?;
    let deleted = delete_in(&mut tx, "DELETE FROM applications WHERE id = $1", id.as_str()).await?;
    tx.commit().await.map_err(backend)?;
    Ok(deleted)
}

/// Runs `delete`, a statement deleting one application (bound to `$1`), and then deletes that
/// application's attempts: endpoints, tokens, messages and deliveries go with the application
/// through `ON DELETE CASCADE`; attempts have no foreign key. The attempts are deleted by a
/// second statement, whose snapshot also holds an attempt recorded while the first waited.
pub(crate) async fn delete_in(
    tx: &mut sqlx::PgConnection,
    delete: &str,
    key: &str,
) -> Result<bool, StoreError> {
    let deleted: Option<String> = sqlx::query_scalar(&format!("{delete} RETURNING id"))
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
    let Some(app) = deleted else { return Ok(false) };
    sqlx::query("DELETE FROM attempts WHERE app_id = $1")
        .bind(app)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    Ok(true)
}

fn from_row(row: &PgRow) -> Result<Application, StoreError> {
    Ok(Application {
        id: parse(row, "id")?,
        uid: parse_optional_name(row, "uid", Uid::parse)?,
        name: get(row, "name")?,
        metadata: metadata_from_json(row, "metadata")?,
        throttle_rate: parse_throttle(row)?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}
