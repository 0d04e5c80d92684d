//! Delivery attempts on SQLite, and the two views that join deliveries with messages or
//! endpoints (attempted messages of an endpoint, attempted destinations of a message).

use herald_core::StoreError;
use herald_core::delivery::{Attempt, AttemptFilter, DeliveryStatus, MessageFilter, Trigger};
use herald_core::id::{ApplicationId, AttemptId, EndpointId, MessageId};
use herald_core::store::{EndpointMessage, Key, MessageDestination, Page, PageRequest};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Row};

use crate::rows::{PagePlan, corrupt, from_micros, to_micros};
use crate::{SqliteStore, backend, endpoints, messages};

const COLUMNS: &str = "a.id, a.msg_id, a.app_id, a.endpoint_id, a.url, a.status, a.response_status_code, \
                       a.response, a.response_duration_ms, a.trigger, a.created_at, a.request, a.request_body";

fn add<'q, T>(args: &mut SqliteArguments<'q>, value: T) -> Result<(), StoreError>
where
    T: 'q + sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    args.add(value).map_err(StoreError::Backend)
}

pub(crate) async fn find(
    store: &SqliteStore,
    app: &ApplicationId,
    msg: &MessageId,
    id: &AttemptId,
) -> Result<Option<Attempt>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM attempts a WHERE a.app_id = ? AND a.msg_id = ? AND a.id = ?");
    let row = sqlx::query(&sql)
        .bind(app.as_str())
        .bind(msg.as_str())
        .bind(id.as_str())
        .fetch_optional(&store.reader)
        .await
        .map_err(backend)?;
    row.map(|row| from_row(&row)).transpose()
}

/// Lists attempts matching `scope` (conditions on alias `a`, with their arguments) and the filter.
async fn list(
    store: &SqliteStore,
    mut conditions: Vec<String>,
    mut args: SqliteArguments<'_>,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> Result<Page<Attempt>, StoreError> {
    let plan = PagePlan::new(page);
    if let Some(status) = filter.status {
        conditions.push("a.status = ?".to_owned());
        add(&mut args, status.code())?;
    }
    if let Some(class) = filter.status_code_class {
        if class == 0 {
            conditions.push("a.response_status_code = 0".to_owned());
        } else {
            conditions.push("a.response_status_code >= ? AND a.response_status_code < ?".to_owned());
            add(&mut args, i64::from(class))?;
            add(&mut args, i64::from(class) + 100)?;
        }
    }
    if !filter.event_types.is_empty() || filter.channel.is_some() {
        let message_filter = MessageFilter {
            channel: filter.channel.clone(),
            event_types: filter.event_types.clone(),
            before: None,
            after: None,
        };
        let mut message_conditions = vec!["m.id = a.msg_id".to_owned()];
        messages::filter_conditions(&message_filter, &mut message_conditions, &mut args)?;
        conditions
            .push(format!("EXISTS (SELECT 1 FROM messages m WHERE {})", message_conditions.join(" AND ")));
    }
    if let Some(before) = filter.before {
        conditions.push("a.created_at < ?".to_owned());
        add(&mut args, to_micros(before))?;
    }
    if let Some(after) = filter.after {
        conditions.push("a.created_at > ?".to_owned());
        add(&mut args, to_micros(after))?;
    }
    if let Some((cmp, key)) = &plan.cursor {
        conditions.push(format!("a.id {cmp} ?"));
        add(&mut args, key.clone())?;
    }
    add(&mut args, plan.fetch)?;
    let sql = format!(
        "SELECT {COLUMNS} FROM attempts a WHERE {} ORDER BY a.id {} LIMIT ?",
        conditions.join(" AND "),
        plan.direction
    );
    let rows = sqlx::query_with(&sql, args).fetch_all(&store.reader).await.map_err(backend)?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

pub(crate) async fn list_by_endpoint(
    store: &SqliteStore,
    app: &ApplicationId,
    endpoint: &EndpointId,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> Result<Page<Attempt>, StoreError> {
    let mut args = SqliteArguments::default();
    add(&mut args, app.as_str().to_owned())?;
    add(&mut args, endpoint.as_str().to_owned())?;
    let conditions = vec!["a.app_id = ?".to_owned(), "a.endpoint_id = ?".to_owned()];
    list(store, conditions, args, filter, page).await
}

pub(crate) async fn list_by_message(
    store: &SqliteStore,
    app: &ApplicationId,
    msg: &MessageId,
    endpoint: Option<&EndpointId>,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> Result<Page<Attempt>, StoreError> {
    let mut args = SqliteArguments::default();
    add(&mut args, app.as_str().to_owned())?;
    add(&mut args, msg.as_str().to_owned())?;
    let mut conditions = vec!["a.app_id = ?".to_owned(), "a.msg_id = ?".to_owned()];
    if let Some(endpoint) = endpoint {
        conditions.push("a.endpoint_id = ?".to_owned());
        add(&mut args, endpoint.as_str().to_owned())?;
    }
    list(store, conditions, args, filter, page).await
}

pub(crate) async fn expunge_response(
    store: &SqliteStore,
    app: &ApplicationId,
    msg: &MessageId,
    id: &AttemptId,
) -> Result<bool, StoreError> {
    let result =
        sqlx::query("UPDATE attempts SET response = 'EXPUNGED' WHERE app_id = ? AND msg_id = ? AND id = ?")
            .bind(app.as_str())
            .bind(msg.as_str())
            .bind(id.as_str())
            .execute(&store.writer)
            .await
            .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

pub(crate) async fn endpoint_messages(
    store: &SqliteStore,
    app: &ApplicationId,
    endpoint: &EndpointId,
    filter: &MessageFilter,
    status: Option<DeliveryStatus>,
    page: &PageRequest,
) -> Result<Page<EndpointMessage>, StoreError> {
    let plan = PagePlan::new(page);
    let mut args = SqliteArguments::default();
    add(&mut args, endpoint.as_str().to_owned())?;
    add(&mut args, app.as_str().to_owned())?;
    // The latest delivery of each message to the endpoint speaks for it.
    let mut conditions = vec![
        "d.id IN (SELECT MAX(id) FROM deliveries WHERE endpoint_id = ? GROUP BY msg_id)".to_owned(),
        "m.app_id = ?".to_owned(),
    ];
    messages::filter_conditions(filter, &mut conditions, &mut args)?;
    if let Some(status) = status {
        conditions.push("d.status = ?".to_owned());
        add(&mut args, status.code())?;
    }
    if let Some((cmp, key)) = &plan.cursor {
        conditions.push(format!("m.id {cmp} ?"));
        add(&mut args, key.clone())?;
    }
    add(&mut args, plan.fetch)?;
    let sql = format!(
        "SELECT {}, d.status AS delivery_status, d.next_attempt_at
         FROM deliveries d JOIN messages m ON m.id = d.msg_id
         WHERE {} ORDER BY m.id {} LIMIT ?",
        messages::COLUMNS,
        conditions.join(" AND "),
        plan.direction
    );
    let rows = sqlx::query_with(&sql, args).fetch_all(&store.reader).await.map_err(backend)?;
    let items = rows
        .iter()
        .map(|row| {
            let (status, next_attempt_at) = delivery_state(row)?;
            Ok(EndpointMessage { message: messages::from_row(row)?, status, next_attempt_at })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(plan.finish(items))
}

pub(crate) async fn message_destinations(
    store: &SqliteStore,
    app: &ApplicationId,
    msg: &MessageId,
    page: &PageRequest,
) -> Result<Page<MessageDestination>, StoreError> {
    let plan = PagePlan::new(page);
    let mut args = SqliteArguments::default();
    add(&mut args, msg.as_str().to_owned())?;
    add(&mut args, app.as_str().to_owned())?;
    let mut conditions = vec![
        "d.id IN (SELECT MAX(id) FROM deliveries WHERE msg_id = ? GROUP BY endpoint_id)".to_owned(),
        "d.app_id = ?".to_owned(),
    ];
    if let Some((cmp, key)) = &plan.cursor {
        conditions.push(format!("d.endpoint_id {cmp} ?"));
        add(&mut args, key.clone())?;
    }
    add(&mut args, plan.fetch)?;
    let sql = format!(
        "SELECT d.endpoint_id, d.status AS delivery_status, d.next_attempt_at FROM deliveries d
         WHERE {} ORDER BY d.endpoint_id {} LIMIT ?",
        conditions.join(" AND "),
        plan.direction
    );
    let rows = sqlx::query_with(&sql, args).fetch_all(&store.reader).await.map_err(backend)?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get("endpoint_id").map_err(|e| corrupt("endpoint_id", e))?;
        let id: EndpointId = id.parse().map_err(|e| corrupt("endpoint_id", e))?;
        // An endpoint deleted since takes its deliveries with it, so it is always found.
        if let Some(endpoint) = endpoints::find(store, app, &Key::Id(id)).await? {
            let (status, next_attempt_at) = delivery_state(row)?;
            items.push(MessageDestination { endpoint, status, next_attempt_at });
        }
    }
    Ok(plan.finish(items))
}

/// A delivery's status, and its next attempt time while it is pending.
fn delivery_state(
    row: &SqliteRow,
) -> Result<(DeliveryStatus, Option<chrono::DateTime<chrono::Utc>>), StoreError> {
    let code: i64 = row.try_get("delivery_status").map_err(|e| corrupt("status", e))?;
    let status = DeliveryStatus::from_code(code).ok_or_else(|| corrupt("status", code))?;
    let next: i64 = row.try_get("next_attempt_at").map_err(|e| corrupt("next_attempt_at", e))?;
    let next = match status {
        DeliveryStatus::Pending | DeliveryStatus::Sending => Some(from_micros(next)?),
        _ => None,
    };
    Ok((status, next))
}

fn from_row(row: &SqliteRow) -> Result<Attempt, StoreError> {
    let get_text = |name: &str| row.try_get::<String, _>(name).map_err(|e| corrupt(name, e));
    let status: i64 = row.try_get("status").map_err(|e| corrupt("status", e))?;
    let trigger: i64 = row.try_get("trigger").map_err(|e| corrupt("trigger", e))?;
    let code: i64 = row.try_get("response_status_code").map_err(|e| corrupt("response_status_code", e))?;
    Ok(Attempt {
        id: get_text("id")?.parse().map_err(|e| corrupt("id", e))?,
        msg_id: get_text("msg_id")?.parse().map_err(|e| corrupt("msg_id", e))?,
        app_id: get_text("app_id")?.parse().map_err(|e| corrupt("app_id", e))?,
        endpoint_id: get_text("endpoint_id")?.parse().map_err(|e| corrupt("endpoint_id", e))?,
        url: get_text("url")?,
        status: DeliveryStatus::from_code(status).ok_or_else(|| corrupt("status", status))?,
        response_status_code: u16::try_from(code).map_err(|e| corrupt("response_status_code", e))?,
        response: row
            .try_get::<Option<String>, _>("response")
            .map_err(|e| corrupt("response", e))?
            .unwrap_or_default(),
        response_duration_ms: row
            .try_get("response_duration_ms")
            .map_err(|e| corrupt("response_duration_ms", e))?,
        trigger: Trigger::from_code(trigger).ok_or_else(|| corrupt("trigger", trigger))?,
        created_at: from_micros(row.try_get("created_at").map_err(|e| corrupt("created_at", e))?)?,
        request: match row.try_get::<Option<String>, _>("request").map_err(|e| corrupt("request", e))? {
            Some(head) => {
                let body: Option<Vec<u8>> =
                    row.try_get("request_body").map_err(|e| corrupt("request_body", e))?;
                Some(
                    herald_core::delivery::SentRequest::from_stored(&head, body)
                        .map_err(|e| corrupt("request", e))?,
                )
            }
            None => None,
        },
    })
}
