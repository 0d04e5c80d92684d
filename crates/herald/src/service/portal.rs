//! Customer-portal access: a short-lived token that reaches one application only.

use std::time::Duration;

use herald_core::id::{ApplicationId, TokenId};
use herald_core::model::{ApiToken, TokenScope};
use herald_core::secret::SecretString;
use herald_core::token::{APPLICATION_TOKEN_PREFIX, TokenHash, generate_token_value};

use super::{Service, ServiceError};

impl Service {
    /// Mints a token for the application, valid for `ttl`, for the session `session_id` if
    /// given (Svix's `sessionId`, which expire-all can name). Only its hash is stored.
    pub async fn portal_token(
        &self,
        app: &ApplicationId,
        ttl: Duration,
        session_id: Option<String>,
    ) -> Result<SecretString, ServiceError> {
        let now = self.clock().now();
        let value = generate_token_value(APPLICATION_TOKEN_PREFIX);
        let token = ApiToken {
            id: TokenId::generate_at(now),
            hash: TokenHash::of(value.expose()),
            scope: TokenScope::Application(app.clone()),
            description: "customer portal session".to_owned(),
            created_at: now,
            expires_at: Some(now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1))),
            session_id,
        };
        self.store().insert_token(&token).await?;
        Ok(value)
    }

    /// Expires the application's tokens (portal sessions) after `delay` (at once when zero),
    /// only those minted for one of `sessions` when given. A token already expiring sooner keeps
    /// its expiry. Returns how many tokens were changed.
    pub async fn expire_application_tokens(
        &self,
        app: &ApplicationId,
        sessions: Option<&[String]>,
        delay: Duration,
    ) -> Result<u64, ServiceError> {
        let at = self.clock().now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
        Ok(self.store().expire_application_tokens(app, sessions, at).await?)
    }
}
