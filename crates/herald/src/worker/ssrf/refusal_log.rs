//! Tells the operator, in the server log, that the SSRF guard refused a delivery: once per
//! endpoint and address, again only after [`REPEAT_AFTER`], from a map of bounded size.
//!
//! Without it a refused delivery is visible only in the attempt record, so an operator who
//! forgot `allowed_cidrs` for an internal receiver sees nothing at the default log level. It
//! logs ids and the address, never the URL (which may carry credentials or tokens in its path).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use herald_core::model::Endpoint;

use super::Refused;

/// How long one endpoint and address stay quiet after their refusal was logged.
pub const REPEAT_AFTER: Duration = Duration::from_secs(3600);
/// Most endpoint-and-address pairs remembered; past it the oldest is forgotten (and may be
/// logged again), so a flood of refusals costs bounded memory.
const MAX_REMEMBERED: usize = 1024;

/// The pairs whose refusal was logged recently, and when.
#[derive(Debug, Default)]
pub struct RefusalLog {
    /// (endpoint id, refused address) -> when it was last logged.
    logged: Mutex<HashMap<(String, IpAddr), Instant>>,
}

impl RefusalLog {
    /// Logs `refused` for `endpoint` unless this pair was logged within [`REPEAT_AFTER`].
    pub fn note(&self, endpoint: &Endpoint, refused: &Refused) {
        if self.should_log(endpoint.id.as_str(), refused.address(), Instant::now()) {
            tracing::warn!(
                app_id = %endpoint.app_id,
                endpoint_id = %endpoint.id,
                address = %refused.address(),
                "delivery refused by the SSRF guard: {refused} (logged once an hour per endpoint and address)"
            );
        }
    }

    /// Whether a refusal of `address` for `endpoint` at `now` is to be logged; remembers it.
    fn should_log(&self, endpoint: &str, address: IpAddr, now: Instant) -> bool {
        // A poisoned lock only means another attempt panicked while holding it; the map is
        // still a valid map.
        let mut logged = self.logged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (endpoint.to_owned(), address);
        if logged.get(&key).is_some_and(|at| now.duration_since(*at) < REPEAT_AFTER) {
            return false;
        }
        if logged.len() >= MAX_REMEMBERED && !logged.contains_key(&key) {
            logged.retain(|_, at| now.duration_since(*at) < REPEAT_AFTER);
            if logged.len() >= MAX_REMEMBERED
                && let Some(oldest) = logged.iter().min_by_key(|(_, at)| **at).map(|(key, _)| key.clone())
            {
                logged.remove(&oldest);
            }
        }
        logged.insert(key, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_logged_once_per_interval_and_memory_stays_bounded() {
        let log = RefusalLog::default();
        let start = Instant::now();
        let address: IpAddr = "10.0.0.1".parse().expect("ip");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        assert!(log.should_log("ep_a", address, start));
        assert!(!log.should_log("ep_a", address, start + Duration::from_secs(60)));
        assert!(log.should_log("ep_a", other, start), "another address");
        assert!(log.should_log("ep_b", address, start), "another endpoint");
        assert!(log.should_log("ep_a", address, start + REPEAT_AFTER), "again after the interval");

        for i in 0..(3 * MAX_REMEMBERED) {
            log.should_log(&format!("ep_{i}"), address, start);
        }
        let remembered = log.logged.lock().expect("lock").len();
        assert!(remembered <= MAX_REMEMBERED, "{remembered}");
    }
}
