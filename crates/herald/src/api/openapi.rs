//! Herald's OpenAPI document, generated from the handlers and types, served at
//! `/api/v1/openapi.json`. A test compares it with the committed `openapi.json`.

use axum::Json;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::schema::Type;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::api::{
    application, attempt, consent, endpoint, endpoint_secret, error, event_type, example, health, ingest,
    ingest_endpoint, ingest_receive, message, pagination, portal, stats, token, transformation,
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
        transformation::get, transformation::patch, transformation::simulate, example::send_example, example::payload_preview,
        event_type::list, event_type::create, event_type::get, event_type::upsert,
        event_type::patch, event_type::delete,
        message::create, message::list, message::get, message::expunge_content,
        attempt::list_by_endpoint, attempt::list_by_message, attempt::get, attempt::expunge_content,
        attempt::list_attempted_messages, attempt::list_attempted_destinations, attempt::resend,
        attempt::recover, attempt::stats, stats::app_stats,
        portal::app_portal_access, portal::expire_all, token::list, token::revoke,
        health::health, health::live, health::ready,
        consent::grant,
        ingest::list, ingest::create, ingest::get, ingest::upsert, ingest::patch, ingest::delete,
        ingest::rotate_token, ingest::refusals,
        ingest_endpoint::list, ingest_endpoint::create, ingest_endpoint::get, ingest_endpoint::upsert,
        ingest_endpoint::delete, ingest_endpoint::get_secret, ingest_endpoint::rotate_secret,
        ingest_endpoint::get_headers, ingest_endpoint::put_headers, ingest_endpoint::get_transformation,
        ingest_endpoint::patch_transformation,
        ingest_receive::receive,
    ),
    components(schemas(
        error::HttpErrorOut, error::HttpValidationError, error::ValidationErrorItem,
        pagination::OrderParam,
    )),
    modifiers(&BearerAuth, &ErrorCodes, &EdgeStatuses, &SchemaNames),
    tags(
        (name = "Application", description = "One application per customer of yours."),
        (name = "Endpoint", description = "URLs an application's messages are delivered to."),
        (name = "Event Type", description = "The kinds of events your application emits."),
        (name = "Message", description = "Events sent to an application's endpoints."),
        (name = "Message Attempt", description = "Each delivery attempt, and resending."),
        (name = "Authentication", description = "Tokens for the customer portal; listing and revoking API tokens."),
        (name = "Consent", description = "Herald extension: the callback an endpoint calls to \
                                            consent to deliveries (CloudEvents webhook handshake)."),
        (name = "Ingest Source", description = "Where providers (GitHub, Stripe, Shopify, Slack, …) \
                                                  send webhooks for you: verified, deduplicated, stored and forwarded."),
        (name = "Ingest Endpoint", description = "A source's destinations: your services, which get \
                                                    each event signed with Standard Webhooks signatures."),
        (name = "Ingest", description = "A source's ingest URL, where the provider sends."),
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

/// Names schemas for what they are, not after the Rust type behind them: `Metadata` is a
/// `BTreeMap<String, String>` alias, which utoipa would publish as `BTreeMap`.
struct SchemaNames;

/// (the name utoipa gives, the name published, its description).
const SCHEMA_NAMES: &[(&str, &str, &str)] =
    &[("BTreeMap", "Metadata", "Your own key-value strings, stored and returned as given.")];

impl Modify for SchemaNames {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else { return };
        for (from, to, description) in SCHEMA_NAMES {
            let Some(mut schema) = components.schemas.remove(*from) else { continue };
            if let RefOr::T(Schema::Object(object)) = &mut schema {
                object.description = Some((*description).to_owned());
            }
            components.schemas.insert((*to).to_owned(), schema);
            let (from, to) = (format!("#/components/schemas/{from}"), format!("#/components/schemas/{to}"));
            for schema in components.schemas.values_mut() {
                rename_refs(schema, &from, &to);
            }
        }
    }
}

/// Rewrites every reference to `from` into `to` within a schema (components refer to this
/// one only from other components' properties, items and alternatives).
fn rename_refs(schema: &mut RefOr<Schema>, from: &str, to: &str) {
    match schema {
        RefOr::Ref(reference) if reference.ref_location == from => reference.ref_location = to.to_owned(),
        RefOr::Ref(_) => {}
        RefOr::T(Schema::Object(object)) => {
            object.properties.values_mut().for_each(|property| rename_refs(property, from, to));
        }
        RefOr::T(Schema::Array(array)) => {
            if let utoipa::openapi::schema::ArrayItems::RefOrSchema(items) = &mut array.items {
                rename_refs(items, from, to);
            }
        }
        RefOr::T(Schema::OneOf(one_of)) => {
            one_of.items.iter_mut().for_each(|item| rename_refs(item, from, to))
        }
        RefOr::T(Schema::AllOf(all_of)) => {
            all_of.items.iter_mut().for_each(|item| rename_refs(item, from, to))
        }
        RefOr::T(Schema::AnyOf(any_of)) => {
            any_of.items.iter_mut().for_each(|item| rename_refs(item, from, to))
        }
        RefOr::T(_) => {}
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
    ("invalid_request", "400: the request could not be parsed, e.g. a path segment that is not UTF-8"),
    ("unhealthy", "503: the server cannot serve requests now"),
    ("overloaded", "503: more requests in flight than `max_concurrent_requests`; retry after `Retry-After`"),
];

impl Modify for ErrorCodes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
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

/// Documents the statuses the HTTP edge answers before (or around) a handler, on every
/// operation they can happen on, so the document lists every status Herald really returns:
/// 400 for a body that is not JSON, a bad path segment or a bad idempotency key; 409 for an
/// idempotency key in use; 413 for a body over the limit; 422 for an invalid query string;
/// 503 past `max_concurrent_requests` (health probes are exempt). Statuses an operation
/// already documents are left as they are.
struct EdgeStatuses;

impl Modify for EdgeStatuses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let probe = path.starts_with("/health/") || path.starts_with("/api/v1/health");
            let operations = [
                (false, item.get.as_mut()),
                (true, item.post.as_mut()),
                (false, item.put.as_mut()),
                (false, item.patch.as_mut()),
                (false, item.delete.as_mut()),
            ];
            for (is_post, operation) in operations {
                let Some(operation) = operation else { continue };
                let takes = |place: ParameterIn| {
                    operation.parameters.iter().flatten().any(|p| p.parameter_in == place)
                };
                let (in_path, in_query) = (takes(ParameterIn::Path), takes(ParameterIn::Query));
                let has_body = operation.request_body.is_some();
                let mut bad_request = Vec::new();
                if has_body {
                    bad_request.push("the body is not JSON");
                }
                if in_path {
                    bad_request.push("a path segment is not valid (not UTF-8)");
                }
                if is_post {
                    bad_request.push("the `idempotency-key` header is empty or too long");
                }
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: String, schema: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(description, schema).into());
                };
                if !bad_request.is_empty() {
                    add("400", format!("Bad request: {}", bad_request.join("; ")), "HttpErrorOut");
                }
                if is_post {
                    add(
                        "409",
                        "A request with this idempotency key is still in progress".to_owned(),
                        "HttpErrorOut",
                    );
                }
                if has_body {
                    add("413", "The body is larger than `max_body_bytes`".to_owned(), "HttpErrorOut");
                }
                if in_query {
                    add("422", "A query parameter is invalid".to_owned(), "HttpValidationError");
                }
                if !probe {
                    let mut overloaded = error_response(
                        "More requests in flight than `max_concurrent_requests`; retry after `Retry-After` seconds"
                            .to_owned(),
                        "HttpErrorOut",
                    );
                    let seconds = ObjectBuilder::new().schema_type(Type::Integer);
                    let retry_after = HeaderBuilder::new()
                        .schema(seconds)
                        .description(Some("Seconds to wait before retrying"));
                    overloaded.headers.insert("Retry-After".to_owned(), retry_after.build());
                    responses.entry("503".to_owned()).or_insert_with(|| overloaded.into());
                }
            }
        }
    }
}

/// A response with a JSON body of the schema `schema` (a component's name).
fn error_response(description: String, schema: &str) -> Response {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build();
    ResponseBuilder::new().description(description).content("application/json", content).build()
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
