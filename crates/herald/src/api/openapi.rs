//! Herald's OpenAPI document, generated from the handlers and types, served at
//! `/api/v1/openapi.json`. A test compares it with the committed `openapi.json`.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{
    application, attempt, endpoint, endpoint_secret, error, event_type, health, message, pagination, portal,
    stats,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald API",
        description = "Herald's webhook API. Wire-compatible with the core of the Svix API v1: \
                       the official Svix SDKs work against it. Herald's extensions are additive \
                       fields (such as `bearerToken` on endpoints) and routes.",
        license(name = "Apache-2.0")
    ),
    paths(
        application::list, application::create, application::get, application::upsert,
        application::patch, application::delete,
        endpoint::list, endpoint::create, endpoint::get, endpoint::upsert, endpoint::patch,
        endpoint::delete,
        endpoint_secret::get_secret, endpoint_secret::rotate_secret, endpoint_secret::get_headers,
        endpoint_secret::put_headers, endpoint_secret::patch_headers,
        event_type::list, event_type::create, event_type::get, event_type::upsert,
        event_type::patch, event_type::delete,
        message::create, message::list, message::get, message::expunge_content,
        attempt::list_by_endpoint, attempt::list_by_message, attempt::get, attempt::expunge_content,
        attempt::list_attempted_messages, attempt::list_attempted_destinations, attempt::resend,
        attempt::recover, attempt::stats, stats::app_stats,
        portal::app_portal_access,
        health::health, health::live, health::ready,
    ),
    components(schemas(
        error::HttpErrorOut, error::HttpValidationError, error::ValidationErrorItem,
        pagination::OrderParam,
    )),
    modifiers(&BearerAuth, &ErrorCodes),
    tags(
        (name = "Application", description = "One application per customer of yours."),
        (name = "Endpoint", description = "URLs an application's messages are delivered to."),
        (name = "Event Type", description = "The kinds of events your application emits."),
        (name = "Message", description = "Events sent to an application's endpoints."),
        (name = "Message Attempt", description = "Each delivery attempt, and resending."),
        (name = "Authentication", description = "Tokens for the customer portal."),
        (name = "Health", description = "Whether the server can serve requests: Svix's check, \
                                           and Herald's liveness and readiness probes."),
    )
)]
struct ApiDoc;

/// Adds the bearer-token security scheme the operations refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Lists every error `code` in the error body's schema, with what each means, so clients can
/// rely on them (they are stable: a code is never reused for another cause).
struct ErrorCodes;

/// Codes the HTTP edge itself answers with (the use cases' codes come from the service).
const EDGE_CODES: &[(&str, &str)] = &[
    ("authentication_failed", "401: no token, or an unknown or expired one"),
    ("insufficient_access", "403: an application's token used for an organisation operation"),
    ("not_found", "404: no such route or file"),
    ("conflict", "409: a request with this idempotency key is still in progress"),
    ("invalid_json", "400: the body is not JSON"),
    ("invalid_body", "400: the body could not be read"),
    ("invalid_idempotency_key", "400: the idempotency-key header is empty or too long"),
    ("method_not_allowed", "405: the route does not take this method"),
    ("payload_too_large", "413: the body is larger than the configured limit"),
    ("unhealthy", "503: the server cannot serve requests now"),
];

impl Modify for ErrorCodes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::Schema;
        use utoipa::openapi::{RefOr, schema::Type};
        let Some(components) = openapi.components.as_mut() else { return };
        let Some(RefOr::T(Schema::Object(error))) = components.schemas.get_mut("HttpErrorOut") else {
            return;
        };
        let codes: Vec<String> = EDGE_CODES
            .iter()
            .chain(crate::service::CODES)
            .map(|(code, meaning)| format!("- `{code}`: {meaning}"))
            .collect();
        let description = format!("A stable, machine-readable cause. One of:\n{}", codes.join("\n"));
        let code =
            utoipa::openapi::ObjectBuilder::new().schema_type(Type::String).description(Some(description));
        error.properties.insert("code".to_owned(), code.into());
    }
}

/// The OpenAPI document of this build.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as pretty JSON with a trailing newline, as committed in the repository.
pub fn document_json() -> String {
    let mut text = document().to_pretty_json().unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

/// `GET /api/v1/openapi.json`
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
