//! Endpoints on SQLite. Their secrets (and the credentials of their URLs) are sealed into one
//! encrypted column.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::change::EndpointChange;
use herald_core::id::{ApplicationId, EndpointId};
use herald_core::model::{Endpoint, OnExhausted};
use herald_core::name::{ChannelName, EventTypeName, Uid};
use herald_core::sealed::{open_endpoint_secrets, seal_endpoint_secrets, url_at_rest};
use herald_core::store::{EndpointKey, Key, Page, PageRequest};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::rows::{
    PagePlan, corrupt, from_micros, metadata_from_json, metadata_to_json, names_to_json, parse_names,
    to_micros,
};
use crate::{SqliteStore, backend, store_error};

const COLUMNS: &str = "id, app_id, uid, url, description, disabled, event_types, channels, \
                       throttle_rate, metadata, sealed_secrets, created_at, updated_at, ordered, \
                       ordered_on_exhausted";

pub(crate) async fn insert(store: &SqliteStore, endpoint: &Endpoint) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO endpoints (id, app_id, uid, url, description, disabled, event_types, channels,
                               throttle_rate, metadata, sealed_secrets, created_at, updated_at,
                               ordered, ordered_on_exhausted)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(endpoint.id.as_str())
    .bind(endpoint.app_id.as_str())
    .bind(endpoint.uid.as_ref().map(Uid::as_str))
    .bind(url_at_rest(endpoint))
    .bind(&endpoint.description)
    .bind(endpoint.disabled)
    .bind(names_to_json(&endpoint.event_types))
    .bind(names_to_json(&endpoint.channels))
    .bind(endpoint.throttle_rate.map(i64::from))
    .bind(metadata_to_json(&endpoint.metadata))
    .bind(seal_endpoint_secrets(&store.cipher, endpoint))
    .bind(to_micros(endpoint.created_at))
    .bind(to_micros(endpoint.updated_at))
    .bind(endpoint.ordered)
    .bind(endpoint.ordered_on_exhausted.code())
    .execute(&store.writer)
    .await
    .map_err(|e| store_error(e, "uid"))?;
    Ok(())
}

pub(crate) async fn find(
    store: &SqliteStore,
    app: &ApplicationId,
    key: &EndpointKey,
) -> Result<Option<Endpoint>, StoreError> {
    let (column, value) = match key {
        Key::Id(id) => ("id", id.as_str()),
        Key::Uid(uid) => ("uid", uid.as_str()),
    };
    let sql = format!("SELECT {COLUMNS} FROM endpoints WHERE app_id = ? AND {column} = ?");
    let row = sqlx::query(&sql)
        .bind(app.as_str())
        .bind(value)
        .fetch_optional(&store.reader)
        .await
        .map_err(backend)?;
    row.map(|row| from_row(store, &row)).transpose()
}

pub(crate) async fn list(
    store: &SqliteStore,
    app: &ApplicationId,
    page: &PageRequest,
) -> Result<Page<Endpoint>, StoreError> {
    let plan = PagePlan::new(page);
    let filter = match &plan.cursor {
        Some((cmp, _)) => format!("AND id {cmp} ?"),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM endpoints WHERE app_id = ? {filter} ORDER BY id {} LIMIT ?",
        plan.direction
    );
    let mut query = sqlx::query(&sql).bind(app.as_str());
    if let Some((_, key)) = &plan.cursor {
        query = query.bind(key);
    }
    let rows = query.bind(plan.fetch).fetch_all(&store.reader).await.map_err(backend)?;
    let items = rows.iter().map(|row| from_row(store, row)).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

/// Applies `change` to the endpoint as it is now. `BEGIN IMMEDIATE` takes the write lock
/// before the row is read, so no other writer (the writer thread disabling it after a `410`,
/// another request) can change it between this read and this write.
pub(crate) async fn update(
    store: &SqliteStore,
    app: &ApplicationId,
    id: &EndpointId,
    change: &EndpointChange,
    now: DateTime<Utc>,
) -> Result<Option<Endpoint>, StoreError> {
    let mut tx = store.writer.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let sql = format!("SELECT {COLUMNS} FROM endpoints WHERE app_id = ? AND id = ?");
    let row = sqlx::query(&sql)
        .bind(app.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    let mut endpoint = from_row(store, &row)?;
    change.apply(&mut endpoint, now);
    sqlx::query(
        "UPDATE endpoints SET uid = ?, url = ?, description = ?, disabled = ?, event_types = ?,
                channels = ?, throttle_rate = ?, metadata = ?, sealed_secrets = ?, updated_at = ?,
                ordered = ?, ordered_on_exhausted = ?
         WHERE id = ? AND app_id = ?",
    )
    .bind(endpoint.uid.as_ref().map(Uid::as_str))
    .bind(url_at_rest(&endpoint))
    .bind(&endpoint.description)
    .bind(endpoint.disabled)
    .bind(names_to_json(&endpoint.event_types))
    .bind(names_to_json(&endpoint.channels))
    .bind(endpoint.throttle_rate.map(i64::from))
    .bind(metadata_to_json(&endpoint.metadata))
    .bind(seal_endpoint_secrets(&store.cipher, &endpoint))
    .bind(to_micros(endpoint.updated_at))
    .bind(endpoint.ordered)
    .bind(endpoint.ordered_on_exhausted.code())
    .bind(endpoint.id.as_str())
    .bind(endpoint.app_id.as_str())
    .execute(&mut *tx)
    .await
    .map_err(|e| store_error(e, "uid"))?;
    tx.commit().await.map_err(backend)?;
    Ok(Some(endpoint))
}

pub(crate) async fn delete(
    store: &SqliteStore,
    app: &ApplicationId,
    id: &EndpointId,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM endpoints WHERE id = ? AND app_id = ?")
        .bind(id.as_str())
        .bind(app.as_str())
        .execute(&store.writer)
        .await
        .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

fn from_row(store: &SqliteStore, row: &SqliteRow) -> Result<Endpoint, StoreError> {
    let get_text = |name: &str| row.try_get::<String, _>(name).map_err(|e| corrupt(name, e));
    let opt_text = |name: &str| row.try_get::<Option<String>, _>(name).map_err(|e| corrupt(name, e));
    let throttle: Option<i64> = row.try_get("throttle_rate").map_err(|e| corrupt("throttle_rate", e))?;
    let sealed: Vec<u8> = row.try_get("sealed_secrets").map_err(|e| corrupt("sealed_secrets", e))?;
    let secrets = open_endpoint_secrets(&store.cipher, &sealed)?;
    Ok(Endpoint {
        id: get_text("id")?.parse().map_err(|e| corrupt("id", e))?,
        app_id: get_text("app_id")?.parse().map_err(|e| corrupt("app_id", e))?,
        uid: opt_text("uid")?.map(|u| Uid::parse(&u)).transpose().map_err(|e| corrupt("uid", e))?,
        url: secrets.full_url(get_text("url")?.parse().map_err(|e| corrupt("url", e))?),
        description: get_text("description")?,
        disabled: row.try_get("disabled").map_err(|e| corrupt("disabled", e))?,
        event_types: parse_names(opt_text("event_types")?, EventTypeName::parse)?,
        channels: parse_names(opt_text("channels")?, ChannelName::parse)?,
        throttle_rate: throttle.map(u16::try_from).transpose().map_err(|e| corrupt("throttle_rate", e))?,
        metadata: metadata_from_json(&get_text("metadata")?)?,
        keys: secrets.keys,
        headers: secrets.headers,
        bearer_token: secrets.bearer_token,
        ordered: row.try_get("ordered").map_err(|e| corrupt("ordered", e))?,
        ordered_on_exhausted: {
            let code: i64 =
                row.try_get("ordered_on_exhausted").map_err(|e| corrupt("ordered_on_exhausted", e))?;
            OnExhausted::from_code(code).ok_or_else(|| corrupt("ordered_on_exhausted", code))?
        },
        created_at: from_micros(row.try_get("created_at").map_err(|e| corrupt("created_at", e))?)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(|e| corrupt("updated_at", e))?)?,
    })
}
