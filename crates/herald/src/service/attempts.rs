//! Manual attempts: resend one message to one endpoint, and recover every failed delivery of
//! an endpoint in a time window (in the background, owned by the app's task tracker).

use chrono::{DateTime, Utc};
use herald_core::id::{ApplicationId, AttemptId, EndpointId, MessageId};

use super::{Service, ServiceError};

/// A recovery started in the background.
#[derive(Debug, Clone)]
pub struct RecoverTask {
    pub id: String,
    pub started_at: DateTime<Utc>,
}

impl Service {
    /// Queues one manual attempt of the message to the endpoint, due now.
    pub async fn resend(
        &self,
        app: &ApplicationId,
        msg: &MessageId,
        endpoint: &EndpointId,
    ) -> Result<(), ServiceError> {
        self.store().create_manual_delivery(app, msg, endpoint, self.clock().now()).await?;
        self.worker().wake();
        Ok(())
    }

    /// Replaces an attempt's stored response with `EXPUNGED`.
    pub async fn expunge_attempt_response(
        &self,
        app: &ApplicationId,
        msg: &MessageId,
        attempt: &AttemptId,
    ) -> Result<(), ServiceError> {
        if self.store().expunge_attempt_response(app, msg, attempt).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(super::Resource::Attempt))
        }
    }

    /// Starts queuing a manual attempt of every message created in `[since, until)` whose
    /// delivery to the endpoint failed. `until` defaults to now (inclusive).
    pub fn recover(
        &self,
        endpoint: &EndpointId,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> Result<RecoverTask, ServiceError> {
        let now = self.clock().now();
        let until = until.unwrap_or(now + chrono::Duration::microseconds(1));
        if until <= since {
            return Err(ServiceError::Invalid {
                field: "until",
                reason: "must be later than `since`".to_owned(),
            });
        }
        let task = RecoverTask {
            id: format!("qtask_{}", herald_core::id::Ksuid::new(now).encode()),
            started_at: now,
        };
        let (service, id, endpoint) = (self.clone(), task.id.clone(), endpoint.clone());
        self.inner.tasks.spawn(async move {
            let recovered = tokio::select! {
                recovered = service.store().recover_failed(&endpoint, since, until, now) => recovered,
                // Nothing was queued (the store call is one transaction); the caller may run it again.
                () = service.inner.shutdown.cancelled() => {
                    tracing::warn!(task = %id, "recover stopped by shutdown; nothing was queued");
                    return;
                }
            };
            match recovered {
                Ok(count) => {
                    tracing::info!(task = %id, endpoint = %endpoint, messages = count, "recover queued failed messages");
                    service.worker().wake();
                }
                Err(error) => tracing::error!(task = %id, error = %error, "recover failed"),
            }
        });
        Ok(task)
    }
}
