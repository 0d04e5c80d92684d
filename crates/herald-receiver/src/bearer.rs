//! `Authorization: Bearer <token>`, for endpoints configured with a token on top of (or
//! instead of) signatures. Compares in constant time and never reports the token.

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::headers::{self, HeaderSource};

/// Why a request's bearer token was refused. Never contains either token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// There is no `Authorization` header.
    #[error("missing header authorization")]
    Missing,
    /// The `Authorization` header does not use the `Bearer` scheme.
    #[error("the authorization header is not a bearer token")]
    NotBearer,
    /// The token is not the expected one.
    #[error("the bearer token does not match")]
    Mismatch,
}

impl BearerError {
    /// A stable, machine-readable name for the error, in `snake_case`.
    pub fn code(&self) -> &'static str {
        match self {
            BearerError::Missing => "missing_bearer_token",
            BearerError::NotBearer => "not_bearer_token",
            BearerError::Mismatch => "bearer_token_mismatch",
        }
    }
}

/// Checks that the request carries `Authorization: Bearer <expected_token>`.
///
/// The scheme name is matched without regard to case, as HTTP requires. The tokens are
/// compared through their SHA-256 digests in constant time, so neither the content nor the
/// length of the expected token shows in the timing. An empty `expected_token` matches
/// nothing, so a missing configuration value can't open the endpoint.
///
/// ```
/// use herald_receiver::{BearerError, verify_bearer};
///
/// let headers = [("Authorization", "Bearer s3cret")];
/// assert_eq!(verify_bearer(&headers, "s3cret"), Ok(()));
/// assert_eq!(verify_bearer(&headers, "other"), Err(BearerError::Mismatch));
/// ```
pub fn verify_bearer(
    headers: &(impl HeaderSource + ?Sized),
    expected_token: &str,
) -> Result<(), BearerError> {
    let value = headers.header(headers::AUTHORIZATION).ok_or(BearerError::Missing)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(BearerError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::NotBearer);
    }
    let given = Sha256::digest(token.trim_start().as_bytes());
    let expected = Sha256::digest(expected_token.as_bytes());
    let equal = bool::from(given.ct_eq(&expected));
    if equal && !expected_token.is_empty() { Ok(()) } else { Err(BearerError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_is_not() {
        assert_eq!(verify_bearer(&[("authorization", "bearer abc")], "abc"), Ok(()));
        assert_eq!(verify_bearer(&[("authorization", "BEARER  abc")], "abc"), Ok(()));
        assert_eq!(verify_bearer(&[("authorization", "Bearer ABC")], "abc"), Err(BearerError::Mismatch));
    }

    #[test]
    fn each_failure_has_its_own_error() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(verify_bearer(&none, "abc"), Err(BearerError::Missing));
        assert_eq!(verify_bearer(&[("authorization", "Basic YWJj")], "abc"), Err(BearerError::NotBearer));
        assert_eq!(verify_bearer(&[("authorization", "abc")], "abc"), Err(BearerError::NotBearer));
        assert_eq!(verify_bearer(&[("authorization", "Bearer abcd")], "abc"), Err(BearerError::Mismatch));
    }

    #[test]
    fn an_empty_expected_token_matches_nothing() {
        assert_eq!(verify_bearer(&[("authorization", "Bearer ")], ""), Err(BearerError::NotBearer));
        assert_eq!(verify_bearer(&[("authorization", "Bearer  x")], ""), Err(BearerError::Mismatch));
    }
}
