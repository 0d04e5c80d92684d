//! Delivery attempts on PostgreSQL, and the two views that join deliveries with messages or
//! endpoints (attempted messages of an endpoint, attempted destinations of a message).

use chrono::{DateTime, Utc};
use herald_core::StoreError;
use herald_core::delivery::{Attempt, AttemptFilter, DeliveryStatus, MessageFilter};
use herald_core::id::{ApplicationId, AttemptId, EndpointId, MessageId};
use herald_core::store::{EndpointMessage, MessageDestination, Page, PageRequest};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder};

use crate::rows::{PagePlan, corrupt, get, parse, parse_status, parse_trigger, status_code};
use crate::{PostgresStore, backend, endpoints, messages};

const COLUMNS: &str = "a.id, a.msg_id, a.app_id, a.endpoint_id, a.url, a.status, a.response_status_code, \
                       a.response, a.response_duration_ms, a.trigger, a.created_at, a.request, a.request_body";

pub(crate) async fn find(
    store: &PostgresStore,
    app: &ApplicationId,
    msg: &MessageId,
    id: &AttemptId,
) -> Result<Option<Attempt>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM attempts a WHERE a.app_id = $1 AND a.msg_id = $2 AND a.id = $3");
    let row = sqlx::query(&sql)
        .bind(app.as_str())
        .bind(msg.as_str())
        .bind(id.as_str())
        .fetch_optional(&store.pool)
        .await
        .map_err(backend)?;
    row.map(|row| from_row(&row)).transpose()
}

/// Finishes a list of attempts whose query already selects from `attempts a` with its scope in
/// the `WHERE` clause: adds the filter, the page and runs it.
async fn list(
    store: &PostgresStore,
    mut query: QueryBuilder<'_, Postgres>,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> Result<Page<Attempt>, StoreError> {
    let plan = PagePlan::new(page);
    if let Some(status) = filter.status {
        query.push(" AND a.status = ").push_bind(status_code(status));
    }
    if let Some(class) = filter.status_code_class {
        if class == 0 {
            query.push(" AND a.response_status_code = 0");
        } else {
            let low = i32::from(class);
            query.push(" AND a.response_status_code >= ").push_bind(low);
            query.push(" AND a.response_status_code < ").push_bind(low + 100);
        }
    }
    if !filter.event_types.is_empty() || filter.channel.is_some() {
        let message_filter = MessageFilter {
            channel: filter.channel.clone(),
            event_types: filter.event_types.clone(),
            before: None,
            after: None,
        };
        query.push(" AND EXISTS (SELECT 1 FROM messages m WHERE m.id = a.msg_id");
        messages::push_filter(&mut query, &message_filter);
        query.push(")");
    }
    if let Some(before) = filter.before {
        query.push(" AND a.created_at < ").push_bind(before);
    }
    if let Some(after) = filter.after {
        query.push(" AND a.created_at > ").push_bind(after);
    }
    plan.push_cursor(&mut query, "a.id");
    plan.push_order_and_limit(&mut query, "a.id");
    let rows = query.build().fetch_all(&store.pool).await.map_err(backend)?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(plan.finish(items))
}

pub(crate) async fn list_by_endpoint(
    store: &PostgresStore,
    app: &ApplicationId,
    endpoint: &EndpointId,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> Result<Page<Attempt>, StoreError> {
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM attempts a WHERE a.app_id = "));
    query.push_bind(app.as_str().to_owned());
    query.push(" AND a.endpoint_id = ").push_bind(endpoint.as_str().to_owned());
    list(store, query, filter, page).await
}

pub(crate) async fn list_by_message(
    store: &PostgresStore,
    app: &ApplicationId,
    msg: &MessageId,
    endpoint: Option<&EndpointId>,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> Result<Page<Attempt>, StoreError> {
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM attempts a WHERE a.app_id = "));
    query.push_bind(app.as_str().to_owned());
    query.push(" AND a.msg_id = ").push_bind(msg.as_str().to_owned());
    if let Some(endpoint) = endpoint {
        query.push(" AND a.endpoint_id = ").push_bind(endpoint.as_str().to_owned());
    }
    list(store, query, filter, page).await
}

pub(crate) async fn expunge_response(
    store: &PostgresStore,
    app: &ApplicationId,
    msg: &MessageId,
    id: &AttemptId,
) -> Result<bool, StoreError> {
    // Svix answers `EXPUNGED` for a removed response, so that is what is kept in its place.
    let result = sqlx::query(
        "UPDATE attempts SET response = 'EXPUNGED' WHERE app_id = $1 AND msg_id = $2 AND id = $3",
    )
    .bind(app.as_str())
    .bind(msg.as_str())
    .bind(id.as_str())
    .execute(&store.pool)
    .await
    .map_err(backend)?;
    Ok(result.rows_affected() > 0)
}

/// Messages with a delivery to the endpoint; the latest delivery of each speaks for it.
pub(crate) async fn endpoint_messages(
    store: &PostgresStore,
    app: &ApplicationId,
    endpoint: &EndpointId,
    filter: &MessageFilter,
    status: Option<DeliveryStatus>,
    page: &PageRequest,
) -> Result<Page<EndpointMessage>, StoreError> {
    let plan = PagePlan::new(page);
    let mut query = QueryBuilder::new(format!(
        "SELECT {}, d.status AS delivery_status, d.next_attempt_at
         FROM deliveries d JOIN messages m ON m.id = d.msg_id
         WHERE d.id IN (SELECT MAX(id) FROM deliveries WHERE endpoint_id = ",
        messages::COLUMNS
    ));
    query.push_bind(endpoint.as_str().to_owned()).push(" GROUP BY msg_id)");
    query.push(" AND m.app_id = ").push_bind(app.as_str().to_owned());
    messages::push_filter(&mut query, filter);
    if let Some(status) = status {
        query.push(" AND d.status = ").push_bind(status_code(status));
    }
    plan.push_cursor(&mut query, "m.id");
    plan.push_order_and_limit(&mut query, "m.id");
    let rows = query.build().fetch_all(&store.pool).await.map_err(backend)?;
    let items = rows
        .iter()
        .map(|row| {
            let (status, next_attempt_at) = delivery_state(row)?;
            Ok(EndpointMessage { message: messages::from_row(row)?, status, next_attempt_at })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(plan.finish(items))
}

/// Endpoints a message has deliveries to, with the state of the latest delivery to each.
pub(crate) async fn message_destinations(
    store: &PostgresStore,
    app: &ApplicationId,
    msg: &MessageId,
    page: &PageRequest,
) -> Result<Page<MessageDestination>, StoreError> {
    let plan = PagePlan::new(page);
    let mut query = QueryBuilder::new(format!(
        "SELECT {}, d.status AS delivery_status, d.next_attempt_at
         FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id AND e.app_id = d.app_id
         WHERE d.id IN (SELECT MAX(id) FROM deliveries WHERE msg_id = ",
        endpoints::COLUMNS
    ));
    query.push_bind(msg.as_str().to_owned()).push(" GROUP BY endpoint_id)");
    query.push(" AND d.app_id = ").push_bind(app.as_str().to_owned());
    plan.push_cursor(&mut query, "d.endpoint_id");
    plan.push_order_and_limit(&mut query, "d.endpoint_id");
    let rows = query.build().fetch_all(&store.pool).await.map_err(backend)?;
    let items = rows
        .iter()
        .map(|row| {
            let (status, next_attempt_at) = delivery_state(row)?;
            Ok(MessageDestination { endpoint: endpoints::from_row(store, row)?, status, next_attempt_at })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(plan.finish(items))
}

/// A delivery's status, and its next attempt time while it is pending or being sent.
fn delivery_state(row: &PgRow) -> Result<(DeliveryStatus, Option<DateTime<Utc>>), StoreError> {
    let status = parse_status(row, "delivery_status")?;
    let next: DateTime<Utc> = get(row, "next_attempt_at")?;
    let next = match status {
        DeliveryStatus::Pending | DeliveryStatus::Sending => Some(next),
        DeliveryStatus::Success | DeliveryStatus::Failed => None,
    };
    Ok((status, next))
}

fn from_row(row: &PgRow) -> Result<Attempt, StoreError> {
    let code: i32 = get(row, "response_status_code")?;
    Ok(Attempt {
        id: parse(row, "id")?,
        msg_id: parse(row, "msg_id")?,
        app_id: parse(row, "app_id")?,
        endpoint_id: parse(row, "endpoint_id")?,
        url: get(row, "url")?,
        status: parse_status(row, "status")?,
        response_status_code: u16::try_from(code).map_err(|e| corrupt("response_status_code", e))?,
        response: get::<Option<String>>(row, "response")?.unwrap_or_default(),
        response_duration_ms: get(row, "response_duration_ms")?,
        trigger: parse_trigger(row, "trigger")?,
        created_at: get(row, "created_at")?,
        request: match get::<Option<String>>(row, "request")? {
            Some(head) => Some(
                herald_core::delivery::SentRequest::from_stored(&head, get(row, "request_body")?)
                    .map_err(|e| corrupt("request", e))?,
            ),
            None => None,
        },
    })
}
