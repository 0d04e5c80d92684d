//! `herald endpoint test APP ENDPOINT`: a receiver's whole contract checked in one command.
//! Sends one example of every event type the endpoint subscribes to (to that endpoint only),
//! waits for the attempts, prints what each got back, and fails when any did not succeed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::http::{ApiClient, segment};
use super::{Connection, table};

/// How often the attempts are looked at while waiting.
const POLL: Duration = Duration::from_millis(200);
/// How much of a response body the table shows.
const RESPONSE_PREFIX: usize = 60;

/// The outcome for one event type.
struct Outcome {
    event_type: String,
    msg_id: Option<String>,
    attempt: Option<Value>,
    error: Option<String>,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.attempt.as_ref().is_some_and(|a| a["status"] == 0)
    }

    fn row(&self) -> Vec<String> {
        let (status, code, latency, response) = match (&self.attempt, &self.error) {
            (_, Some(error)) => ("not sent".to_owned(), "-".to_owned(), "-".to_owned(), error.clone()),
            (None, None) => ("no attempt yet".to_owned(), "-".to_owned(), "-".to_owned(), String::new()),
            (Some(attempt), None) => (
                if attempt["status"] == 0 { "ok" } else { "failed" }.to_owned(),
                attempt["responseStatusCode"].to_string(),
                format!("{} ms", attempt["responseDurationMs"]),
                attempt["response"].as_str().unwrap_or_default().to_owned(),
            ),
        };
        let response: String =
            response.replace(['\n', '\r', '\t'], " ").chars().take(RESPONSE_PREFIX).collect();
        vec![self.event_type.clone(), status, code, latency, response]
    }
}

/// Runs the test; an error when any event type's example did not arrive successfully.
pub(super) async fn run(
    client: &ApiClient,
    connection: &Connection,
    app: &str,
    endpoint: &str,
    wait: Duration,
) -> anyhow::Result<()> {
    let base = format!("/api/v1/app/{}/endpoint/{}", segment(app), segment(endpoint));
    let found = client.get(&base).await?;
    let event_types = match found["eventTypes"].as_array() {
        Some(names) => names.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        None => all_event_types(client).await?,
    };
    if event_types.is_empty() {
        anyhow::bail!("the endpoint subscribes to every event type, and none is registered: nothing to test");
    }
    let mut outcomes = Vec::new();
    for event_type in event_types {
        match client.post(&format!("{base}/send-example"), &json!({ "eventType": event_type })).await {
            Ok(message) => outcomes.push(Outcome {
                event_type,
                msg_id: message["id"].as_str().map(str::to_owned),
                attempt: None,
                error: None,
            }),
            Err(error) => outcomes.push(Outcome {
                event_type,
                msg_id: None,
                attempt: None,
                error: Some(error.to_string()),
            }),
        }
    }
    let deadline = Instant::now() + wait;
    loop {
        for outcome in outcomes.iter_mut().filter(|o| o.attempt.is_none() && o.error.is_none()) {
            let Some(msg) = &outcome.msg_id else { continue };
            let path = format!("/api/v1/app/{}/attempt/msg/{}", segment(app), segment(msg));
            let attempts = client.get(&path).await?;
            // The newest first; an example goes to this endpoint only.
            outcome.attempt = attempts["data"].as_array().and_then(|list| list.first()).cloned();
        }
        let waiting = outcomes.iter().any(|o| o.attempt.is_none() && o.error.is_none());
        if !waiting || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let failed = outcomes.iter().filter(|o| !o.succeeded()).count();
    if connection.json {
        let report: Vec<Value> = outcomes
            .iter()
            .map(|o| {
                json!({"eventType": o.event_type, "msgId": o.msg_id, "ok": o.succeeded(),
                             "attempt": o.attempt, "error": o.error})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        table::print(
            &["EVENT TYPE", "RESULT", "HTTP", "LATENCY", "RESPONSE"],
            outcomes.iter().map(Outcome::row).collect(),
        );
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} event types did not reach the endpoint successfully", outcomes.len());
    }
    Ok(())
}

/// Every registered event type that is not archived, page by page.
async fn all_event_types(client: &ApiClient) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut iterator: Option<String> = None;
    loop {
        let query = match &iterator {
            Some(it) => format!("?limit=250&iterator={}", segment(it)),
            None => "?limit=250".to_owned(),
        };
        let page = client.get(&format!("/api/v1/event-type{query}")).await?;
        names.extend(
            page["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["name"].as_str())
                .map(str::to_owned),
        );
        match (page["done"].as_bool(), page["iterator"].as_str()) {
            (Some(false), Some(next)) => iterator = Some(next.to_owned()),
            _ => return Ok(names),
        }
    }
}
