//! Credentials in endpoint URLs (`https://user:pass@host/`): how they are masked wherever a URL
//! is shown or recorded, and split off so the store can seal them with the other secrets.
//!
//! The worker still sends them (as HTTP Basic authentication), so the full URL lives in the
//! [`crate::model::Endpoint`]; nothing here decides what is sent, only what is shown and kept.

use url::Url;

// `Url::set_username` and `set_password` fail only for URLs that cannot carry credentials
// (no host); every endpoint URL has a host, so their results are ignored below.

/// What a masked credential reads as. A URL sent back with this in place of a credential
/// (a client that read an endpoint and writes it back) keeps the credential it had.
pub const MASK: &str = "****";

/// The URL as it may be shown: the password replaced by [`MASK`]; a username with no password
/// (often a token itself) replaced too. A URL without credentials is unchanged.
pub fn masked(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some(MASK));
    } else {
        let _ = shown.set_username(MASK);
    }
    shown.to_string()
}

/// [`masked`] for a URL kept as text (an attempt record); text that is not a URL is kept as
/// it is, since it cannot hold parsed credentials.
pub fn masked_text(text: &str) -> String {
    match Url::parse(text) {
        Ok(url) => masked(&url),
        Err(_) => text.to_owned(),
    }
}

/// The URL without its credentials: what a store keeps in clear.
pub fn without_credentials(url: &Url) -> Url {
    let mut bare = url.clone();
    let _ = bare.set_password(None);
    let _ = bare.set_username("");
    bare
}

/// Whether the URL in `text` carries credentials (a stored URL column that still holds them).
pub fn has_credentials(text: &str) -> bool {
    text.parse::<Url>().ok().is_some_and(|url| credentials(&url).is_some())
}

/// The URL's credentials as written in it (percent-encoded): the username and the password.
pub fn credentials(url: &Url) -> Option<(String, Option<String>)> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    Some((url.username().to_owned(), url.password().map(str::to_owned)))
}

/// Puts credentials taken by [`credentials`] back into a URL.
pub fn with_credentials(mut url: Url, username: &str, password: Option<&str>) -> Url {
    let _ = url.set_username(username);
    let _ = url.set_password(password);
    url
}

/// A new URL given for an endpoint whose current URL is `current`: a credential given as
/// [`MASK`] is the one `current` has (so a form or a read-modify-write that sends back the
/// masked URL does not replace the password with asterisks).
pub fn unmask(mut new: Url, current: &Url) -> Url {
    if current.password().is_some() && new.password() == Some(MASK) {
        let _ = new.set_password(current.password());
    }
    if current.password().is_none() && !current.username().is_empty() && new.username() == MASK {
        let _ = new.set_username(current.username());
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("a URL")
    }

    #[test]
    fn passwords_and_lone_usernames_are_masked() {
        assert_eq!(
            masked(&url("https://user:s3cr%40t@example.com/h?q=1")),
            "https://user:****@example.com/h?q=1"
        );
        assert_eq!(masked(&url("https://tok_abc@example.com/")), "https://****@example.com/");
        assert_eq!(masked(&url("https://example.com/h")), "https://example.com/h");
        assert_eq!(masked_text("https://u:p@example.com/"), "https://u:****@example.com/");
        assert_eq!(masked_text("not a url"), "not a url");
    }

    #[test]
    fn credentials_split_off_and_come_back_exactly() {
        let full = url("https://us%20er:p%40ss:w@example.com:8443/h");
        let bare = without_credentials(&full);
        assert_eq!(bare.as_str(), "https://example.com:8443/h");
        let (username, password) = credentials(&full).expect("credentials");
        assert_eq!(with_credentials(bare, &username, password.as_deref()), full);
        assert_eq!(credentials(&url("https://example.com/")), None);
    }

    #[test]
    fn a_masked_url_sent_back_keeps_the_credentials() {
        let current = url("https://user:p%40ss@example.com/h");
        let sent_back = url(&masked(&current));
        assert_eq!(unmask(sent_back, &current), current);
        let moved = url("https://user:****@example.org/new");
        assert_eq!(unmask(moved, &current).as_str(), "https://user:p%40ss@example.org/new");
        let token = url("https://tok_abc@example.com/");
        assert_eq!(unmask(url(&masked(&token)), &token), token);
        // A new password, or none, is taken as given.
        assert_eq!(unmask(url("https://user:new@example.com/h"), &current).password(), Some("new"));
        assert_eq!(unmask(url("https://example.com/h"), &current).password(), None);
    }
}
