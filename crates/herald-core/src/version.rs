//! Payload versions: an event type's payload changes shape over versions `1`, `2`, …; a
//! message is published at one, and an endpoint may be pinned to an older one, which it
//! receives converted down step by step (each converter turns version N into N−1).

use std::fmt;

/// The highest version a payload can have.
pub const MAX_VERSION: u32 = 9_999;

/// A payload version: a positive whole number, written as a string in the API (`"2"`), as
/// the keys of an event type's `schemas` are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PayloadVersion(u32);

impl PayloadVersion {
    pub const FIRST: Self = Self(1);

    pub fn new(number: u32) -> Option<Self> {
        (1..=MAX_VERSION).contains(&number).then_some(Self(number))
    }

    /// Parses `"1"`…`"9999"` (no sign, no leading zero, no spaces).
    pub fn parse(text: &str) -> Result<Self, String> {
        let refuse =
            || format!("must be a version number from 1 to {MAX_VERSION} (e.g. \"2\"), not {text:?}");
        if text.is_empty()
            || text.starts_with('0')
            || !text.bytes().all(|b| b.is_ascii_digit())
            || text.len() > 4
        {
            return Err(refuse());
        }
        text.parse::<u32>().ok().and_then(Self::new).ok_or_else(refuse)
    }

    /// A version read back from a database column.
    pub fn from_stored(number: i64) -> Option<Self> {
        u32::try_from(number).ok().and_then(Self::new)
    }

    pub fn number(self) -> u32 {
        self.0
    }

    /// The version before this one, if any.
    pub fn previous(self) -> Option<Self> {
        Self::new(self.0 - 1)
    }

    /// The version a message is published at when it names none: the highest version among
    /// the event type's schemas (keys that are not versions are ignored), else 1.
    pub fn latest_in(schemas: Option<&serde_json::Map<String, serde_json::Value>>) -> Self {
        schemas
            .into_iter()
            .flat_map(|schemas| schemas.keys())
            .filter_map(|key| Self::parse(key).ok())
            .max()
            .unwrap_or(Self::FIRST)
    }
}

impl fmt::Display for PayloadVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The conversion a delivery needs: from the version a message holds down to the highest
/// version at or below the endpoint's pin. Empty when nothing is to be converted.
pub fn steps_down(published: PayloadVersion, pin: Option<PayloadVersion>) -> Vec<PayloadVersion> {
    match pin {
        Some(pin) if pin < published => (pin.0 + 1..=published.0).rev().map(PayloadVersion).collect(),
        _ => Vec::new(),
    }
}

/// An event type's converters as stored: a JSON object from version to source; `None` when
/// there are none.
pub fn converters_to_json(converters: &std::collections::BTreeMap<PayloadVersion, String>) -> Option<String> {
    if converters.is_empty() {
        return None;
    }
    let map: serde_json::Map<String, serde_json::Value> =
        converters.iter().map(|(v, code)| (v.to_string(), serde_json::Value::String(code.clone()))).collect();
    Some(serde_json::Value::Object(map).to_string())
}

/// Reads what [`converters_to_json`] wrote.
pub fn converters_from_json(
    text: Option<&str>,
) -> Result<std::collections::BTreeMap<PayloadVersion, String>, String> {
    let Some(text) = text else { return Ok(Default::default()) };
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_str(text).map_err(|e| e.to_string())?;
    map.into_iter().map(|(v, code)| Ok((PayloadVersion::parse(&v)?, code))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_positive_numbers_only() {
        assert_eq!(PayloadVersion::parse("2").map(PayloadVersion::number), Ok(2));
        for bad in ["", "0", "01", "-1", "1.0", " 1", "v2", "10000", "99999999999"] {
            assert!(PayloadVersion::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_default_version_is_the_highest_schema_version() {
        let schemas: serde_json::Map<_, _> =
            serde_json::from_str(r#"{"1": {}, "3": {}, "draft": {}, "2": {}}"#).expect("json");
        assert_eq!(PayloadVersion::latest_in(Some(&schemas)).number(), 3);
        assert_eq!(PayloadVersion::latest_in(None), PayloadVersion::FIRST);
    }

    #[test]
    fn conversion_steps_go_from_the_published_version_down_to_just_above_the_pin() {
        let v = |n| PayloadVersion::new(n).expect("version");
        assert_eq!(steps_down(v(3), Some(v(1))), vec![v(3), v(2)]);
        assert_eq!(steps_down(v(3), Some(v(3))), Vec::<PayloadVersion>::new());
        assert_eq!(
            steps_down(v(2), Some(v(5))),
            Vec::<PayloadVersion>::new(),
            "a pin above what was published"
        );
        assert_eq!(steps_down(v(2), None), Vec::<PayloadVersion>::new());
    }
}
