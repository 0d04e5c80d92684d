//! Request extractors whose rejections are Herald's JSON errors, not axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::api::error::{ApiError, ValidationErrorItem};

/// A JSON request body. Malformed JSON is a 400, a body of the wrong shape a 422 naming the
/// field, and a body over the configured limit a 413. Unknown fields are ignored.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = request.extensions().get::<BodyLimit>().map(|limit| limit.0).unwrap_or(usize::MAX);
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(limit)
            } else {
                ApiError::BadRequest { code: "invalid_body", detail: rejection.body_text() }
            }
        })?;
        // An empty body reads as `{}`: optional bodies may be left out, and a missing required
        // field is reported by name rather than as truncated JSON.
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        // serde would read a struct from a JSON array by position; every body here is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|&b| b != b'{') {
            parse_json::<serde_json::Value>(bytes)?;
            return Err(ApiError::Validation(vec![ValidationErrorItem {
                loc: vec!["body".to_owned()],
                msg: "the request body must be a JSON object".to_owned(),
                kind: "type_error".to_owned(),
            }]));
        }
        let value = parse_json(bytes)?;
        // PostgreSQL can't store U+0000 in text or JSONB; refusing it on every backend keeps
        // the API the same whichever database is behind it.
        if has_nul_escape(bytes) {
            return Err(ApiError::Validation(vec![ValidationErrorItem {
                loc: vec!["body".to_owned()],
                msg: "text may not contain the NUL character (\\u0000)".to_owned(),
                kind: "value_error".to_owned(),
            }]));
        }
        Ok(Body(value))
    }
}

/// Whether JSON text holds a `\u0000` escape (a NUL character in a string). JSON can carry
/// NUL only as that escape; an escaped backslash before `u0000` (`\\u0000`) is not one.
fn has_nul_escape(json: &[u8]) -> bool {
    json.windows(6).enumerate().any(|(at, window)| {
        window == b"\\u0000" && json[..at].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
    })
}

/// The body limit in force, put into request extensions by the router so errors can name it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Parses JSON, locating type errors by field path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = result.map_err(|error| {
        let inner = error.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest {
                code: "invalid_json",
                detail: format!("the request body is not valid JSON: {inner}"),
            };
        }
        let mut loc = vec!["body".to_owned()];
        let path = error.path().to_string();
        if path != "." {
            loc.extend(path.split('.').map(str::to_owned));
        }
        ApiError::Validation(vec![ValidationErrorItem {
            loc,
            msg: strip_position(&inner.to_string()),
            kind: "type_error".to_owned(),
        }])
    })?;
    deserializer.end().map_err(|error| ApiError::BadRequest {
        code: "invalid_json",
        detail: format!("the request body is not valid JSON: {error}"),
    })?;
    Ok(value)
}

/// serde_json appends " at line 1 column 12"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// Query parameters. A parameter of the wrong type is a 422 naming it, and so is any
/// parameter holding a control character (NUL, a line break): no parameter means one, and
/// PostgreSQL can't take a NUL. Unknown parameters are otherwise ignored.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let controls = url::form_urlencoded::parse(query.as_bytes())
            .filter(|(name, value)| name.chars().chain(value.chars()).any(char::is_control));
        let items: Vec<ValidationErrorItem> = controls
            .map(|(name, _)| ValidationErrorItem {
                loc: vec!["query".to_owned(), name.into_owned()],
                msg: "query parameters may not contain control characters such as NUL".to_owned(),
                kind: "value_error".to_owned(),
            })
            .collect();
        if !items.is_empty() {
            return Err(ApiError::Validation(items));
        }
        let deserializer = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
        let value = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let name = error.path().to_string();
            let inner = error.into_inner().to_string();
            ApiError::Validation(vec![ValidationErrorItem {
                loc: vec!["query".to_owned(), name],
                msg: inner,
                kind: "type_error".to_owned(),
            }])
        })?;
        Ok(Query(value))
    }
}

/// Deserialises a field that distinguishes "absent" (outer `None`, via `#[serde(default)]`)
/// from an explicit `null` (`Some(None)`), as PATCH bodies need.
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not_mistaken_for_them() {
        assert!(super::has_nul_escape(br#"{"name": "a\u0000b"}"#));
        assert!(super::has_nul_escape(br#"{"name": "\\\u0000"}"#));
        assert!(!super::has_nul_escape(br#"{"name": "\\u0000"}"#));
        assert!(!super::has_nul_escape(br#"{"name": "u0000 \u0001"}"#));
    }
}
