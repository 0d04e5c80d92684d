//! Event types on SQLite. Deleting through the API archives; only `expunge` removes a row.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::change::EventTypeChange;
use herald_core::model::EventType;
use herald_core::name::EventTypeName;
use herald_core::store::{Page, PageRequest};
use herald_core::version::{converters_from_json, converters_to_json};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::rows::{PagePlan, corrupt, from_micros, names_to_json, parse_names, to_micros};
use crate::{SqliteStore, backend, store_error};

const COLUMNS: &str = "name, description, archived, deprecated, feature_flags, group_name, schemas, converters, validate_payloads, created_at, updated_at";

fn flags_to_json(event_type: &EventType) -> Option<String> {
    let flags = (!event_type.feature_flags.is_empty()).then(|| event_type.feature_flags.clone());
    names_to_json(&flags)
}

fn schemas_to_json(event_type: &EventType) -> Option<String> {
    event_type.schemas.as_ref().map(|s| serde_json::Value::Object(s.clone()).to_string())
}

pub(crate) async fn insert(store: &SqliteStore, event_type: &EventType) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO event_types (name, description, archived, deprecated, feature_flag, feature_flags,
                                  group_name, schemas, converters, validate_payloads, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(event_type.name.as_str())
    .bind(&event_type.description)
    .bind(event_type.archived)
    .bind(event_type.deprecated)
    .bind(event_type.feature_flags.first().map(EventTypeName::as_str))
    .bind(flags_to_json(event_type))
    .bind(event_type.group_name.as_deref())
    .bind(schemas_to_json(event_type))
    .bind(converters_to_json(&event_type.converters))
    .bind(event_type.validate_payloads)
    .bind(to_micros(event_type.created_at))
    .bind(to_micros(event_type.updated_at))
    .execute(&store.writer)
    .await
    .map_err(|e| store_error(e, "name"))?;
    Ok(())
}

pub(crate) async fn find(store: &SqliteStore, name: &EventTypeName) -> Result<Option<EventType>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM event_types WHERE name = ?");
    let row = sqlx::query(&sql).bind(name.as_str()).fetch_optional(&store.reader).await.map_err(backend)?;
    row.map(|row| from_row(&row)).transpose()
}

pub(crate) async fn list(
    store: &SqliteStore,
    page: &PageRequest,
    include_archived: bool,
) -> Result<Page<EventType>, StoreError> {
    let plan = PagePlan::new(page);
    let mut conditions = Vec::new();
    if !include_archived {
        conditions.push("archived = 0".to_owned());
    }
    if let Some((cmp, _)) = &plan.cursor {
        conditions.push(format!("name {cmp} ?"));
    }
    let filter =
        if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    let sql = format!("SELECT {COLUMNS} FROM event_types {filter} ORDER BY name {} LIMIT ?", plan.direction);
    let mut query = sqlx::query(&sql);
    if let Some((_, key)) = &plan.cursor {
        query = query.bind(key);
    }
    let rows = query.bind(plan.fetch).fetch_all(&store.reader).await.map_err(backend)?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

/// Applies `change` to the event type as it is now, under the write lock (`BEGIN IMMEDIATE`).
pub(crate) async fn update(
    store: &SqliteStore,
    name: &EventTypeName,
    change: &EventTypeChange,
    now: DateTime<Utc>,
) -> Result<Option<EventType>, StoreError> {
    let mut tx = store.writer.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let sql = format!("SELECT {COLUMNS} FROM event_types WHERE name = ?");
    let row = sqlx::query(&sql).bind(name.as_str()).fetch_optional(&mut *tx).await.map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    let mut event_type = from_row(&row)?;
    change.apply(&mut event_type, now)?;
    sqlx::query(
        "UPDATE event_types SET description = ?, archived = ?, deprecated = ?, feature_flag = ?,
                feature_flags = ?, group_name = ?,
                schemas = ?, converters = ?, validate_payloads = ?, updated_at = ?
         WHERE name = ?",
    )
    .bind(&event_type.description)
    .bind(event_type.archived)
    .bind(event_type.deprecated)
    .bind(event_type.feature_flags.first().map(EventTypeName::as_str))
    .bind(flags_to_json(&event_type))
    .bind(event_type.group_name.as_deref())
    .bind(schemas_to_json(&event_type))
    .bind(converters_to_json(&event_type.converters))
    .bind(event_type.validate_payloads)
    .bind(to_micros(event_type.updated_at))
    .bind(event_type.name.as_str())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(Some(event_type))
}

pub(crate) async fn expunge(store: &SqliteStore, name: &EventTypeName) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM event_types WHERE name = ?")
        .bind(name.as_str())
        .execute(&store.writer)
        .await
        .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

pub(crate) async fn unknown(
    store: &SqliteStore,
    names: &[EventTypeName],
) -> Result<Vec<EventTypeName>, StoreError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders = vec!["?"; names.len()].join(", ");
    let sql = format!("SELECT name FROM event_types WHERE name IN ({placeholders})");
    let mut query = sqlx::query_scalar::<_, String>(&sql);
    for name in names {
        query = query.bind(name.as_str());
    }
    let known = query.fetch_all(&store.reader).await.map_err(backend)?;
    Ok(names.iter().filter(|name| !known.iter().any(|k| k == name.as_str())).cloned().collect())
}

fn from_row(row: &SqliteRow) -> Result<EventType, StoreError> {
    let get_text = |name: &str| row.try_get::<String, _>(name).map_err(|e| corrupt(name, e));
    let opt_text = |name: &str| row.try_get::<Option<String>, _>(name).map_err(|e| corrupt(name, e));
    let schemas = match opt_text("schemas")? {
        Some(text) => match serde_json::from_str(&text).map_err(|e| corrupt("schemas", e))? {
            serde_json::Value::Object(map) => Some(map),
            _ => return Err(StoreError::Corrupt("schemas: not an object".to_owned())),
        },
        None => None,
    };
    Ok(EventType {
        name: EventTypeName::parse(&get_text("name")?).map_err(|e| corrupt("name", e))?,
        description: get_text("description")?,
        archived: row.try_get("archived").map_err(|e| corrupt("archived", e))?,
        deprecated: row.try_get("deprecated").map_err(|e| corrupt("deprecated", e))?,
        feature_flags: parse_names(opt_text("feature_flags")?, EventTypeName::parse)?.unwrap_or_default(),
        group_name: opt_text("group_name")?,
        schemas,
        converters: converters_from_json(opt_text("converters")?.as_deref())
            .map_err(|e| corrupt("converters", e))?,
        validate_payloads: row.try_get("validate_payloads").map_err(|e| corrupt("validate_payloads", e))?,
        created_at: from_micros(row.try_get("created_at").map_err(|e| corrupt("created_at", e))?)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(|e| corrupt("updated_at", e))?)?,
    })
}
