//! Endpoint transformations: set or change an endpoint's `function handler(webhook)` (checked
//! to compile first), and simulate what it would do to a payload without sending anything.

use herald_core::change::{EndpointChange, TransformationChange};
use herald_core::id::ApplicationId;
use herald_core::model::Endpoint;
use herald_core::name::EventTypeName;
use herald_core::store::EndpointKey;
use herald_script::Script;

use super::{Service, ServiceError};
use crate::scripts::{Transformed, Webhook};

impl Service {
    /// Changes an endpoint's transformation; code that does not compile (or defines no
    /// `handler`) is refused with its line.
    pub async fn change_transformation(
        &self,
        app: &ApplicationId,
        key: &EndpointKey,
        change: TransformationChange,
    ) -> Result<Endpoint, ServiceError> {
        if let Some(Some(code)) = &change.code {
            self.check_transformation(code).await?;
        }
        let change = EndpointChange { transformation: Some(change), ..EndpointChange::default() };
        self.change_endpoint(app, key, &change).await
    }

    /// What `code` would make of a delivery of `payload` to `endpoint`: nothing is sent.
    pub async fn simulate_transformation(
        &self,
        endpoint: &Endpoint,
        code: &str,
        event_type: &EventTypeName,
        payload: &[u8],
    ) -> Result<Transformed, ServiceError> {
        self.check_transformation(code).await?;
        let shown_url = herald_core::endpoint_url::masked(&endpoint.url);
        let webhook = Webhook { event_type: event_type.as_str(), payload, url: &shown_url, method: "POST" };
        self.scripts().transform(code, webhook).await.map_err(|error| ServiceError::ScriptFailed {
            reason: format!("the transformation failed: {error}"),
        })
    }

    async fn check_transformation(&self, code: &str) -> Result<(), ServiceError> {
        let script = Script::new(code, "handler");
        self.scripts().engine().check(&script).await.map_err(|error| ServiceError::ScriptDoesNotCompile {
            field: "code".to_owned(),
            reason: format!("the transformation does not compile: {error}"),
        })
    }
}
