//! A new message and its deliveries, written inside the writer's transaction.

use herald_core::StoreError;
use herald_core::delivery::{DeliveryStatus, Envelope, Message, Subscription, Trigger};
use herald_core::id::{ApplicationId, EndpointId};
use herald_core::name::{ChannelName, EventId, EventTypeName};
use rusqlite::{Connection, params};

use super::{Batch, conflict_or, sql_error};
use crate::rows::{corrupt, names_to_json, parse_names, to_micros};

/// Inserts a message and one pending delivery per matching enabled endpoint; returns those
/// endpoints. The message's insert is the first statement, so a duplicate `eventId` (a
/// conflict) or a missing application (not found) fails before anything is written.
pub(super) fn insert(
    conn: &Connection,
    message: &Message,
    batch: &mut Batch,
) -> Result<Vec<EndpointId>, StoreError> {
    conn.prepare_cached(
        "INSERT INTO messages (id, app_id, event_type, event_id, channels, payload, created_at,
                               deliver_at, payload_expires_at, ordering_key, payload_version, envelope)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .and_then(|mut insert| {
        insert.execute(params![
            message.id.as_str(),
            message.app_id.as_str(),
            message.event_type.as_str(),
            message.event_id.as_ref().map(EventId::as_str),
            names_to_json(&message.channels),
            message.payload.as_deref(),
            to_micros(message.created_at),
            message.deliver_at.map(to_micros),
            to_micros(message.payload_expires_at),
            message.ordering_key.as_ref().map(|key| key.as_str()),
            message.payload_version.number(),
            message.envelope.as_ref().map(Envelope::to_text),
        ])
    })
    .map_err(|e| match &e {
        // The only foreign key of a message: its application is gone (or never was).
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
        {
            StoreError::NotFound
        }
        _ => conflict_or(e, "eventId"),
    })?;

    if !batch.subscriptions.contains_key(message.app_id.as_str()) {
        let subscriptions = subscriptions(conn, &message.app_id)?;
        batch.subscriptions.insert(message.app_id.to_string(), subscriptions);
    }
    let targets: Vec<(EndpointId, Option<&str>)> = batch.subscriptions[message.app_id.as_str()]
        .iter()
        .filter(|subscription| subscription.matches(message))
        .map(|subscription| (subscription.endpoint_id.clone(), subscription.lane(message)))
        .collect();
    let due = to_micros(message.deliver_at.unwrap_or(message.created_at));
    let created = to_micros(message.created_at);
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO deliveries (msg_id, app_id, endpoint_id, status, trigger, attempts, next_attempt_at,
                                     created_at, updated_at, lane)
             VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
        )
        .map_err(sql_error)?;
    for (endpoint, lane) in &targets {
        insert
            .execute(params![
                message.id.as_str(),
                message.app_id.as_str(),
                endpoint.as_str(),
                DeliveryStatus::Pending.code(),
                Trigger::Scheduled.code(),
                due,
                created,
                created,
                lane,
            ])
            .map_err(sql_error)?;
    }
    Ok(targets.into_iter().map(|(endpoint, _)| endpoint).collect())
}

/// The enabled endpoints of an application, with what decides which messages they get.
fn subscriptions(conn: &Connection, app: &ApplicationId) -> Result<Vec<Subscription>, StoreError> {
    let mut select = conn
        .prepare_cached(
            "SELECT id, event_types, channels, ordered FROM endpoints WHERE app_id = ? AND disabled = 0",
        )
        .map_err(sql_error)?;
    let rows = select
        .query_map([app.as_str()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, bool>(3)?,
            ))
        })
        .map_err(sql_error)?;
    let mut subscriptions = Vec::new();
    for row in rows {
        let (id, event_types, channels, ordered) = row.map_err(sql_error)?;
        subscriptions.push(Subscription {
            endpoint_id: id.parse().map_err(|e| corrupt("id", e))?,
            event_types: parse_names(event_types, EventTypeName::parse)?,
            channels: parse_names(channels, ChannelName::parse)?,
            ordered,
        });
    }
    Ok(subscriptions)
}
