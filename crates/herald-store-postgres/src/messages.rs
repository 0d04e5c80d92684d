//! Messages on PostgreSQL: the insert (with its deliveries, in one transaction), reads,
//! payload removal and retention.

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::delivery::{DeliveryStatus, Envelope, Message, MessageFilter, Trigger};
use herald_core::id::{ApplicationId, EndpointId, MessageId};
use herald_core::name::{ChannelName, EventId, EventTypeName, OrderingKey};
use herald_core::store::{MessageKey, Page, PageRequest};
use herald_core::version::PayloadVersion;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::rows::{
    PagePlan, corrupt, get, names_to_array, parse, parse_names, parse_optional_name, status_code,
    trigger_code,
};
use crate::{NEW_WORK_CHANNEL, PostgresStore, backend, store_error};

/// The columns [`from_row`] reads, for alias `m`.
pub(crate) const COLUMNS: &str = "m.id, m.app_id, m.event_type, m.event_id, m.channels, m.payload, \
                                  m.created_at, m.deliver_at, m.payload_expires_at, m.ordering_key, \
                                  m.payload_version, m.envelope";

/// What storing one message of a batch gave: the endpoints it was queued for, or why it was
/// not stored (a duplicate `eventId`).
pub(crate) type Inserted = Result<Vec<EndpointId>, StoreError>;

/// Stores the messages and one pending delivery per matching enabled endpoint of each, and
/// notifies [`NEW_WORK_CHANNEL`] (sent on commit) when it queued any: all in one statement,
/// so one round trip and one transaction for the whole batch (a statement is atomic on its
/// own). The intake task (`intake.rs`) calls it for whatever arrived together.
///
/// A message whose `eventId` its application already has (or an earlier message of the same
/// batch has) is skipped and reported as a conflict; any other error fails the whole batch
/// and nothing of it is written (a missing application, which a batch of one reports as not
/// found). Deliveries are numbered in the batch's order, so ordered
/// lanes keep the order the messages were accepted in.
///
/// The endpoint filter is [`herald_core::delivery::Subscription::matches`] in SQL: no event-type list or the
/// message's type in it, and no channel list or a channel in common with the message (a
/// message without channels matches only endpoints without channels: `&&` with NULL is NULL).
/// Channels travel comma-joined, since a channel name can't hold a comma and an array of
/// arrays can't be unnested. `FOR KEY SHARE`: an endpoint deleted by another node meanwhile is
/// either skipped (deleted first) or waits for this statement, so the deliveries' foreign keys
/// never fail halfway; updates of an endpoint (not of its key) do not wait for it.
pub(crate) async fn insert_batch(
    pool: &sqlx::PgPool,
    batch: &[&Message],
) -> Result<Vec<Inserted>, StoreError> {
    let ids: Vec<&str> = batch.iter().map(|m| m.id.as_str()).collect();
    let rows = sqlx::query(INSERT_BATCH_SQL)
        .bind(&ids)
        .bind(batch.iter().map(|m| m.app_id.as_str()).collect::<Vec<_>>())
        .bind(batch.iter().map(|m| m.event_type.as_str()).collect::<Vec<_>>())
        .bind(batch.iter().map(|m| m.event_id.as_ref().map(EventId::as_str)).collect::<Vec<_>>())
        .bind(batch.iter().map(|m| joined_channels(m.channels.as_deref())).collect::<Vec<_>>())
        .bind(batch.iter().map(|m| m.payload.as_deref()).collect::<Vec<_>>())
        .bind(batch.iter().map(|m| m.created_at).collect::<Vec<_>>())
        .bind(batch.iter().map(|m| m.deliver_at).collect::<Vec<_>>())
        .bind(batch.iter().map(|m| m.payload_expires_at).collect::<Vec<_>>())
        .bind(batch.iter().map(|m| m.ordering_key.as_ref().map(|key| key.as_str())).collect::<Vec<_>>())
        .bind(batch.iter().map(|m| m.payload_version.number() as i32).collect::<Vec<_>>())
        .bind(batch.iter().map(|m| m.envelope.as_ref().map(Envelope::to_text)).collect::<Vec<_>>())
        .bind(status_code(DeliveryStatus::Pending))
        .bind(trigger_code(Trigger::Scheduled))
        .bind(NEW_WORK_CHANNEL)
        .fetch_all(pool)
        .await
        .map_err(|e| match &e {
            // The only foreign key of a message: its application is gone (or never was).
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => store_error(e, "eventId"),
        })?;
    if rows.len() != batch.len() {
        return Err(corrupt(
            "inserted messages",
            format!("{} rows for {} messages", rows.len(), batch.len()),
        ));
    }
    rows.iter()
        .map(|row| {
            if !get::<bool>(row, "inserted")? {
                return Ok(Err(StoreError::Conflict { what: "eventId" }));
            }
            let endpoints: Vec<String> = get(row, "endpoints")?;
            Ok(endpoints.iter().map(|id| id.parse().map_err(|e| corrupt("endpoint_id", e))).collect())
        })
        .collect()
}

/// Stores one message as a batch of its own.
pub(crate) async fn insert_alone(pool: &sqlx::PgPool, message: &Message) -> Inserted {
    let mut results = insert_batch(pool, &[message]).await?;
    results.pop().unwrap_or_else(|| Err(corrupt("inserted messages", "no row for the message")))
}

/// A message's channels as [`INSERT_BATCH_SQL`] takes them.
fn joined_channels(channels: Option<&[ChannelName]>) -> Option<String> {
    channels.map(|list| list.iter().map(ChannelName::as_str).collect::<Vec<_>>().join(","))
}

/// The batch insert of [`insert_batch`]: `$1` to `$12` are the messages' columns as arrays,
/// `$13`/`$14` the deliveries' status and trigger, `$15` the channel to notify. One row per
/// message, in the batch's order.
const INSERT_BATCH_SQL: &str = "
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[],
                         $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::text[],
                         $11::int[], $12::text[])
         WITH ORDINALITY AS i(id, app_id, event_type, event_id, channels, payload, created_at,
                              deliver_at, payload_expires_at, ordering_key, payload_version, envelope, n)
), message AS (
    INSERT INTO messages (id, app_id, event_type, event_id, channels, payload, created_at,
                          deliver_at, payload_expires_at, ordering_key, payload_version, envelope)
    SELECT id, app_id, event_type, event_id, string_to_array(channels, ','), payload, created_at,
           deliver_at, payload_expires_at, ordering_key, payload_version, envelope
    FROM input ORDER BY n
    ON CONFLICT (app_id, event_id) WHERE event_id IS NOT NULL DO NOTHING
    RETURNING id
), targets AS (
    SELECT e.id, e.app_id, e.ordered, e.event_types, e.channels FROM endpoints e
    WHERE e.app_id = ANY($2::text[]) AND NOT e.disabled
    ORDER BY e.id
    FOR KEY SHARE
), queued AS (
    INSERT INTO deliveries (msg_id, app_id, endpoint_id, status, trigger, attempts,
                            next_attempt_at, created_at, updated_at, lane)
    SELECT i.id, i.app_id, t.id, $13, $14, 0, COALESCE(i.deliver_at, i.created_at), i.created_at,
           i.created_at, CASE WHEN t.ordered THEN COALESCE(i.ordering_key, '') END
    FROM input i
    JOIN message m ON m.id = i.id
    JOIN targets t ON t.app_id = i.app_id
         AND (t.event_types IS NULL OR i.event_type = ANY(t.event_types))
         AND (t.channels IS NULL OR t.channels && string_to_array(i.channels, ','))
    ORDER BY i.n, t.id
    RETURNING msg_id, endpoint_id
), per_message AS (
    SELECT msg_id, array_agg(endpoint_id ORDER BY endpoint_id) AS endpoints FROM queued GROUP BY msg_id
), notified AS (
    SELECT pg_notify($15, current_schema()) FROM (SELECT 1 FROM queued LIMIT 1) AS any_queued
)
SELECT m.id IS NOT NULL AS inserted, COALESCE(q.endpoints, '{}') AS endpoints,
       (SELECT count(*) FROM notified) AS notified
FROM input i
LEFT JOIN message m ON m.id = i.id
LEFT JOIN per_message q ON q.msg_id = i.id
ORDER BY i.n";

/// Stores a message with one delivery, to `endpoint` only, in one transaction.
pub(crate) async fn insert_for_endpoint(
    pool: &sqlx::PgPool,
    message: &Message,
    endpoint: &EndpointId,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query(
        "INSERT INTO messages (id, app_id, event_type, event_id, channels, payload, created_at,
                               deliver_at, payload_expires_at, ordering_key, payload_version, envelope)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(message.id.as_str())
    .bind(message.app_id.as_str())
    .bind(message.event_type.as_str())
    .bind(message.event_id.as_ref().map(EventId::as_str))
    .bind(names_to_array(&message.channels))
    .bind(message.payload.as_deref())
    .bind(message.created_at)
    .bind(message.deliver_at)
    .bind(message.payload_expires_at)
    .bind(message.ordering_key.as_ref().map(|key| key.as_str()))
    .bind(message.payload_version.number() as i32)
    .bind(message.envelope.as_ref().map(Envelope::to_text))
    .execute(&mut *tx)
    .await
    .map_err(|e| store_error(e, "eventId"))?;
    let queued = sqlx::query(
        "INSERT INTO deliveries (msg_id, app_id, endpoint_id, status, trigger, attempts, next_attempt_at,
                                 created_at, updated_at)
         SELECT $1, e.app_id, e.id, $2, $3, 0, $4, $5, $5
         FROM endpoints e WHERE e.id = $6 AND e.app_id = $7
         FOR KEY SHARE",
    )
    .bind(message.id.as_str())
    .bind(status_code(DeliveryStatus::Pending))
    .bind(trigger_code(Trigger::Scheduled))
    .bind(message.deliver_at.unwrap_or(message.created_at))
    .bind(message.created_at)
    .bind(endpoint.as_str())
    .bind(message.app_id.as_str())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    if queued.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    notify_new_work(&mut tx).await?;
    tx.commit().await.map_err(backend)
}

/// Tells listening nodes that deliveries were queued; PostgreSQL sends it when (and only if)
/// the surrounding transaction commits.
pub(crate) async fn notify_new_work(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, current_schema())")
        .bind(NEW_WORK_CHANNEL)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

pub(crate) async fn find(
    store: &PostgresStore,
    app: &ApplicationId,
    key: &MessageKey,
) -> Result<Option<Message>, StoreError> {
    let (column, value) = match key {
        MessageKey::Id(id) => ("id", id.as_str()),
        MessageKey::EventId(event_id) => ("event_id", event_id.as_str()),
    };
    let sql = format!("SELECT {COLUMNS} FROM messages m WHERE m.app_id = $1 AND m.{column} = $2");
    let row = sqlx::query(&sql)
        .bind(app.as_str())
        .bind(value)
        .fetch_optional(&store.pool)
        .await
        .map_err(backend)?;
    row.map(|row| from_row(&row)).transpose()
}

/// Appends the message filter's conditions on alias `m`, each as ` AND …`.
pub(crate) fn push_filter(query: &mut QueryBuilder<'_, Postgres>, filter: &MessageFilter) {
    if !filter.event_types.is_empty() {
        let names: Vec<String> = filter.event_types.iter().map(ToString::to_string).collect();
        query.push(" AND m.event_type = ANY(").push_bind(names).push(")");
    }
    if let Some(channel) = &filter.channel {
        query.push(" AND ").push_bind(channel.as_str().to_owned()).push(" = ANY(m.channels)");
    }
    if let Some(before) = filter.before {
        query.push(" AND m.created_at < ").push_bind(before);
    }
    if let Some(after) = filter.after {
        query.push(" AND m.created_at > ").push_bind(after);
    }
}

pub(crate) async fn list(
    store: &PostgresStore,
    app: &ApplicationId,
    filter: &MessageFilter,
    page: &PageRequest,
) -> Result<Page<Message>, StoreError> {
    let plan = PagePlan::new(page);
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM messages m WHERE m.app_id = "));
    query.push_bind(app.as_str().to_owned());
    push_filter(&mut query, filter);
    plan.push_cursor(&mut query, "m.id");
    plan.push_order_and_limit(&mut query, "m.id");
    let rows = query.build().fetch_all(&store.pool).await.map_err(backend)?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

pub(crate) async fn expunge_payload(
    store: &PostgresStore,
    app: &ApplicationId,
    id: &MessageId,
) -> Result<bool, StoreError> {
    let result = sqlx::query("UPDATE messages SET payload = NULL WHERE app_id = $1 AND id = $2")
        .bind(app.as_str())
        .bind(id.as_str())
        .execute(&store.pool)
        .await
        .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

/// Removes up to `limit` expired payloads. Rows another node is expiring at the same moment
/// are skipped rather than waited for, so concurrent maintenance never queues up.
pub(crate) async fn expire_payloads(
    store: &PostgresStore,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "UPDATE messages SET payload = NULL WHERE id IN
           (SELECT id FROM messages WHERE payload IS NOT NULL AND payload_expires_at <= $1
            ORDER BY payload_expires_at LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED)",
    )
    .bind(now)
    .bind(i64::from(limit))
    .execute(&store.pool)
    .await
    .map_err(backend)?;
    Ok(result.rows_affected())
}

/// Deletes up to `limit` of the oldest messages created before `$1`, with their deliveries
/// and attempts, in one statement that never waits for a row lock another transaction holds:
///
/// - `doomed` locks the messages `SKIP LOCKED`, so two nodes deleting at once take different
///   messages instead of queueing behind each other, and a message a resend is queueing again
///   (which holds it `FOR KEY SHARE`) is kept for a later batch.
/// - `held` locks those messages' deliveries `SKIP LOCKED` too. A delivery locked elsewhere
///   belongs to a transaction in progress (a worker recording an attempt, a lease); its
///   message is kept for a later batch.
/// - `gone` is what is deleted: the messages, their deliveries and their attempts.
const DELETE_BEFORE_SQL: &str = "
WITH doomed AS MATERIALIZED (
    SELECT id FROM messages WHERE created_at < $1
    ORDER BY created_at LIMIT $2
    FOR UPDATE SKIP LOCKED
),
held AS MATERIALIZED (
    SELECT d.id FROM deliveries d WHERE d.msg_id IN (SELECT id FROM doomed)
    FOR UPDATE SKIP LOCKED
),
gone AS MATERIALIZED (
    SELECT id FROM doomed
    WHERE NOT EXISTS (SELECT 1 FROM deliveries d
                      WHERE d.msg_id = doomed.id AND d.id NOT IN (SELECT id FROM held))
),
gone_deliveries AS (
    DELETE FROM deliveries d USING gone WHERE d.msg_id = gone.id
),
gone_attempts AS (
    DELETE FROM attempts a USING gone WHERE a.msg_id = gone.id
)
DELETE FROM messages m USING gone WHERE m.id = gone.id";

pub(crate) async fn delete_before(
    store: &PostgresStore,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<u64, StoreError> {
    let result = sqlx::query(DELETE_BEFORE_SQL)
        .bind(before)
        .bind(i64::from(limit))
        .execute(&store.pool)
        .await
        .map_err(backend)?;
    Ok(result.rows_affected())
}

/// Reads a message from columns named as in [`COLUMNS`] (without the alias).
pub(crate) fn from_row(row: &PgRow) -> Result<Message, StoreError> {
    Ok(Message {
        id: parse(row, "id")?,
        app_id: parse(row, "app_id")?,
        event_type: EventTypeName::parse(&get::<String>(row, "event_type")?)
            .map_err(|e| corrupt("event_type", e))?,
        event_id: parse_optional_name(row, "event_id", EventId::parse)?,
        channels: parse_names(row, "channels", ChannelName::parse)?,
        payload: get(row, "payload")?,
        created_at: get(row, "created_at")?,
        deliver_at: get(row, "deliver_at")?,
        payload_expires_at: get(row, "payload_expires_at")?,
        ordering_key: parse_optional_name(row, "ordering_key", OrderingKey::parse)?,
        payload_version: {
            let number: i32 = get(row, "payload_version")?;
            PayloadVersion::from_stored(i64::from(number))
                .ok_or_else(|| corrupt("payload_version", number))?
        },
        envelope: envelope(get(row, "envelope")?)?,
    })
}

/// Reads a stored envelope (`None` for a message sent through the API).
pub(crate) fn envelope(text: Option<String>) -> Result<Option<Envelope>, StoreError> {
    text.map(|text| Envelope::from_text(&text).ok_or_else(|| corrupt("envelope", "not an envelope")))
        .transpose()
}
