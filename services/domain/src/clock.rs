//! The clock of the auth rules that compare times (challenge and machine-key expiry, rotation
//! overlap). It reads the system time; in-process code may move it forward, which is how the
//! black-box tests step past an expiry without sleeping. No route, variable or file reaches
//! the offset, and nothing in the product calls [`Clock::advance`].

use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Debug, Default)]
pub struct Clock {
    offset_secs: AtomicI64,
}

impl Clock {
    /// The system clock (offset zero).
    pub fn system() -> Clock {
        Clock::default()
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::seconds(self.offset_secs.load(Ordering::Relaxed))
    }

    /// Moves this clock `secs` seconds forward (tests only).
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn advances() {
        let c = Clock::system();
        let a = c.now();
        c.advance(301);
        assert!(c.now() - a >= Duration::seconds(301));
    }
}
