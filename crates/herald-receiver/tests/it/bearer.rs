//! `Authorization: Bearer` tokens, from an `http::HeaderMap` as a server would have them.

use herald_receiver::{BearerError, verify_bearer};

fn with_authorization(value: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, value.parse().expect("a header value"));
    headers
}

#[test]
fn the_right_token_passes_and_others_do_not() {
    assert_eq!(verify_bearer(&with_authorization("Bearer tok_abc123"), "tok_abc123"), Ok(()));
    assert_eq!(
        verify_bearer(&with_authorization("Bearer tok_abc12"), "tok_abc123"),
        Err(BearerError::Mismatch)
    );
    assert_eq!(
        verify_bearer(&with_authorization("Bearer tok_abc1234"), "tok_abc123"),
        Err(BearerError::Mismatch)
    );
    assert_eq!(
        verify_bearer(&with_authorization("Basic dXNlcjpwYXNz"), "tok_abc123"),
        Err(BearerError::NotBearer)
    );
    assert_eq!(verify_bearer(&http::HeaderMap::new(), "tok_abc123"), Err(BearerError::Missing));
}

#[test]
fn errors_never_show_a_token() {
    let error = verify_bearer(&with_authorization("Bearer tok_wrong"), "tok_abc123").expect_err("mismatch");
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains("tok_"), "{shown}");
    }
    assert_eq!(error.code(), "bearer_token_mismatch");
}
