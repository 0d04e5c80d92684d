//! generic-webhook: no signature; when configured, a bearer token (`Authorization: Bearer …`)
//! or HTTP basic authentication, compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{Request, same};
use crate::ingest::{RefusalReason, SourceConfig};

pub(super) fn verify(config: &SourceConfig, request: &Request<'_>) -> Result<(), RefusalReason> {
    let expected = match (&config.bearer_token, &config.basic_auth) {
        (Some(token), _) => format!("Bearer {token}"),
        (None, Some(basic)) => {
            format!("Basic {}", BASE64.encode(format!("{}:{}", basic.username, basic.password)))
        }
        (None, None) => return Ok(()),
    };
    let given = request.header("authorization").ok_or(RefusalReason::MissingSignature)?;
    if same(given.trim().as_bytes(), expected.as_bytes()) { Ok(()) } else { Err(RefusalReason::BadSignature) }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::headers;
    use super::*;
    use crate::ingest::BasicAuth;

    fn check(config: &SourceConfig, authorization: Option<&str>) -> Result<(), RefusalReason> {
        let headers = headers(&authorization.map(|value| vec![("Authorization", value)]).unwrap_or_default());
        verify(config, &Request { method: "POST", url: "", headers: &headers, body: b"x" })
    }

    #[test]
    fn without_credentials_everything_passes() {
        assert_eq!(check(&SourceConfig::default(), None), Ok(()));
    }

    #[test]
    fn a_bearer_token_must_match() {
        let config = SourceConfig { bearer_token: Some("t0ken".into()), ..SourceConfig::default() };
        assert_eq!(check(&config, Some("Bearer t0ken")), Ok(()));
        assert_eq!(check(&config, Some("Bearer t0keN")), Err(RefusalReason::BadSignature));
        assert_eq!(check(&config, None), Err(RefusalReason::MissingSignature));
    }

    #[test]
    fn basic_credentials_must_match() {
        let basic = BasicAuth { username: "Aladdin".into(), password: "open sesame".into() };
        let config = SourceConfig { basic_auth: Some(basic), ..SourceConfig::default() };
        // RFC 7617's example.
        assert_eq!(check(&config, Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")), Ok(()));
        assert_eq!(
            check(&config, Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZR==")),
            Err(RefusalReason::BadSignature)
        );
    }
}
