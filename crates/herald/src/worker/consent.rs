//! Endpoint consent in the worker (the CloudEvents webhook handshake): before a delivery to an
//! endpoint that must consent, what `herald_core::consent::gate` decided is carried out here —
//! send it, give it back until a pending consent is granted, record it as not attempted, or
//! ask with `OPTIONS` (through the sender: the SSRF guard and the usual timeouts apply) and
//! record the answer with the store's narrow consent command.
//!
//! The lane calls [`check`] one delivery at a time, so an endpoint is asked once, not once per
//! delivery in flight. Nothing here writes an endpoint row but its consent columns.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use herald_core::consent::{
    self, Answer, CALLBACK_VALIDITY, ConsentDecision, ConsentMode, ConsentState, ConsentStatus, Gate,
    PENDING_RECHECK,
};
use herald_core::delivery::LeasedDelivery;
use herald_core::model::Endpoint;
use herald_core::token::TokenHash;
use http::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use rand::RngCore as _;

use crate::worker::breaker::Breaker;
use crate::worker::operational::Event;
use crate::worker::{Context, lane, pipeline};

/// The rate asked for (`WebHook-Request-Rate`, requests a minute) when the endpoint has no rate
/// limit of its own.
pub const DEFAULT_REQUEST_RATE: u32 = 6000;

/// How the worker asks for consent; from configuration.
#[derive(Debug, Clone)]
pub struct ConsentSettings {
    /// The organisation's setting, for endpoints that do not have their own.
    pub mode: ConsentMode,
    /// What `WebHook-Request-Origin` says (and `Origin` on deliveries after consent).
    pub origin: String,
    /// Herald's public base URL, under which the callback is served (`/api/v1/consent/…`).
    pub callback_base: String,
}

/// What becomes of a delivery after the consent check.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Send it; at most `per_minute` requests a minute when the endpoint said so.
    Deliver { per_minute: Option<u32> },
    /// Given back or recorded: the lane is done with it.
    Handled,
}

/// Whether deliveries to `endpoint` need its consent.
pub(super) fn required(context: &Context, endpoint: &Endpoint) -> bool {
    endpoint.consent.unwrap_or(context.settings.consent.mode) == ConsentMode::CloudEvents
}

/// Checks the endpoint's consent before `delivery` is sent, asking for it when needed.
/// `endpoint` is the lane's copy, updated with what the handshake found.
pub(super) async fn check(
    context: &Context,
    breaker: &Mutex<Breaker>,
    endpoint: &mut Arc<Endpoint>,
    delivery: &LeasedDelivery,
) -> Verdict {
    let now = context.clock.now();
    match consent::gate(required(context, endpoint), &endpoint.url, endpoint.consent_state.as_ref(), now) {
        Gate::Deliver { per_minute } => Verdict::Deliver { per_minute },
        Gate::Wait { until } => {
            lane::release(context, delivery, until).await;
            Verdict::Handled
        }
        Gate::Refuse { reason } => {
            pipeline::record_not_attempted(context, delivery, endpoint, &not_sent(&reason), now).await;
            Verdict::Handled
        }
        Gate::Ask => ask(context, breaker, endpoint, delivery, now).await,
    }
}

fn not_sent(reason: &str) -> String {
    format!("not sent: {reason}")
}

/// The handshake: `OPTIONS` with the origin, the rate and a callback, and what follows.
async fn ask(
    context: &Context,
    breaker: &Mutex<Breaker>,
    endpoint: &mut Arc<Endpoint>,
    delivery: &LeasedDelivery,
    started_at: DateTime<Utc>,
) -> Verdict {
    let settings = &context.settings.consent;
    let mut token = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut token);
    let token = URL_SAFE_NO_PAD.encode(token);
    let callback = format!("{}/api/v1/consent/{token}", settings.callback_base.trim_end_matches('/'));
    let rate = endpoint.throttle_rate.map_or(DEFAULT_REQUEST_RATE, |r| u32::from(r) * 60);
    let headers = handshake_headers(endpoint, &settings.origin, rate, &callback);
    let (status, answer) = match context.sender.options(endpoint, headers).await {
        Ok(answer) => answer,
        Err(mut exchange) => {
            // No answer at all (unreachable, timed out, refused by the SSRF guard): an ordinary
            // failed attempt, retried on the schedule, which asks again.
            exchange.response = format!("consent handshake (OPTIONS): {}", exchange.response);
            pipeline::settle_attempt(
                context,
                breaker,
                endpoint,
                delivery,
                pipeline::Sent { url: &endpoint.url, request: None },
                started_at,
                exchange,
            )
            .await;
            return Verdict::Handled;
        }
    };
    let header = |name: &str| answer.get(name).and_then(|v| v.to_str().ok());
    let now = context.clock.now();
    let origin = consent::url_origin(&endpoint.url);
    let (decision, callback_hash, verdict) = match consent::read_answer(
        &settings.origin,
        status,
        header("webhook-allowed-origin"),
        header("webhook-allowed-rate"),
    ) {
        Answer::Granted { per_minute } => {
            (ConsentDecision::Granted { per_minute }, None, Verdict::Deliver { per_minute })
        }
        Answer::NoConsentYet { .. } => (
            ConsentDecision::Pending { expires_at: now + CALLBACK_VALIDITY },
            Some(TokenHash::of(&token)),
            Verdict::Handled,
        ),
        Answer::Refused { reason } => (ConsentDecision::Refused { reason }, None, Verdict::Handled),
    };
    let state = ConsentState { origin, decision, decided_at: now };
    if let Err(error) = context
        .store
        .set_endpoint_consent(&endpoint.app_id, &endpoint.id, &state, callback_hash.as_ref())
        .await
    {
        tracing::warn!(error = %error, endpoint = %endpoint.id, "could not record the endpoint's consent; asking again later");
    }
    let (status, reason) = consent::status(true, &endpoint.url, Some(&state), now);
    tracing::info!(endpoint = %endpoint.id, status = status.name(), reason = reason.as_deref().unwrap_or(""), "consent handshake");
    context.operational.send(Event::EndpointConsent {
        app_id: endpoint.app_id.clone(),
        endpoint_id: endpoint.id.clone(),
        status,
        reason: reason.clone(),
        at: now,
    });
    let mut updated = (**endpoint).clone();
    updated.consent_state = Some(state);
    *endpoint = Arc::new(updated);
    match (status, &verdict) {
        (_, Verdict::Deliver { .. }) => {}
        (ConsentStatus::Refused, _) => {
            let reason = reason.unwrap_or_default();
            pipeline::record_not_attempted(context, delivery, endpoint, &not_sent(&reason), now).await;
        }
        _ => lane::release(context, delivery, now + PENDING_RECHECK).await,
    }
    verdict
}

/// The handshake's headers: the endpoint's custom headers and bearer token (so it can tell
/// who asks), then the three `WebHook-Request-*` headers.
fn handshake_headers(endpoint: &Endpoint, origin: &str, rate: u32, callback: &str) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(4 + endpoint.headers.len());
    for (name, value) in &endpoint.headers {
        if let (Ok(name), Ok(value)) =
            (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value.expose()))
        {
            headers.insert(name, value);
        }
    }
    headers.insert(USER_AGENT, HeaderValue::from_static(concat!("Herald/", env!("CARGO_PKG_VERSION"))));
    if let Some(token) = &endpoint.bearer_token
        && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
    {
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    let pairs = [
        ("webhook-request-origin", origin.to_owned()),
        ("webhook-request-rate", rate.to_string()),
        ("webhook-request-callback", callback.to_owned()),
    ];
    for (name, value) in pairs {
        if let Ok(mut value) = HeaderValue::from_str(&value) {
            // The callback URL grants consent: it is a secret while it is valid.
            value.set_sensitive(name == "webhook-request-callback");
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    headers
}
