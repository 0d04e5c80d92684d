//! What the bench's receiver does wrong on purpose (`--fail-first`, `--hang-first`), and the
//! check that an ordered run delivered every ordering key in order. Pure: no I/O, no clock.
//!
//! Faults hit only a message's first attempt, so every message is delivered in the end. Which
//! messages they hit is a hash of the sequence number (not a period, which would line up
//! with the ordering keys, `seq mod keys`, and pile every hang onto one key), so two runs of
//! the same command meet the same faults.

use std::collections::HashMap;
use std::time::Duration;

/// How long the receiver holds a hung request before answering: past the request timeout
/// the bench gives a Herald it starts ([`SPAWNED_SETTINGS`]), so Herald gives up first.
pub const HANG: Duration = Duration::from_secs(2);

/// Settings for a Herald the bench starts when faults are asked for: attempts time out
/// before a hung request is answered, failed attempts are retried soon (not after the
/// production schedule's 5 s, 5 min, …), a killed node's leases expire within seconds, and
/// the circuit breaker stays closed (a receiver failing a third of first attempts meets five
/// failures in a row now and then, and the breaker's back-off, up to 5 minutes, would measure
/// the breaker instead of the lanes).
pub const SPAWNED_SETTINGS: [(&str, &str); 4] = [
    ("HERALD_REQUEST_TIMEOUT", "1s"),
    ("HERALD_RETRY_SCHEDULE", "200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms"),
    ("HERALD_LEASE_DURATION", "4s"),
    ("HERALD_CIRCUIT_BREAKER_FAILURES", "0"),
];

/// The faults of one run: the fractions of messages whose first attempt fails or hangs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    pub fail_first: f64,
    pub hang_first: f64,
}

/// How the receiver answers a message's first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstAttempt {
    Answer,
    /// 500 at once.
    Fail,
    /// Held for [`HANG`], past Herald's timeout, then 200 to nobody.
    Hang,
}

impl Faults {
    pub fn any(&self) -> bool {
        self.fail_first > 0.0 || self.hang_first > 0.0
    }

    /// How the first attempt of message `seq` is answered. Hangs and failures never pick the
    /// same message.
    pub fn first_attempt(&self, seq: u64) -> FirstAttempt {
        let draw = unit(seq);
        if draw < self.hang_first {
            FirstAttempt::Hang
        } else if draw < self.hang_first + self.fail_first {
            FirstAttempt::Fail
        } else {
            FirstAttempt::Answer
        }
    }
}

/// A number in [0, 1) drawn from `seq` alone (SplitMix64's finalizer).
fn unit(seq: u64) -> f64 {
    let mut z = seq.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// One successful delivery of an ordered run, in the order it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub seq: u64,
    /// Bench time just before the message was posted, nanoseconds.
    pub sent: u64,
}

/// Counts deliveries that arrived too early: an arrival is too early when a message of the
/// same ordering key that arrived after it had already been accepted (answered 202,
/// `accepted[seq]`) before it was even sent. Messages posted concurrently have no order to
/// keep; these pairs do, whatever the senders' interleaving. `arrivals` are one endpoint's, in
/// arrival order; `key` names a sequence number's ordering key.
pub fn order_violations(arrivals: &[Arrival], accepted: &HashMap<u64, u64>, key: impl Fn(u64) -> u64) -> u64 {
    let mut by_key: HashMap<u64, Vec<Arrival>> = HashMap::new();
    for arrival in arrivals {
        by_key.entry(key(arrival.seq)).or_default().push(*arrival);
    }
    let mut violations = 0;
    for lane in by_key.values() {
        // Scanning from the last arrival back: the earliest acceptance among those after.
        let mut earliest_later_acceptance = u64::MAX;
        for arrival in lane.iter().rev() {
            if earliest_later_acceptance < arrival.sent {
                violations += 1;
            }
            if let Some(at) = accepted.get(&arrival.seq) {
                earliest_later_acceptance = earliest_later_acceptance.min(*at);
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_hit_about_their_fraction_of_every_key_and_never_overlap() {
        let faults = Faults { fail_first: 1.0 / 3.0, hang_first: 0.01 };
        let answers: Vec<FirstAttempt> = (0..20_000).map(|seq| faults.first_attempt(seq)).collect();
        let count = |kind, key: u64| {
            answers.iter().enumerate().filter(|(seq, a)| **a == kind && *seq as u64 % 20 == key).count()
        };
        for key in 0..20 {
            assert!((290..=380).contains(&count(FirstAttempt::Fail, key)), "key {key}");
            assert!((1..=25).contains(&count(FirstAttempt::Hang, key)), "key {key}");
        }
        assert_eq!(faults.first_attempt(12_345), faults.first_attempt(12_345), "the same each run");
        assert_eq!(Faults::default().first_attempt(7), FirstAttempt::Answer);
        assert!(!Faults::default().any());
    }

    #[test]
    fn only_arrivals_before_a_message_accepted_before_they_were_sent_are_violations() {
        let arrival = |seq, sent| Arrival { seq, sent };
        // Keys by parity; message n sent at 10·n and accepted at 10·n + 5.
        let accepted: HashMap<u64, u64> = (0..10).map(|n| (n, 10 * n + 5)).collect();
        let in_order = [arrival(0, 0), arrival(1, 10), arrival(2, 20), arrival(3, 30)];
        assert_eq!(order_violations(&in_order, &accepted, |seq| seq % 2), 0);
        // 4 overtakes 2 in key 0: 2 was accepted (25) before 4 was sent (40).
        let overtaken = [arrival(0, 0), arrival(4, 40), arrival(2, 20)];
        assert_eq!(order_violations(&overtaken, &accepted, |seq| seq % 2), 1);
        // Sent while the other was still being accepted: no order to keep.
        let concurrent: HashMap<u64, u64> = [(0, 50), (2, 60)].into();
        assert_eq!(order_violations(&[arrival(2, 20), arrival(0, 0)], &concurrent, |seq| seq % 2), 0);
    }
}
