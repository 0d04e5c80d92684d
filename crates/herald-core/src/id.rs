//! Typed, prefixed identifiers (`app_…`, `ep_…`, `msg_…`) built on KSUIDs.
//!
//! An id is parsed once at the edge and is a distinct type afterwards, so an endpoint id can
//! never be passed where an application id is expected. This module does no I/O beyond
//! reading the system random number generator.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rand::RngCore;

/// KSUID epoch (2014-05-13T16:53:20Z), as in the KSUID specification.
const KSUID_EPOCH: i64 = 1_400_000_000;
/// A KSUID is 20 bytes: a 4-byte timestamp and a 16-byte payload.
const KSUID_BYTES: usize = 20;
/// Its base62 text form is always 27 characters long.
const KSUID_CHARS: usize = 27;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A K-sortable unique identifier.
///
/// The first four payload bytes hold the sub-second nanoseconds of the creation time, so ids
/// created by one process sort in creation order even within one second; the remaining twelve
/// bytes are random. The result is still a valid KSUID for any other KSUID library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ksuid([u8; KSUID_BYTES]);

impl Ksuid {
    /// A new KSUID for the given creation time.
    pub fn new(at: DateTime<Utc>) -> Self {
        let mut bytes = [0u8; KSUID_BYTES];
        let seconds = (at.timestamp() - KSUID_EPOCH).clamp(0, i64::from(u32::MAX)) as u32;
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..8].copy_from_slice(&at.timestamp_subsec_nanos().to_be_bytes());
        rand::thread_rng().fill_bytes(&mut bytes[8..]);
        Self(bytes)
    }

    /// The creation time it carries (seconds, and Herald's nanoseconds in the payload).
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        let seconds = u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]);
        let nanos = u32::from_be_bytes([self.0[4], self.0[5], self.0[6], self.0[7]]);
        DateTime::from_timestamp(i64::from(seconds) + KSUID_EPOCH, nanos.min(999_999_999))
    }

    /// The base62 text form (27 characters).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(KSUID_CHARS);
        self.encode_into(&mut out);
        out
    }

    /// Appends the base62 text form to `out` (ids are made as prefix + KSUID in one string).
    fn encode_into(&self, out: &mut String) {
        // Repeated division of the 160-bit number by 62, in five 32-bit limbs (most significant
        // first): every id made, and so every message accepted, runs this.
        let mut limbs = self.limbs();
        let mut digits = [b'0'; KSUID_CHARS];
        for slot in digits.iter_mut().rev() {
            let mut remainder: u64 = 0;
            for limb in limbs.iter_mut() {
                let value = (remainder << 32) | u64::from(*limb);
                *limb = (value / 62) as u32;
                remainder = value % 62;
            }
            *slot = BASE62[remainder as usize];
        }
        out.extend(digits.iter().map(|&digit| char::from(digit)));
    }

    /// Parses the 27-character base62 form.
    pub fn decode(text: &str) -> Option<Self> {
        if text.len() != KSUID_CHARS {
            return None;
        }
        // Multiply-and-add in five 32-bit limbs (least significant last); every id parsed, and
        // so every row a store reads back, runs this.
        let mut limbs = [0u32; KSUID_BYTES / 4];
        for c in text.bytes() {
            let digit = BASE62_VALUES[usize::from(c)];
            if digit == INVALID_DIGIT {
                return None;
            }
            let mut carry = u64::from(digit);
            for limb in limbs.iter_mut().rev() {
                let value = u64::from(*limb) * 62 + carry;
                *limb = value as u32;
                carry = value >> 32;
            }
            if carry != 0 {
                return None;
            }
        }
        let mut bytes = [0u8; KSUID_BYTES];
        for (chunk, limb) in bytes.chunks_exact_mut(4).zip(limbs) {
            chunk.copy_from_slice(&limb.to_be_bytes());
        }
        Some(Self(bytes))
    }

    /// The 20 bytes as five big-endian 32-bit numbers, most significant first.
    fn limbs(&self) -> [u32; KSUID_BYTES / 4] {
        let mut limbs = [0u32; KSUID_BYTES / 4];
        for (limb, chunk) in limbs.iter_mut().zip(self.0.chunks_exact(4)) {
            *limb = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        limbs
    }
}

/// Marks a byte that is not a base62 digit in [`BASE62_VALUES`].
const INVALID_DIGIT: u8 = u8::MAX;

/// The value of each base62 digit by its byte ([`INVALID_DIGIT`] for any other byte).
const BASE62_VALUES: [u8; 256] = {
    let mut values = [INVALID_DIGIT; 256];
    let mut index = 0;
    while index < BASE62.len() {
        values[BASE62[index] as usize] = index as u8;
        index += 1;
    }
    values
};

/// Declares a prefixed id type.
macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id created now. Ids take the system time even where a test clock is in
            /// use, so they always sort in the order they were made.
            pub fn generate() -> Self {
                Self::generate_at(crate::clock::system_now())
            }

            /// A fresh id whose KSUID carries the given creation time.
            pub fn generate_at(at: DateTime<Utc>) -> Self {
                let mut text = String::with_capacity($prefix.len() + KSUID_CHARS);
                text.push_str($prefix);
                Ksuid::new(at).encode_into(&mut text);
                Self(text)
            }

            /// The id as text, prefix included.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// When the id was made (the time its KSUID carries).
            pub fn created_at(&self) -> Option<DateTime<Utc>> {
                Ksuid::decode(&self.0[$prefix.len()..]).and_then(|ksuid| ksuid.created_at())
            }

            /// Whether `text` has the shape of this kind of id (as opposed to a `uid` alias).
            pub fn looks_like(text: &str) -> bool {
                text.strip_prefix($prefix).is_some_and(|rest| Ksuid::decode(rest).is_some())
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                if Self::looks_like(text) {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(InvalidId { expected_prefix: $prefix })
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// Identifies an application (one of the operator's customers).
    ApplicationId,
    "app_"
);
prefixed_id!(
    /// Identifies an endpoint of an application.
    EndpointId,
    "ep_"
);
prefixed_id!(
    /// Identifies a message.
    MessageId,
    "msg_"
);
prefixed_id!(
    /// Identifies one delivery attempt.
    AttemptId,
    "atmpt_"
);
prefixed_id!(
    /// Identifies an API token (not the token's secret value).
    TokenId,
    "tok_"
);

prefixed_id!(
    /// Identifies an ingest source (where a provider sends webhooks for the user).
    SourceId,
    "src_"
);

/// A string that is not an id of the expected kind.
#[derive(Debug, Clone, thiserror::Error)]
#[error("not a valid id: expected `{expected_prefix}` followed by a 27-character KSUID")]
pub struct InvalidId {
    expected_prefix: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_creation_time() {
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_000).expect("a valid time");
        assert_eq!(MessageId::generate_at(at).created_at(), Some(at));
    }

    #[test]
    fn ksuid_round_trips_through_base62() {
        let id = Ksuid::new(Utc::now());
        let text = id.encode();
        assert_eq!(text.len(), 27);
        assert_eq!(Ksuid::decode(&text), Some(id));
    }

    #[test]
    fn ksuid_decodes_known_reference_values() {
        // The smallest and largest KSUIDs from the specification.
        assert_eq!(Ksuid::decode("000000000000000000000000000"), Some(Ksuid([0; 20])));
        assert_eq!(Ksuid::decode("aWgEPTl1tmebfsQzFP4bxwgy80V"), Some(Ksuid([0xff; 20])));
        assert_eq!(Ksuid::decode("aWgEPTl1tmebfsQzFP4bxwgy80W"), None, "overflows 160 bits");
        assert_eq!(Ksuid([0xff; 20]).encode(), "aWgEPTl1tmebfsQzFP4bxwgy80V");
    }

    /// The codec written the plain way (one byte at a time), to check the limb-wise one.
    fn encode_bytewise(ksuid: &Ksuid) -> String {
        let mut number = ksuid.0;
        let mut out = [b'0'; KSUID_CHARS];
        for slot in out.iter_mut().rev() {
            let mut remainder: u32 = 0;
            for byte in number.iter_mut() {
                let value = (remainder << 8) | u32::from(*byte);
                *byte = (value / 62) as u8;
                remainder = value % 62;
            }
            *slot = BASE62[remainder as usize];
        }
        out.iter().map(|&b| b as char).collect()
    }

    #[test]
    fn ksuid_codec_agrees_with_the_bytewise_one_on_random_and_edge_values() {
        let mut values = vec![Ksuid([0; 20]), Ksuid([0xff; 20]), Ksuid([0x80; 20])];
        for one in 0..20 {
            let mut bytes = [0u8; 20];
            bytes[one] = 1;
            values.push(Ksuid(bytes));
        }
        for _ in 0..2_000 {
            let mut bytes = [0u8; 20];
            rand::thread_rng().fill_bytes(&mut bytes);
            values.push(Ksuid(bytes));
        }
        for value in values {
            let text = value.encode();
            assert_eq!(text, encode_bytewise(&value));
            assert_eq!(Ksuid::decode(&text), Some(value));
        }
        for bad in ["00000000000000000000000000-", "0000000000000000000000000é", "00000000000000000000000000"]
        {
            assert_eq!(Ksuid::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_sort_in_creation_order_within_a_second() {
        let base = Utc::now();
        let first = ApplicationId::generate_at(base);
        let second = ApplicationId::generate_at(base + chrono::Duration::nanoseconds(1000));
        assert!(first < second);
    }

    #[test]
    fn prefixed_ids_parse_only_their_own_prefix() {
        let app = ApplicationId::generate();
        assert!(app.as_str().parse::<ApplicationId>().is_ok());
        assert!(app.as_str().parse::<EndpointId>().is_err());
        assert!("app_short".parse::<ApplicationId>().is_err());
        assert!(!ApplicationId::looks_like("my-customer-uid"));
    }
}
