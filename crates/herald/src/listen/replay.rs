//! `herald listen replay`: sends stored webhooks to a local app again, one at a time in the
//! order they arrived, and prints each answer. Sends only to the loopback `--forward-to`.

use anyhow::{Context as _, bail};
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::ReplayArgs;
use super::forward::{self, ForwardOutcome};
use super::print;
use super::store::{self, StoredWebhook};

/// Replays the selected webhooks; fails when none match or when any could not be delivered,
/// so scripts notice.
pub(crate) async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let stored = store::read_all(&args.store)?;
    let selected: Vec<&StoredWebhook> = stored
        .iter()
        .filter(|webhook| args.id.as_ref().is_none_or(|id| webhook.webhook_id.as_ref() == Some(id)))
        .collect();
    if selected.is_empty() {
        match &args.id {
            Some(id) => bail!("no webhook with id {id} in {}", args.store.display()),
            None => bail!("{} holds no webhooks", args.store.display()),
        }
    }
    let client = forward::client();
    let mut unreachable = 0;
    for webhook in &selected {
        let method = Method::from_bytes(webhook.method.as_bytes()).unwrap_or(Method::POST);
        let headers = header_map(webhook)?;
        let body = Bytes::from(webhook.body.clone());
        let outcome = forward::forward(&client, &args.forward_to, method, &headers, body).await;
        if matches!(outcome, ForwardOutcome::Unreachable { .. }) {
            unreachable += 1;
        }
        println!(
            "replay {} ({} {}, received {}): {}",
            webhook.webhook_id.as_deref().unwrap_or("-"),
            webhook.method,
            webhook.path,
            webhook.received_at.format("%Y-%m-%d %H:%M:%S UTC"),
            print::forwarded(args.forward_to.as_str(), &outcome).trim_start_matches("forward: ")
        );
    }
    if unreachable > 0 {
        bail!("{unreachable} of {} webhooks could not be delivered", selected.len());
    }
    Ok(())
}

/// The stored headers as a header map again.
fn header_map(webhook: &StoredWebhook) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (name, value) in &webhook.headers {
        let name =
            HeaderName::try_from(name.as_str()).with_context(|| format!("stored header name {name:?}"))?;
        let value =
            HeaderValue::try_from(value.as_str()).with_context(|| format!("stored header {name} value"))?;
        headers.append(name, value);
    }
    Ok(headers)
}
