//! Validated names: `uid` aliases, event-type names, channel names, metadata.
//!
//! Each type can only be built by `parse`, so code past the API edge never re-checks strings.

use std::collections::BTreeMap;
use std::fmt;

/// Free-form string labels an operator attaches to an application or endpoint.
pub type Metadata = BTreeMap<String, String>;

/// Why a name was rejected; the API layer turns this into a 422 entry for the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

fn check_token_chars(text: &str, what: &str, max: usize) -> Result<(), NameError> {
    if text.is_empty() {
        return Err(NameError(format!("{what} must not be empty")));
    }
    if text.len() > max {
        return Err(NameError(format!("{what} must be at most {max} characters long")));
    }
    if !text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(NameError(format!("{what} may contain only letters, digits, '-', '_' and '.'")));
    }
    Ok(())
}

macro_rules! token_name {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `text`.
            pub fn parse(text: &str) -> Result<Self, NameError> {
                check_token_chars(text, $what, $max)?;
                Ok(Self(text.to_owned()))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

token_name!(
    /// A caller-chosen alias usable wherever an id is (`uid`).
    Uid,
    "uid",
    256
);
token_name!(
    /// The name of an event type, such as `invoice.paid`.
    EventTypeName,
    "event type name",
    256
);
token_name!(
    /// A channel an endpoint subscribes to, and a message is sent on.
    ChannelName,
    "channel name",
    128
);

token_name!(
    /// The sender's own id for a message (`eventId`), unique per application.
    EventId,
    "event id",
    256
);

token_name!(
    /// The key of a message's ordered lane (`orderingKey`): on an ordered endpoint, messages
    /// with the same key are delivered one at a time, in the order they were accepted.
    OrderingKey,
    "ordering key",
    256
);

/// A feature flag that gates an event type (stored and returned, not enforced yet).
pub type FeatureFlag = EventTypeName;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_accepts_the_documented_alphabet_only() {
        assert!(Uid::parse("customer-42_a.b").is_ok());
        assert!(Uid::parse("").is_err());
        assert!(Uid::parse("has space").is_err());
        assert!(Uid::parse(&"x".repeat(257)).is_err());
        assert!(ChannelName::parse(&"x".repeat(129)).is_err());
    }
}
