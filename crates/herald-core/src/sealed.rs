//! How an endpoint's secrets are sealed for storage: one encrypted blob per endpoint.
//!
//! Both store backends call these functions, so the at-rest format is the same whatever the
//! database, and no backend ever writes a signing key, header value, bearer token or URL
//! credential in clear: the URL is stored without its credentials ([`url_at_rest`]), which
//! are sealed here and put back when the endpoint is read ([`EndpointSecrets::full_url`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use url::Url;

use crate::endpoint_url;
use crate::model::{Endpoint, EndpointKeys, ExpiringKey};
use crate::secret::{Cipher, SecretString, SigningSecret};
use crate::store::StoreError;

/// The secret parts of an endpoint, after unsealing.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSecrets {
    pub keys: EndpointKeys,
    pub headers: BTreeMap<String, SecretString>,
    pub bearer_token: Option<SecretString>,
    /// The credentials of the endpoint's URL (username and password, percent-encoded as in
    /// the URL); `None` for a URL without any, or for a row sealed before URL credentials were
    /// (whose URL column still holds them).
    url_credentials: Option<(SecretString, Option<SecretString>)>,
}

impl EndpointSecrets {
    /// The endpoint's URL: `stored` (as the store kept it, see [`url_at_rest`]) with its sealed
    /// credentials put back.
    pub fn full_url(&self, stored: Url) -> Url {
        match &self.url_credentials {
            Some((username, password)) => endpoint_url::with_credentials(
                stored,
                username.expose(),
                password.as_ref().map(SecretString::expose),
            ),
            None => stored,
        }
    }
}

/// The URL a store keeps in clear: the endpoint's URL without its credentials, which
/// [`seal_endpoint_secrets`] seals.
pub fn url_at_rest(endpoint: &Endpoint) -> String {
    endpoint_url::without_credentials(&endpoint.url).to_string()
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
    /// Absent in rows sealed before URL credentials were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url_credentials: Option<(String, Option<String>)>,
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
        url_credentials: endpoint_url::credentials(&endpoint.url),
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
        url_credentials: form
            .url_credentials
            .map(|(username, password)| (SecretString::new(username), password.map(SecretString::new))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{ApplicationId, EndpointId};
    use crate::name::Metadata;

    fn endpoint(url: &str) -> Endpoint {
        let now = Utc::now();
        Endpoint {
            id: EndpointId::generate_at(now),
            app_id: ApplicationId::generate_at(now),
            uid: None,
            url: url.parse().expect("url"),
            description: String::new(),
            disabled: false,
            event_types: None,
            channels: None,
            throttle_rate: None,
            metadata: Metadata::new(),
            keys: EndpointKeys::new(None),
            headers: BTreeMap::new(),
            bearer_token: None,
            ordered: false,
            ordered_on_exhausted: Default::default(),
            consent: None,
            consent_state: None,
            payload_version: None,
            transformation: Default::default(),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn url_credentials_are_sealed_and_put_back() {
        let cipher = Cipher::from_base64(&Cipher::generate_key_base64()).expect("key");
        let endpoint = endpoint("https://user:p%40ss@example.com/hook");
        let stored = url_at_rest(&endpoint);
        assert_eq!(stored, "https://example.com/hook");
        let sealed = seal_endpoint_secrets(&cipher, &endpoint);
        assert!(!String::from_utf8_lossy(&sealed).contains("p%40ss"));
        let secrets = open_endpoint_secrets(&cipher, &sealed).expect("opens");
        assert_eq!(secrets.full_url(stored.parse().expect("url")), endpoint.url);
    }

    #[test]
    fn a_row_sealed_before_url_credentials_keeps_its_stored_url() {
        let cipher = Cipher::from_base64(&Cipher::generate_key_base64()).expect("key");
        let key = SigningSecret::generate_hmac().expose();
        let older = serde_json::json!({"current": key, "previous": [], "headers": {}, "bearer_token": null});
        let sealed = cipher.seal(older.to_string().as_bytes());
        let secrets = open_endpoint_secrets(&cipher, &sealed).expect("opens");
        let stored: Url = "https://user:pass@example.com/".parse().expect("url");
        assert_eq!(secrets.full_url(stored.clone()), stored);
    }
}
