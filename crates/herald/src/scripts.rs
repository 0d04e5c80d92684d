//! The scripts Herald runs for its users, on the sandbox of `herald-script`: event types'
//! payload converters (version N to N−1) and endpoints' transformations. The event types'
//! versions they need are cached for a second, so the hot paths (accepting a message,
//! preparing a delivery) rarely read the store; a change made through this node is seen at
//! once, one made through another node within that second.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use herald_core::StoreError;
use herald_core::name::EventTypeName;
use herald_core::store::Store;
use herald_core::version::{self, PayloadVersion};
use herald_script::{Engine, RunError, Script};
use serde::Deserialize;
use serde_json::value::RawValue;

/// How long an event type's versions are used before they are read again.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// Event types kept at most; past it the cache starts over.
const CACHED_EVENT_TYPES: usize = 10_000;

/// An event type's versions: the latest (the default of new messages) and its converters.
#[derive(Debug)]
pub struct Versions {
    pub latest: PayloadVersion,
    /// By the version each converts from.
    pub converters: BTreeMap<PayloadVersion, Script>,
    /// The JSON Schema of each version.
    pub schemas: BTreeMap<PayloadVersion, serde_json::Value>,
    /// Payloads are checked against their version's schema (`validatePayloads`).
    pub validate: bool,
}

#[derive(Debug)]
struct Cached {
    read_at: Instant,
    versions: Option<Arc<Versions>>,
}

/// The script engine and the event types' versions, shared by the API and the worker.
#[derive(Debug, Clone)]
pub struct Scripts {
    engine: Engine,
    store: Arc<dyn Store>,
    cache: Arc<Mutex<HashMap<EventTypeName, Cached>>>,
}

/// A payload converted for an endpoint.
#[derive(Debug, PartialEq)]
pub struct Converted {
    pub payload: Vec<u8>,
    pub version: PayloadVersion,
}

/// Why a payload could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("the event type has no converter from version {0} to {prev}", prev = .0.number() - 1)]
    Missing(PayloadVersion),
    #[error("converting from version {from} to {to}: {error}", to = .from.number() - 1)]
    Failed { from: PayloadVersion, error: RunError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a transformation is given and may change (`function handler(webhook)`).
#[derive(Debug, Clone)]
pub struct Webhook<'a> {
    pub event_type: &'a str,
    pub payload: &'a [u8],
    pub url: &'a str,
    pub method: &'a str,
}

/// What a transformation returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Transformed {
    pub payload: Vec<u8>,
    pub url: url::Url,
    pub method: http::Method,
    pub cancel: bool,
}

#[derive(Deserialize)]
struct Returned<'a> {
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
    url: Option<String>,
    method: Option<String>,
    cancel: Option<bool>,
}

impl Scripts {
    pub fn new(engine: Engine, store: Arc<dyn Store>) -> Self {
        Self { engine, store, cache: Arc::default() }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// An event type changed through this node: its versions are read again next time.
    pub fn forget(&self, name: &EventTypeName) {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).remove(name);
    }

    /// The event type's versions; `None` when it is not registered.
    pub async fn versions(&self, name: &EventTypeName) -> Result<Option<Arc<Versions>>, StoreError> {
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(cached) = cache.get(name)
                && cached.read_at.elapsed() < FRESH_FOR
            {
                return Ok(cached.versions.clone());
            }
        }
        let read_at = Instant::now();
        let versions = self.store.find_event_type(name).await?.map(|event_type| {
            Arc::new(Versions {
                latest: PayloadVersion::latest_in(event_type.schemas.as_ref()),
                schemas: event_type
                    .schemas
                    .iter()
                    .flatten()
                    .filter_map(|(v, schema)| Some((PayloadVersion::parse(v).ok()?, schema.clone())))
                    .collect(),
                validate: event_type.validate_payloads,
                converters: event_type
                    .converters
                    .into_iter()
                    .map(|(from, code)| (from, Script::new(code, "convert")))
                    .collect(),
            })
        });
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHED_EVENT_TYPES {
            cache.clear();
        }
        cache.insert(name.clone(), Cached { read_at, versions: versions.clone() });
        Ok(versions)
    }

    /// The payload for an endpoint pinned to `pin`: converted down step by step from
    /// `published` to the highest version at or below the pin (unchanged when none is needed).
    pub async fn convert(
        &self,
        event_type: &EventTypeName,
        payload: &[u8],
        published: PayloadVersion,
        pin: Option<PayloadVersion>,
    ) -> Result<Converted, ConvertError> {
        let steps = version::steps_down(published, pin);
        if steps.is_empty() {
            return Ok(Converted { payload: payload.to_vec(), version: published });
        }
        let versions = self.versions(event_type).await?;
        let mut payload = String::from_utf8_lossy(payload).into_owned();
        let mut version = published;
        for from in steps {
            let converter =
                versions.as_ref().and_then(|v| v.converters.get(&from)).ok_or(ConvertError::Missing(from))?;
            payload = self
                .engine
                .run(converter, payload)
                .await
                .map_err(|error| ConvertError::Failed { from, error })?;
            if !payload.starts_with('{') {
                return Err(ConvertError::Failed { from, error: RunError::BadReturn("not an object") });
            }
            version = from.previous().unwrap_or(PayloadVersion::FIRST);
        }
        Ok(Converted { payload: payload.into_bytes(), version })
    }

    /// Runs an endpoint's transformation on what would be sent.
    pub async fn transform(&self, code: &str, webhook: Webhook<'_>) -> Result<Transformed, RunError> {
        let payload: &RawValue = serde_json::from_slice(webhook.payload).map_err(|_| RunError::BadInput)?;
        let input = serde_json::json!({
            "eventType": webhook.event_type,
            "payload": payload,
            "url": webhook.url,
            "method": webhook.method,
            "cancel": false,
        });
        let script = Script::new(code, "handler");
        let output = self.engine.run(&script, input.to_string()).await?;
        let returned: Returned<'_> =
            serde_json::from_str(&output).map_err(|_| RunError::BadReturn("not an object"))?;
        let cancel = returned.cancel.unwrap_or(false);
        let payload = match returned.payload {
            Some(payload) => payload.get().as_bytes().to_vec(),
            None if cancel => Vec::new(),
            None => return Err(RunError::BadReturn("an object without `payload`")),
        };
        let url = returned.url.as_deref().unwrap_or(webhook.url);
        let url = url::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or(RunError::BadReturn("a `url` that is not an http(s) URL"))?;
        let method = match returned.method.as_deref().unwrap_or(webhook.method) {
            "POST" => http::Method::POST,
            "PUT" => http::Method::PUT,
            "PATCH" => http::Method::PATCH,
            _ => return Err(RunError::BadReturn("a `method` other than POST, PUT or PATCH")),
        };
        Ok(Transformed { payload, url, method, cancel })
    }
}
