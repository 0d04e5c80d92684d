//! OpenTelemetry traces over OTLP/HTTP with JSON bodies, behind the `otlp` cargo feature: a
//! `tracing` layer that turns Herald's spans (target [`TARGET`]: one per API request, one per
//! delivery attempt) into OTLP spans, and a task that posts them in batches to the collector.
//!
//! Hand-written to keep the binary lean (no opentelemetry crates). A message's attempts share
//! one trace whose id is derived from the message id; the request that accepted the message
//! adds that trace's root span (`message.accepted`), linked to the request's own trace. So a
//! trace viewer shows, per message, the request that created it and every attempt after.
//!
//! Spans wait in a bounded queue and are dropped (counted in a warning) when the collector
//! can't keep up: tracing never slows delivery down.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The target of the spans that are exported; other spans (sqlx's, hyper's) are not.
pub const TARGET: &str = "herald::trace";
/// The field that carries a message id and ties spans to the message's trace.
const MSG_ID: &str = "msg_id";

/// Spans waiting to be sent at most.
const QUEUE: usize = 4096;
/// Spans per request to the collector at most.
const BATCH: usize = 512;
/// How long a span waits for others to fill a batch.
const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// What the layer keeps about an open span.
#[derive(Debug)]
struct SpanData {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_id: Option<[u8; 8]>,
    start: SystemTime,
    attributes: Vec<(String, Value)>,
}

/// The layer: builds OTLP spans and hands them to the exporter task.
#[derive(Debug)]
pub struct OtlpLayer {
    queue: mpsc::Sender<Value>,
}

/// Starts the exporter task, posting to `{endpoint}/v1/traces`, and returns its layer. Must be
/// called within a Tokio runtime.
pub fn layer(endpoint: &url::Url, service_name: &str) -> OtlpLayer {
    let (queue, spans) = mpsc::channel(QUEUE);
    let url = format!("{}/v1/traces", endpoint.as_str().trim_end_matches('/'));
    tokio::spawn(export(url, service_name.to_owned(), spans));
    OtlpLayer { queue }
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().target() != TARGET {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut attributes = Vec::new();
        attrs.record(&mut FieldVisitor(&mut attributes));
        let parent =
            span.parent().and_then(|p| p.extensions().get::<SpanData>().map(|d| (d.trace_id, d.span_id)));
        let msg_id =
            attributes.iter().find(|(k, _)| k == MSG_ID).and_then(|(_, v)| v.as_str().map(str::to_owned));
        let (trace_id, parent_id) = match (parent, msg_id) {
            (Some((trace, parent)), _) => (trace, Some(parent)),
            // An attempt: a child of its message's root span, in the message's trace.
            (None, Some(msg)) => (message_trace(&msg), Some(message_span(&msg))),
            (None, None) => (random(), None),
        };
        let data = SpanData {
            trace_id,
            span_id: random(),
            parent_id,
            start: herald_core::clock::system_time(),
            attributes,
        };
        span.extensions_mut().insert(data);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(data) = extensions.get_mut::<SpanData>() {
            values.record(&mut FieldVisitor(&mut data.attributes));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(data) = span.extensions_mut().remove::<SpanData>() else { return };
        let end = herald_core::clock::system_time();
        let name = span.name();
        let kind = if name.starts_with("http.") { 2 } else { 3 }; // SERVER, CLIENT
        let msg_id = data.attributes.iter().find(|(k, _)| k == MSG_ID).and_then(|(_, v)| v.as_str());
        let mut spans = Vec::with_capacity(2);
        if let (true, Some(msg)) = (data.parent_id.is_none(), msg_id) {
            // The request that accepted a message: the root of the message's trace, linked here.
            spans.push(json!({
                "traceId": hex(&message_trace(msg)),
                "spanId": hex(&message_span(msg)),
                "name": "message.accepted",
                "kind": 1,
                "startTimeUnixNano": nanos(data.start),
                "endTimeUnixNano": nanos(end),
                "attributes": [attribute(MSG_ID, &Value::String(msg.to_owned()))],
                "links": [{"traceId": hex(&data.trace_id), "spanId": hex(&data.span_id)}],
            }));
        }
        let failed = data
            .attributes
            .iter()
            .any(|(k, v)| k == "error" || (k == "http.status_code" && v.as_i64().is_some_and(|s| s >= 500)));
        let mut otlp = json!({
            "traceId": hex(&data.trace_id),
            "spanId": hex(&data.span_id),
            "name": name,
            "kind": kind,
            "startTimeUnixNano": nanos(data.start),
            "endTimeUnixNano": nanos(end),
            "attributes": data.attributes.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
            "status": {"code": if failed { 2 } else { 0 }},
        });
        if let Some(parent) = data.parent_id {
            otlp["parentSpanId"] = Value::String(hex(&parent));
        }
        spans.push(otlp);
        for span in spans {
            // A full queue drops the span: tracing must never hold delivery up.
            let _ = self.queue.try_send(span);
        }
    }
}

/// Collects span fields as OTLP attribute values.
struct FieldVisitor<'a>(&'a mut Vec<(String, Value)>);

impl FieldVisitor<'_> {
    fn set(&mut self, field: &Field, value: Value) {
        let key = field.name().to_owned();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field, Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.set(field, Value::from(format!("{value:?}")));
    }
}

fn attribute(key: &str, value: &Value) -> Value {
    let value = match value {
        Value::Bool(b) => json!({"boolValue": b}),
        // OTLP/JSON carries 64-bit integers as strings.
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"intValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n}),
        Value::String(s) => json!({"stringValue": s}),
        other => json!({"stringValue": other.to_string()}),
    };
    json!({"key": key, "value": value})
}

/// The trace of a message's deliveries: the same on every node, from the id alone.
fn message_trace(msg_id: &str) -> [u8; 16] {
    let digest = Sha256::digest(format!("trace:{msg_id}"));
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// The root span of a message's trace.
fn message_span(msg_id: &str) -> [u8; 8] {
    let digest = Sha256::digest(format!("span:{msg_id}"));
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    id
}

fn random<const N: usize>() -> [u8; N] {
    let mut id = [0u8; N];
    rand::thread_rng().fill_bytes(&mut id);
    id
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Nanoseconds since the epoch, as OTLP/JSON's string form of a 64-bit integer.
fn nanos(at: SystemTime) -> String {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos().to_string()
}

/// Sends spans in batches until the layer (and so the subscriber) is gone.
async fn export(url: String, service_name: String, mut spans: mpsc::Receiver<Value>) {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("OTLP exporter disabled: could not build an HTTP client: {error}");
            return;
        }
    };
    let resource = json!({"attributes": [attribute("service.name", &Value::String(service_name))]});
    while let Some(first) = spans.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, spans.recv()).await {
                Ok(Some(span)) => batch.push(span),
                Ok(None) | Err(_) => break,
            }
        }
        let body = json!({"resourceSpans": [{
            "resource": resource,
            "scopeSpans": [{"scope": {"name": "herald", "version": env!("CARGO_PKG_VERSION")}, "spans": batch}],
        }]});
        // Logged with `eprintln!`, not `tracing`: an event about exporting must not feed back
        // into the exporter.
        let request = client.post(&url).header(reqwest::header::CONTENT_TYPE, "application/json");
        match request.body(body.to_string()).send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => eprintln!("OTLP collector at {url} answered {}", response.status()),
            Err(error) => eprintln!("could not send spans to the OTLP collector at {url}: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_traces_are_derived_from_the_message_id() {
        assert_eq!(message_trace("msg_1"), message_trace("msg_1"));
        assert_ne!(message_trace("msg_1"), message_trace("msg_2"));
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        assert_eq!(attribute("n", &Value::from(7))["value"], json!({"intValue": "7"}));
    }
}
