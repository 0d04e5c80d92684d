//! Who is calling: bearer tokens, checked against the stored hashes, and what they may reach.
//!
//! Organisation tokens reach everything. Application tokens (the customer portal's) reach
//! their own application only: other applications answer 404, as if they did not exist, and
//! organisation-wide operations answer 403.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use herald_core::id::ApplicationId;
use herald_core::model::{Application, TokenScope};
use herald_core::name::Uid;
use herald_core::store::{ApplicationKey, Key};
use herald_core::token::TokenHash;

use crate::api::ApiState;
use crate::api::error::ApiError;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: TokenScope,
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthorized("missing `Authorization: Bearer <token>` header".to_owned())
        })?;
        let value = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".to_owned())
            })?;
        let token = state
            .store()
            .find_token(&TokenHash::of(value))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("invalid token".to_owned()))?;
        if token.expires_at.is_some_and(|expiry| expiry <= herald_core::model::now()) {
            return Err(ApiError::Unauthorized("the token has expired".to_owned()));
        }
        Ok(Caller { scope: token.scope })
    }
}

impl Caller {
    /// Fails with 403 unless the caller holds an organisation token.
    pub fn require_organization(&self) -> Result<(), ApiError> {
        match self.scope {
            TokenScope::Organization => Ok(()),
            TokenScope::Application(_) => Err(ApiError::Forbidden(
                "this operation needs an organisation token; application tokens reach one application only"
                    .to_owned(),
            )),
        }
    }

    /// Whether the caller may see the application with this id.
    pub fn may_access(&self, app: &ApplicationId) -> bool {
        match &self.scope {
            TokenScope::Organization => true,
            TokenScope::Application(own) => own == app,
        }
    }

    /// Loads the application named in a path (by id or uid), or 404 if it does not exist or
    /// the caller may not see it.
    pub async fn application(&self, state: &ApiState, key: &str) -> Result<Application, ApiError> {
        let key = application_key(key).ok_or_else(|| ApiError::not_found("application"))?;
        let app = state.store().find_application(&key).await?;
        match app {
            Some(app) if self.may_access(&app.id) => Ok(app),
            _ => Err(ApiError::not_found("application")),
        }
    }
}

/// Reads a path segment as an application id or, failing that, a uid.
pub fn application_key(text: &str) -> Option<ApplicationKey> {
    match text.parse::<ApplicationId>() {
        Ok(id) => Some(Key::Id(id)),
        Err(_) => Uid::parse(text).ok().map(Key::Uid),
    }
}
