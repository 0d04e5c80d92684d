//! How an endpoint's secrets are sealed for storage: one encrypted blob per endpoint.
//!
//! Both store backends call these two functions, so the at-rest format is the same whatever the
//! database, and no backend ever writes a signing key, header value or bearer token in clear.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Endpoint, EndpointKeys, ExpiringKey};
use crate::secret::{Cipher, SecretString, SigningSecret};
use crate::store::StoreError;

/// The secret parts of an endpoint, after unsealing.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSecrets {
    pub keys: EndpointKeys,
    pub headers: BTreeMap<String, SecretString>,
    pub bearer_token: Option<SecretString>,
}

#[derive(Serialize, Deserialize)]
struct SealedForm {
    current: String,
    #[serde(default)]
    previous: Vec<(String, DateTime<Utc>)>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    bearer_token: Option<String>,
}

/// Encrypts the endpoint's keys, headers and bearer token into one blob.
pub fn seal_endpoint_secrets(cipher: &Cipher, endpoint: &Endpoint) -> Vec<u8> {
    let form = SealedForm {
        current: endpoint.keys.current.expose(),
        previous: endpoint.keys.previous.iter().map(|key| (key.key.expose(), key.expires_at)).collect(),
        headers: endpoint
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.expose().to_owned()))
            .collect(),
        bearer_token: endpoint.bearer_token.as_ref().map(|token| token.expose().to_owned()),
    };
    // Serialising plain strings and timestamps to JSON cannot fail.
    let plaintext = serde_json::to_vec(&form).unwrap_or_default();
    cipher.seal(&plaintext)
}

/// Decrypts a blob written by [`seal_endpoint_secrets`].
pub fn open_endpoint_secrets(cipher: &Cipher, sealed: &[u8]) -> Result<EndpointSecrets, StoreError> {
    let plaintext = cipher.open(sealed).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let form: SealedForm = serde_json::from_slice(&plaintext)
        .map_err(|e| StoreError::Corrupt(format!("endpoint secrets: {e}")))?;
    let parse =
        |text: &str| SigningSecret::parse(text).map_err(|e| StoreError::Corrupt(format!("signing key: {e}")));
    let previous = form
        .previous
        .iter()
        .map(|(key, expires_at)| Ok(ExpiringKey { key: parse(key)?, expires_at: *expires_at }))
        .collect::<Result<_, StoreError>>()?;
    Ok(EndpointSecrets {
        keys: EndpointKeys { current: parse(&form.current)?, previous },
        headers: form.headers.into_iter().map(|(k, v)| (k, SecretString::new(v))).collect(),
        bearer_token: form.bearer_token.map(SecretString::new),
    })
}
