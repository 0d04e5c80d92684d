//! Event types on PostgreSQL. Deleting through the API archives; only `expunge` removes a row.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::change::EventTypeChange;
use herald_core::model::EventType;
use herald_core::name::EventTypeName;
use herald_core::store::{Page, PageRequest};
use herald_core::version::{converters_from_json, converters_to_json};
use sqlx::QueryBuilder;
use sqlx::postgres::PgRow;

use crate::rows::{PagePlan, corrupt, get, names_to_array, parse_names};
use crate::{PostgresStore, backend, store_error};

const COLUMNS: &str = "name, description, archived, deprecated, feature_flags, group_name, schemas::text AS schemas, \
                       converters, validate_payloads, created_at, updated_at";

fn flags(event_type: &EventType) -> Option<Vec<String>> {
    let flags = (!event_type.feature_flags.is_empty()).then(|| event_type.feature_flags.clone());
    names_to_array(&flags)
}

fn schemas_to_json(event_type: &EventType) -> Option<String> {
    event_type.schemas.as_ref().map(|s| serde_json::Value::Object(s.clone()).to_string())
}

pub(crate) async fn insert(store: &PostgresStore, event_type: &EventType) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO event_types (name, description, archived, deprecated, feature_flag, schemas,
                                  created_at, updated_at, feature_flags, group_name, converters,
                                  validate_payloads)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12)",
    )
    .bind(event_type.name.as_str())
    .bind(&event_type.description)
    .bind(event_type.archived)
    .bind(event_type.deprecated)
    .bind(event_type.feature_flags.first().map(EventTypeName::as_str))
    .bind(schemas_to_json(event_type))
    .bind(event_type.created_at)
    .bind(event_type.updated_at)
    .bind(flags(event_type))
    .bind(event_type.group_name.as_deref())
    .bind(converters_to_json(&event_type.converters))
    .bind(event_type.validate_payloads)
    .execute(&store.pool)
    .await
    .map_err(|e| store_error(e, "name"))?;
    Ok(())
}

pub(crate) async fn find(
    store: &PostgresStore,
    name: &EventTypeName,
) -> Result<Option<EventType>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM event_types WHERE name = $1");
    let row = sqlx::query(&sql).bind(name.as_str()).fetch_optional(&store.pool).await.map_err(backend)?;
    row.map(|row| from_row(&row)).transpose()
}

pub(crate) async fn list(
    store: &PostgresStore,
    page: &PageRequest,
    include_archived: bool,
) -> Result<Page<EventType>, StoreError> {
    let plan = PagePlan::new(page);
    let archived = if include_archived { "TRUE" } else { "NOT archived" };
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM event_types WHERE {archived}"));
    plan.push_cursor(&mut query, "name");
    plan.push_order_and_limit(&mut query, "name");
    let rows = query.build().fetch_all(&store.pool).await.map_err(backend)?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

/// Applies `change` to the event type as it is now (the row read `FOR UPDATE`).
pub(crate) async fn update(
    store: &PostgresStore,
    name: &EventTypeName,
    change: &EventTypeChange,
    now: DateTime<Utc>,
) -> Result<Option<EventType>, StoreError> {
    let mut tx = store.pool.begin().await.map_err(backend)?;
    let sql = format!("SELECT {COLUMNS} FROM event_types WHERE name = $1 FOR UPDATE");
    let row = sqlx::query(&sql).bind(name.as_str()).fetch_optional(&mut *tx).await.map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    let mut event_type = from_row(&row)?;
    change.apply(&mut event_type, now)?;
    sqlx::query(
        "UPDATE event_types SET description = $1, archived = $2, deprecated = $3, feature_flag = $4,
                schemas = $5::jsonb, updated_at = $6, feature_flags = $8, group_name = $9,
                converters = $10, validate_payloads = $11
         WHERE name = $7",
    )
    .bind(&event_type.description)
    .bind(event_type.archived)
    .bind(event_type.deprecated)
    .bind(event_type.feature_flags.first().map(EventTypeName::as_str))
    .bind(schemas_to_json(&event_type))
    .bind(event_type.updated_at)
    .bind(event_type.name.as_str())
    .bind(flags(&event_type))
    .bind(event_type.group_name.as_deref())
    .bind(converters_to_json(&event_type.converters))
    .bind(event_type.validate_payloads)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(Some(event_type))
}

pub(crate) async fn expunge(store: &PostgresStore, name: &EventTypeName) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM event_types WHERE name = $1")
        .bind(name.as_str())
        .execute(&store.pool)
        .await
        .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

pub(crate) async fn unknown(
    store: &PostgresStore,
    names: &[EventTypeName],
) -> Result<Vec<EventTypeName>, StoreError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<String> = names.iter().map(ToString::to_string).collect();
    let known: Vec<String> = sqlx::query_scalar("SELECT name FROM event_types WHERE name = ANY($1)")
        .bind(wanted)
        .fetch_all(&store.pool)
        .await
        .map_err(backend)?;
    Ok(names.iter().filter(|name| !known.iter().any(|k| k == name.as_str())).cloned().collect())
}

fn from_row(row: &PgRow) -> Result<EventType, StoreError> {
    let schemas = match get::<Option<String>>(row, "schemas")? {
        Some(text) => match serde_json::from_str(&text).map_err(|e| corrupt("schemas", e))? {
            serde_json::Value::Object(map) => Some(map),
            _ => return Err(corrupt("schemas", "not an object")),
        },
        None => None,
    };
    Ok(EventType {
        name: EventTypeName::parse(&get::<String>(row, "name")?).map_err(|e| corrupt("name", e))?,
        description: get(row, "description")?,
        archived: get(row, "archived")?,
        deprecated: get(row, "deprecated")?,
        feature_flags: parse_names(row, "feature_flags", EventTypeName::parse)?.unwrap_or_default(),
        group_name: get(row, "group_name")?,
        schemas,
        converters: converters_from_json(get::<Option<String>>(row, "converters")?.as_deref())
            .map_err(|e| corrupt("converters", e))?,
        validate_payloads: get(row, "validate_payloads")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}
