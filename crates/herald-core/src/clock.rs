//! Time, as the rest of Herald reads it: the system clock in production, a clock the test
//! moves by hand in tests, so retry timing is tested without sleeping.

use std::sync::Mutex;

use chrono::{DateTime, SubsecRound, Utc};

/// A source of the current time, at microsecond precision (what stores keep).
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// The system clock's time now, for what has no [`Clock`] to ask (ids, names, log records).
/// Everything that decides *when* something happens takes a `Clock` instead, so tests can move it.
pub fn system_now() -> DateTime<Utc> {
    SystemClock.now()
}

/// The system clock as a `SystemTime`, for measuring spans of wall time (trace spans).
pub fn system_time() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// A clock that stands still until it is moved: for tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock stopped at the current system time.
    pub fn starting_now() -> Self {
        Self { now: Mutex::new(SystemClock.now()) }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
