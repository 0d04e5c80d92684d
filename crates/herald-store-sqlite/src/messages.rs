//! Messages on SQLite: reads, payload removal and retention (the insert, with its
//! deliveries, is the writer thread's: `writer::messages`).

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::delivery::{DeliveryStatus, Envelope, Message, MessageFilter, Trigger};
use herald_core::id::{ApplicationId, EndpointId, MessageId};
use herald_core::name::{ChannelName, EventId, EventTypeName, OrderingKey};
use herald_core::store::{MessageKey, Page, PageRequest};
use herald_core::version::PayloadVersion;
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqliteRow};
use sqlx::{Arguments, Row};

use crate::rows::{PagePlan, corrupt, from_micros, parse_names, to_micros};
use crate::{SqliteStore, backend};

/// The columns `from_row` reads, prefixed for joins.
pub(crate) const COLUMNS: &str = "m.id, m.app_id, m.event_type, m.event_id, m.channels, m.payload, \
                                  m.created_at, m.deliver_at, m.payload_expires_at, m.ordering_key, \
                                  m.payload_version, m.envelope";

/// Queues a delivery of `message` to `endpoint`, due at `due`.
pub(crate) async fn insert_delivery(
    conn: &mut SqliteConnection,
    message: &Message,
    endpoint: &EndpointId,
    trigger: Trigger,
    due: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO deliveries (msg_id, app_id, endpoint_id, status, trigger, attempts, next_attempt_at,
                                 created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
    )
    .bind(message.id.as_str())
    .bind(message.app_id.as_str())
    .bind(endpoint.as_str())
    .bind(DeliveryStatus::Pending.code())
    .bind(trigger.code())
    .bind(to_micros(due))
    .bind(to_micros(message.created_at))
    .bind(to_micros(message.created_at))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Stores a message with one delivery, to `endpoint` only, in one transaction.
pub(crate) async fn insert_for_endpoint(
    store: &SqliteStore,
    message: &Message,
    endpoint: &EndpointId,
) -> Result<(), StoreError> {
    let mut tx = store.writer.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM endpoints WHERE id = ? AND app_id = ?")
        .bind(endpoint.as_str())
        .bind(message.app_id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    sqlx::query(
        "INSERT INTO messages (id, app_id, event_type, event_id, channels, payload, created_at,
                               deliver_at, payload_expires_at, ordering_key, payload_version, envelope)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(message.id.as_str())
    .bind(message.app_id.as_str())
    .bind(message.event_type.as_str())
    .bind(message.event_id.as_ref().map(EventId::as_str))
    .bind(crate::rows::names_to_json(&message.channels))
    .bind(message.payload.as_deref())
    .bind(to_micros(message.created_at))
    .bind(message.deliver_at.map(to_micros))
    .bind(to_micros(message.payload_expires_at))
    .bind(message.ordering_key.as_ref().map(OrderingKey::as_str))
    .bind(message.payload_version.number())
    .bind(message.envelope.as_ref().map(herald_core::delivery::Envelope::to_text))
    .execute(&mut *tx)
    .await
    .map_err(|e| crate::store_error(e, "eventId"))?;
    let due = message.deliver_at.unwrap_or(message.created_at);
    insert_delivery(&mut tx, message, endpoint, Trigger::Scheduled, due).await?;
    tx.commit().await.map_err(backend)
}

pub(crate) async fn find(
    store: &SqliteStore,
    app: &ApplicationId,
    key: &MessageKey,
) -> Result<Option<Message>, StoreError> {
    let (column, value) = match key {
        MessageKey::Id(id) => ("id", id.as_str()),
        MessageKey::EventId(event_id) => ("event_id", event_id.as_str()),
    };
    let sql = format!("SELECT {COLUMNS} FROM messages m WHERE m.app_id = ? AND m.{column} = ?");
    let row = sqlx::query(&sql)
        .bind(app.as_str())
        .bind(value)
        .fetch_optional(&store.reader)
        .await
        .map_err(backend)?;
    row.map(|row| from_row(&row)).transpose()
}

/// Appends the message filter's conditions (on alias `m`) and their arguments.
pub(crate) fn filter_conditions(
    filter: &MessageFilter,
    conditions: &mut Vec<String>,
    args: &mut SqliteArguments<'_>,
) -> Result<(), StoreError> {
    let bind_error = |e: sqlx::error::BoxDynError| StoreError::Backend(e);
    if !filter.event_types.is_empty() {
        let placeholders = vec!["?"; filter.event_types.len()].join(", ");
        conditions.push(format!("m.event_type IN ({placeholders})"));
        for event_type in &filter.event_types {
            args.add(event_type.as_str().to_owned()).map_err(bind_error)?;
        }
    }
    if let Some(channel) = &filter.channel {
        conditions.push("EXISTS (SELECT 1 FROM json_each(m.channels) WHERE value = ?)".to_owned());
        args.add(channel.as_str().to_owned()).map_err(bind_error)?;
    }
    if let Some(before) = filter.before {
        conditions.push("m.created_at < ?".to_owned());
        args.add(to_micros(before)).map_err(bind_error)?;
    }
    if let Some(after) = filter.after {
        conditions.push("m.created_at > ?".to_owned());
        args.add(to_micros(after)).map_err(bind_error)?;
    }
    Ok(())
}

pub(crate) async fn list(
    store: &SqliteStore,
    app: &ApplicationId,
    filter: &MessageFilter,
    page: &PageRequest,
) -> Result<Page<Message>, StoreError> {
    let plan = PagePlan::new(page);
    let mut conditions = vec!["m.app_id = ?".to_owned()];
    let mut args = SqliteArguments::default();
    args.add(app.as_str().to_owned()).map_err(StoreError::Backend)?;
    filter_conditions(filter, &mut conditions, &mut args)?;
    if let Some((cmp, key)) = &plan.cursor {
        conditions.push(format!("m.id {cmp} ?"));
        args.add(key.clone()).map_err(StoreError::Backend)?;
    }
    args.add(plan.fetch).map_err(StoreError::Backend)?;
    let sql = format!(
        "SELECT {COLUMNS} FROM messages m WHERE {} ORDER BY m.id {} LIMIT ?",
        conditions.join(" AND "),
        plan.direction
    );
    let rows = sqlx::query_with(&sql, args).fetch_all(&store.reader).await.map_err(backend)?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

pub(crate) async fn expunge_payload(
    store: &SqliteStore,
    app: &ApplicationId,
    id: &MessageId,
) -> Result<bool, StoreError> {
    let result = sqlx::query("UPDATE messages SET payload = NULL WHERE app_id = ? AND id = ?")
        .bind(app.as_str())
        .bind(id.as_str())
        .execute(&store.writer)
        .await
        .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

pub(crate) async fn expire_payloads(
    store: &SqliteStore,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "UPDATE messages SET payload = NULL WHERE id IN
           (SELECT id FROM messages WHERE payload IS NOT NULL AND payload_expires_at <= ? LIMIT ?)",
    )
    .bind(to_micros(now))
    .bind(i64::from(limit))
    .execute(&store.writer)
    .await
    .map_err(backend)?;
    Ok(result.rows_affected())
}

/// Deletes up to `limit` of the oldest messages created before `before`, in one statement; the
/// schema's `ON DELETE CASCADE` takes their deliveries and attempts along.
pub(crate) async fn delete_before(
    store: &SqliteStore,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "DELETE FROM messages WHERE id IN
           (SELECT id FROM messages WHERE created_at < ? ORDER BY created_at LIMIT ?)",
    )
    .bind(to_micros(before))
    .bind(i64::from(limit))
    .execute(&store.writer)
    .await
    .map_err(backend)?;
    Ok(result.rows_affected())
}

/// Reads a message from columns named as in [`COLUMNS`] (without the alias).
pub(crate) fn from_row(row: &SqliteRow) -> Result<Message, StoreError> {
    let get_text = |name: &str| row.try_get::<String, _>(name).map_err(|e| corrupt(name, e));
    let opt_text = |name: &str| row.try_get::<Option<String>, _>(name).map_err(|e| corrupt(name, e));
    let deliver_at: Option<i64> = row.try_get("deliver_at").map_err(|e| corrupt("deliver_at", e))?;
    Ok(Message {
        id: get_text("id")?.parse().map_err(|e| corrupt("id", e))?,
        app_id: get_text("app_id")?.parse().map_err(|e| corrupt("app_id", e))?,
        event_type: EventTypeName::parse(&get_text("event_type")?).map_err(|e| corrupt("event_type", e))?,
        event_id: opt_text("event_id")?
            .map(|e| EventId::parse(&e))
            .transpose()
            .map_err(|e| corrupt("event_id", e))?,
        channels: parse_names(opt_text("channels")?, ChannelName::parse)?,
        payload: row.try_get("payload").map_err(|e| corrupt("payload", e))?,
        created_at: from_micros(row.try_get("created_at").map_err(|e| corrupt("created_at", e))?)?,
        deliver_at: deliver_at.map(from_micros).transpose()?,
        payload_expires_at: from_micros(
            row.try_get("payload_expires_at").map_err(|e| corrupt("payload_expires_at", e))?,
        )?,
        ordering_key: opt_text("ordering_key")?
            .map(|k| OrderingKey::parse(&k))
            .transpose()
            .map_err(|e| corrupt("ordering_key", e))?,
        payload_version: {
            let number: i64 = row.try_get("payload_version").map_err(|e| corrupt("payload_version", e))?;
            PayloadVersion::from_stored(number).ok_or_else(|| corrupt("payload_version", number))?
        },
        envelope: opt_text("envelope")?
            .map(|text| Envelope::from_text(&text).ok_or_else(|| corrupt("envelope", "not an envelope")))
            .transpose()?,
    })
}
