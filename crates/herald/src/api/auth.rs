//! Who is calling: bearer tokens, checked against the stored hashes, and what they may reach.
//!
//! Organisation tokens reach everything. Application tokens (the customer portal's) reach
//! their own application only: other applications answer 404, as if they did not exist, and
//! organisation-wide operations answer 403.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use herald_core::id::{ApplicationId, TokenId};
use herald_core::model::{Application, TokenScope};
use herald_core::name::Uid;
use herald_core::store::{ApplicationKey, Key};
use herald_core::token::TokenHash;

use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::service::Resource;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: TokenScope,
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        // Already authenticated by a middleware (idempotency keys are claimed only for callers
        // with a valid token); only the server can put a caller there.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
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
        let hash = TokenHash::of(value);
        let token = match state.tokens().get(&hash) {
            Some(token) => token,
            None => {
                let token = state
                    .store()
                    .find_token(&hash)
                    .await?
                    .ok_or_else(|| ApiError::Unauthorized("invalid token".to_owned()))?;
                state.tokens().insert(hash, token.clone());
                token
            }
        };
        if token.expires_at.is_some_and(|expiry| expiry <= state.clock().now()) {
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
        let key = application_key(key).ok_or_else(|| ApiError::not_found(Resource::Application))?;
        let app = state.store().find_application(&key).await?;
        match app {
            Some(app) if self.may_access(&app.id) => Ok(app),
            _ => Err(ApiError::not_found(Resource::Application)),
        }
    }
}

/// Tokens recently found in the store, so a busy client does not cost a database read per
/// request. An entry lives [`TOKEN_CACHE_TTL`]: a token removed from the store (its
/// application deleted, or revoked through another node) stops working within that time. A
/// token revoked through this node stops working here at once ([`TokenCache::forget`]). Only
/// found tokens are cached.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: std::sync::Mutex<CacheEntries>,
}

/// What [`TokenCache`] guards with its lock.
#[derive(Debug, Default)]
struct CacheEntries {
    /// Found tokens by hash, with when they were read from the store.
    tokens: std::collections::HashMap<TokenHash, (herald_core::model::ApiToken, std::time::Instant)>,
    /// Tokens revoked here within the last [`TOKEN_CACHE_TTL`], with when: a request that read
    /// one from the store just before it was deleted must not cache it afterwards.
    revoked: std::collections::HashMap<TokenId, std::time::Instant>,
}

/// How long a cached token is trusted without asking the store again.
const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// Tokens cached at most; the cache is emptied when full (tokens are few in practice).
const TOKEN_CACHE_CAPACITY: usize = 10_000;

impl TokenCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheEntries> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, hash: &TokenHash) -> Option<herald_core::model::ApiToken> {
        let entries = self.lock();
        entries
            .tokens
            .get(hash)
            .filter(|(_, at)| at.elapsed() < TOKEN_CACHE_TTL)
            .map(|(token, _)| token.clone())
    }

    fn insert(&self, hash: TokenHash, token: herald_core::model::ApiToken) {
        let mut entries = self.lock();
        if entries.revoked.contains_key(&token.id) {
            return;
        }
        if entries.tokens.len() >= TOKEN_CACHE_CAPACITY {
            entries.tokens.clear();
        }
        entries.tokens.insert(hash, (token, std::time::Instant::now()));
    }

    /// Drops the cached tokens of an application whose tokens' expiry this node just changed,
    /// so the next request reads the new expiry from the store.
    pub fn forget_application(&self, app: &ApplicationId) {
        let mut entries = self.lock();
        entries.tokens.retain(|_, (token, _)| token.scope != TokenScope::Application(app.clone()));
    }

    /// Drops a token this node just revoked, so it stops working here at once.
    pub fn forget(&self, id: &TokenId) {
        let mut entries = self.lock();
        entries.tokens.retain(|_, (token, _)| token.id != *id);
        entries.revoked.retain(|_, at| at.elapsed() < TOKEN_CACHE_TTL);
        if entries.revoked.len() < TOKEN_CACHE_CAPACITY {
            entries.revoked.insert(id.clone(), std::time::Instant::now());
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
