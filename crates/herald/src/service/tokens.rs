//! API tokens: list them (never their values, which are not stored) and revoke one,
//! organisation and portal tokens alike. Creating an organisation token is `herald token
//! create` (on the database, for an operator who holds no token yet); portal tokens are
//! minted in `portal.rs`.

use herald_core::id::TokenId;
use herald_core::model::ApiToken;
use herald_core::store::{Page, PageRequest};

use super::{Resource, Service, ServiceError};

impl Service {
    /// A page of every token, expired ones included until maintenance purges them.
    pub async fn list_tokens(&self, page: &PageRequest) -> Result<Page<ApiToken>, ServiceError> {
        Ok(self.store().list_tokens(page).await?)
    }

    /// Revokes a token: it is deleted, so it authenticates nothing from then on (a node that
    /// cached it a moment ago trusts its copy for at most the API's token-cache lifetime).
    pub async fn revoke_token(&self, id: &TokenId) -> Result<(), ServiceError> {
        if self.store().delete_token(id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(Resource::Token))
        }
    }
}
