//! The e-commerce side of the webhook guide: clients place purchase orders and say where
//! (and with which token) to call them back; Herald does the delivering.
//!
//! Each client is a Herald application with uid `client-<client id>` and one endpoint. The
//! client is identified by the `X-Client-Id` header on every request (a stand-in for the
//! real service's authentication). This module keeps orders in memory and must not deliver
//! anything itself: every event goes through Herald's API.
//!
//! - `POST /purchase-orders` with `{"payload": {...}, "webhook": {"url": ..., "token": ...}}`
//!   stores the order, registers (or updates) the client's endpoint with the token as
//!   `bearerToken`, and sends `order.created`. Event payloads carry their `type`, so a
//!   receiver can tell them apart from the body alone. Answers 201 with the order id and the Herald
//!   application and endpoint ids.
//! - `PUT /purchase-orders/webhooks` with `{"webhook": {"url": ..., "token": ...}}` (token
//!   optional: unchanged when absent) moves the client's endpoint. Answers 204.
//! - `POST /purchase-orders/{id}/ship` sends `order.shipped` to wherever the client's
//!   endpoint points now. Answers 202.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::herald_api::{HeraldClient, HeraldError};

/// The header that says which client is calling.
pub const CLIENT_HEADER: &str = "x-client-id";

/// A client's Herald application and endpoint.
#[derive(Debug, Clone)]
struct Registration {
    application_id: String,
    endpoint_id: String,
}

/// A stored purchase order.
#[derive(Debug, Clone)]
struct Order {
    /// Whose order it is, so its events go to that client's endpoint.
    client_id: String,
    /// What the client sent, echoed in every event about the order.
    payload: Value,
}

/// The service's state, shared by the handlers.
#[derive(Debug)]
struct Service {
    herald: HeraldClient,
    /// Client id → Herald ids. An async mutex held across the calls to Herald, so that two
    /// first orders from one client can't both create an endpoint.
    clients: Mutex<HashMap<String, Registration>>,
    /// Order id → order.
    orders: Mutex<HashMap<String, Order>>,
    /// For order ids (`po_1`, `po_2`, ...).
    next_order: AtomicU64,
}

#[derive(Debug, Deserialize)]
struct NewOrder {
    payload: Value,
    webhook: WebhookIn,
}

#[derive(Debug, Deserialize)]
struct WebhookUpdate {
    webhook: WebhookIn,
}

#[derive(Debug, Deserialize)]
struct WebhookIn {
    url: String,
    #[serde(default)]
    token: Option<String>,
}

/// Why a request failed; each maps to a status and a stable `code`.
#[derive(Debug, thiserror::Error)]
enum ServiceError {
    #[error("the X-Client-Id header is missing or not 1-64 letters, digits, '-', '_' or '.'")]
    BadClient,
    #[error("the webhook token is required and must not be empty")]
    MissingToken,
    #[error("this client has registered no webhook yet")]
    UnknownClient,
    #[error("no such purchase order")]
    UnknownOrder,
    #[error("Herald refused or failed the request")]
    Herald(#[from] HeraldError),
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ServiceError::BadClient => (StatusCode::BAD_REQUEST, "bad_client_id"),
            ServiceError::MissingToken => (StatusCode::UNPROCESSABLE_ENTITY, "missing_token"),
            ServiceError::UnknownClient => (StatusCode::NOT_FOUND, "unknown_client"),
            ServiceError::UnknownOrder => (StatusCode::NOT_FOUND, "unknown_order"),
            // Herald validates the URL; its 4xx is the client's problem, anything else ours.
            ServiceError::Herald(HeraldError::Status { status, .. }) if status.is_client_error() => {
                (StatusCode::UNPROCESSABLE_ENTITY, "webhook_rejected")
            }
            ServiceError::Herald(_) => (StatusCode::BAD_GATEWAY, "herald_unavailable"),
        };
        if let ServiceError::Herald(error) = &self {
            tracing::warn!(%error, "call to Herald failed");
        }
        (status, Json(json!({"code": code, "detail": self.to_string()}))).into_response()
    }
}

/// The service's routes, sending through `herald`.
pub fn router(herald: HeraldClient) -> Router {
    let service = Arc::new(Service {
        herald,
        clients: Mutex::new(HashMap::new()),
        orders: Mutex::new(HashMap::new()),
        next_order: AtomicU64::new(1),
    });
    Router::new()
        .route("/purchase-orders", post(create_order))
        .route("/purchase-orders/webhooks", put(update_webhook))
        .route("/purchase-orders/{order_id}/ship", post(ship_order))
        .with_state(service)
}

/// Serves the service on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    herald: HeraldClient,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(herald)).with_graceful_shutdown(shutdown).await
}

fn client_id(headers: &HeaderMap) -> Result<String, ServiceError> {
    let id =
        headers.get(CLIENT_HEADER).and_then(|value| value.to_str().ok()).ok_or(ServiceError::BadClient)?;
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid { Ok(id.to_owned()) } else { Err(ServiceError::BadClient) }
}

async fn create_order(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Json(order): Json<NewOrder>,
) -> Result<(StatusCode, Json<Value>), ServiceError> {
    let client_id = client_id(&headers)?;
    let token = order.webhook.token.filter(|token| !token.is_empty()).ok_or(ServiceError::MissingToken)?;
    let registration = {
        let mut clients = service.clients.lock().await;
        match clients.get(&client_id) {
            // The client may send a new URL or token with any order; the latest wins.
            Some(existing) => {
                service
                    .herald
                    .update_endpoint(
                        &existing.application_id,
                        &existing.endpoint_id,
                        &order.webhook.url,
                        Some(&token),
                    )
                    .await?;
                existing.clone()
            }
            None => {
                let application = service
                    .herald
                    .application(&format!("client-{client_id}"), &format!("Client {client_id}"))
                    .await?;
                let endpoint =
                    service.herald.create_endpoint(&application.id, &order.webhook.url, &token).await?;
                let registration = Registration { application_id: application.id, endpoint_id: endpoint.id };
                clients.insert(client_id.clone(), registration.clone());
                registration
            }
        }
    };
    let order_id = format!("po_{}", service.next_order.fetch_add(1, Ordering::Relaxed));
    service.orders.lock().await.insert(order_id.clone(), Order { client_id, payload: order.payload.clone() });
    let event = json!({"type": "order.created", "orderId": order_id, "order": order.payload});
    let message = service.herald.send_message(&registration.application_id, "order.created", event).await?;
    let body = json!({
        "id": order_id,
        "applicationId": registration.application_id,
        "endpointId": registration.endpoint_id,
        "messageId": message.id,
    });
    Ok((StatusCode::CREATED, Json(body)))
}

async fn update_webhook(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Json(update): Json<WebhookUpdate>,
) -> Result<StatusCode, ServiceError> {
    let client_id = client_id(&headers)?;
    let clients = service.clients.lock().await;
    let registration = clients.get(&client_id).ok_or(ServiceError::UnknownClient)?;
    let token = update.webhook.token.as_deref().filter(|token| !token.is_empty());
    service
        .herald
        .update_endpoint(&registration.application_id, &registration.endpoint_id, &update.webhook.url, token)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn ship_order(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ServiceError> {
    let client_id = client_id(&headers)?;
    let order = service.orders.lock().await.get(&order_id).cloned();
    // Another client's order is reported as missing, not as forbidden.
    let order = order.filter(|order| order.client_id == client_id).ok_or(ServiceError::UnknownOrder)?;
    let application_id = {
        let clients = service.clients.lock().await;
        clients.get(&client_id).ok_or(ServiceError::UnknownClient)?.application_id.clone()
    };
    let event = json!({"type": "order.shipped", "orderId": order_id, "order": order.payload});
    let message = service.herald.send_message(&application_id, "order.shipped", event).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"id": order_id, "messageId": message.id}))))
}
