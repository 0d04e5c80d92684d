//! Endpoint consent, after the CloudEvents HTTP webhook spec's abuse protection: the setting
//! (`consent`), the state of an endpoint's consent as the store keeps it, and the pure
//! decisions the worker and the API make from them. No I/O: the handshake itself (an
//! `OPTIONS` request) is the worker's.
//!
//! Consent is given to an origin (scheme, host and port of the endpoint's URL): a state whose
//! origin is not the URL's current origin counts as never asked, so changing the URL to
//! another host asks again, and changing only its path does not.

use chrono::{DateTime, Duration, Utc};
use url::Url;

/// How long a delivery that waits for a pending consent is given back for before it is looked
/// at again (a grant through the callback wakes its endpoint's lane sooner on the node that
/// received it).
pub const PENDING_RECHECK: Duration = Duration::seconds(60);
/// How long the callback of a handshake can grant consent; after it, the endpoint counts as
/// having refused.
pub const CALLBACK_VALIDITY: Duration = Duration::hours(1);
/// How long a refusal stands before the next delivery asks again.
pub const REFUSAL_RECHECK: Duration = Duration::minutes(10);

/// Whether an endpoint must consent before it receives anything (`consent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsentMode {
    /// Deliver without asking (the default).
    #[default]
    Off,
    /// Ask with the CloudEvents webhook handshake first.
    CloudEvents,
}

impl ConsentMode {
    /// The stored code: 0 off, 1 cloudevents.
    pub fn code(self) -> i16 {
        match self {
            Self::Off => 0,
            Self::CloudEvents => 1,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Off),
            1 => Some(Self::CloudEvents),
            _ => None,
        }
    }

    /// The API's and the configuration's name: `off` or `cloudevents`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::CloudEvents => "cloudevents",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "off" => Ok(Self::Off),
            "cloudevents" => Ok(Self::CloudEvents),
            other => Err(format!("must be `off` or `cloudevents`, not `{other}`")),
        }
    }
}

/// What an endpoint answered, as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentDecision {
    /// Asked; the endpoint may still grant through the callback until `expires_at`.
    Pending { expires_at: DateTime<Utc> },
    /// Granted; at most `per_minute` requests a minute (`None`: no limit of its own).
    Granted { per_minute: Option<u32> },
    /// Not granted, and why (shown in the API and in the attempt log).
    Refused { reason: String },
}

/// An endpoint's consent as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentState {
    /// The origin (`https://host:port`) the decision is about.
    pub origin: String,
    pub decision: ConsentDecision,
    /// When the decision was made (asked, granted or refused).
    pub decided_at: DateTime<Utc>,
}

/// The consent status the API shows (`consentStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentStatus {
    NotRequired,
    /// Not asked yet, or asked and waiting for a grant through the callback.
    Pending,
    Granted,
    Refused,
}

impl ConsentStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::NotRequired => "notRequired",
            Self::Pending => "pending",
            Self::Granted => "granted",
            Self::Refused => "refused",
        }
    }
}

/// What the worker does with a delivery to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Send it (at most `per_minute` a minute when the endpoint said so).
    Deliver { per_minute: Option<u32> },
    /// Ask first: no decision for the URL's origin yet, or an old refusal to ask about again.
    Ask,
    /// Give it back until `until`: consent is pending.
    Wait { until: DateTime<Utc> },
    /// Record it as not attempted, for this reason.
    Refuse { reason: String },
}

/// The origin consent is given to: scheme, host and port of the URL.
pub fn url_origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// The decision that applies to `url`, if any (one about another origin does not).
fn current<'a>(url: &Url, state: Option<&'a ConsentState>) -> Option<&'a ConsentState> {
    state.filter(|state| state.origin == url_origin(url))
}

/// What to do with a delivery to `url` at `now`.
pub fn gate(required: bool, url: &Url, state: Option<&ConsentState>, now: DateTime<Utc>) -> Gate {
    if !required {
        return Gate::Deliver { per_minute: None };
    }
    let Some(state) = current(url, state) else { return Gate::Ask };
    match &state.decision {
        ConsentDecision::Granted { per_minute } => Gate::Deliver { per_minute: *per_minute },
        ConsentDecision::Pending { expires_at } if now < *expires_at => {
            Gate::Wait { until: (now + PENDING_RECHECK).min(*expires_at) }
        }
        ConsentDecision::Pending { expires_at } if now < *expires_at + REFUSAL_RECHECK => {
            Gate::Refuse { reason: expired_reason() }
        }
        ConsentDecision::Refused { reason } if now < state.decided_at + REFUSAL_RECHECK => {
            Gate::Refuse { reason: reason.clone() }
        }
        ConsentDecision::Pending { .. } | ConsentDecision::Refused { .. } => Gate::Ask,
    }
}

fn expired_reason() -> String {
    format!(
        "the endpoint did not consent: its answer to OPTIONS had no WebHook-Allowed-Origin and it \
         did not grant through the callback within {} minutes",
        CALLBACK_VALIDITY.num_minutes()
    )
}

/// The status the API shows, and the reason of a refusal.
pub fn status(
    required: bool,
    url: &Url,
    state: Option<&ConsentState>,
    now: DateTime<Utc>,
) -> (ConsentStatus, Option<String>) {
    if !required {
        return (ConsentStatus::NotRequired, None);
    }
    let Some(state) = current(url, state) else { return (ConsentStatus::Pending, None) };
    match &state.decision {
        ConsentDecision::Granted { .. } => (ConsentStatus::Granted, None),
        ConsentDecision::Pending { expires_at } if now < *expires_at => (ConsentStatus::Pending, None),
        ConsentDecision::Pending { .. } => (ConsentStatus::Refused, Some(expired_reason())),
        ConsentDecision::Refused { reason } => (ConsentStatus::Refused, Some(reason.clone())),
    }
}

/// Parses `WebHook-Allowed-Rate`: requests per minute (a positive whole number), or `*` for
/// no limit (`None`).
pub fn parse_allowed_rate(text: &str) -> Result<Option<u32>, String> {
    let text = text.trim();
    if text == "*" {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(format!("`{text}` is not a positive number of requests per minute or `*`")),
    }
}

/// What an answer to the handshake's `OPTIONS` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Granted {
        per_minute: Option<u32>,
    },
    /// No consent in the answer, but the endpoint may still grant through the callback.
    NoConsentYet {
        status: u16,
    },
    Refused {
        reason: String,
    },
}

/// Reads an answer to the handshake. Only `WebHook-Allowed-Origin` naming `origin` (or `*`)
/// is consent; a status code alone never is. A `405` says the endpoint does not take part in
/// the handshake at all, and any other status but a success is a refusal.
pub fn read_answer(
    origin: &str,
    status: u16,
    allowed_origin: Option<&str>,
    allowed_rate: Option<&str>,
) -> Answer {
    if (200..300).contains(&status) {
        match allowed_origin.map(str::trim) {
            Some(allowed) if allowed == "*" || allowed.eq_ignore_ascii_case(origin) => {
                match allowed_rate.map(parse_allowed_rate).transpose() {
                    Ok(rate) => Answer::Granted { per_minute: rate.flatten() },
                    Err(error) => Answer::Refused {
                        reason: format!("the endpoint's WebHook-Allowed-Rate is not valid: {error}"),
                    },
                }
            }
            Some(other) => Answer::Refused {
                reason: format!("the endpoint consented to another origin (`{other}`), not `{origin}`"),
            },
            None => Answer::NoConsentYet { status },
        }
    } else if status == 405 {
        Answer::Refused {
            reason: "the endpoint did not consent: it answered OPTIONS with 405 Method Not Allowed \
                     (it does not take part in the CloudEvents webhook handshake)"
                .to_owned(),
        }
    } else {
        Answer::Refused { reason: format!("the endpoint did not consent: it answered OPTIONS with {status}") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        text.parse().expect("url")
    }

    #[test]
    fn only_the_allowed_origin_header_is_consent() {
        let origin = "herald.example.com";
        assert_eq!(read_answer(origin, 200, Some("*"), None), Answer::Granted { per_minute: None });
        assert_eq!(
            read_answer(origin, 204, Some("HERALD.example.com"), Some("120")),
            Answer::Granted { per_minute: Some(120) }
        );
        assert_eq!(read_answer(origin, 200, None, Some("120")), Answer::NoConsentYet { status: 200 });
        assert!(matches!(read_answer(origin, 200, Some("other.example"), None), Answer::Refused { .. }));
        assert!(
            matches!(read_answer(origin, 405, Some("*"), None), Answer::Refused { reason } if reason.contains("405"))
        );
        assert!(matches!(read_answer(origin, 500, None, None), Answer::Refused { .. }));
        assert!(matches!(read_answer(origin, 200, Some("*"), Some("0")), Answer::Refused { .. }));
    }

    #[test]
    fn allowed_rates_are_positive_numbers_or_a_star() {
        assert_eq!(parse_allowed_rate("*"), Ok(None));
        assert_eq!(parse_allowed_rate(" 60 "), Ok(Some(60)));
        assert!(parse_allowed_rate("0").is_err());
        assert!(parse_allowed_rate("fast").is_err());
    }

    #[test]
    fn a_decision_holds_for_its_origin_only_and_refusals_are_asked_again_later() {
        let now = Utc::now();
        let hook = url("https://hooks.example.com/a");
        let granted = ConsentState {
            origin: url_origin(&hook),
            decision: ConsentDecision::Granted { per_minute: Some(30) },
            decided_at: now,
        };
        assert_eq!(gate(false, &hook, None, now), Gate::Deliver { per_minute: None });
        assert_eq!(gate(true, &hook, None, now), Gate::Ask);
        assert_eq!(gate(true, &hook, Some(&granted), now), Gate::Deliver { per_minute: Some(30) });
        assert_eq!(
            gate(true, &url("https://hooks.example.com/b"), Some(&granted), now),
            Gate::Deliver { per_minute: Some(30) }
        );
        assert_eq!(gate(true, &url("https://elsewhere.example.com/a"), Some(&granted), now), Gate::Ask);

        let pending = ConsentState {
            origin: url_origin(&hook),
            decision: ConsentDecision::Pending { expires_at: now + CALLBACK_VALIDITY },
            decided_at: now,
        };
        assert_eq!(gate(true, &hook, Some(&pending), now), Gate::Wait { until: now + PENDING_RECHECK });
        let expired = now + CALLBACK_VALIDITY;
        assert!(matches!(gate(true, &hook, Some(&pending), expired), Gate::Refuse { .. }));
        assert_eq!(status(true, &hook, Some(&pending), expired).0, ConsentStatus::Refused);
        assert_eq!(gate(true, &hook, Some(&pending), expired + REFUSAL_RECHECK), Gate::Ask);

        let refused = ConsentState {
            origin: url_origin(&hook),
            decision: ConsentDecision::Refused { reason: "405".to_owned() },
            decided_at: now,
        };
        assert_eq!(gate(true, &hook, Some(&refused), now), Gate::Refuse { reason: "405".to_owned() });
        assert_eq!(gate(true, &hook, Some(&refused), now + REFUSAL_RECHECK), Gate::Ask);
    }
}
