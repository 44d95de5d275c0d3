//! A clock that moves only when a test says so.

use std::sync::atomic::{AtomicI64, Ordering};

use twostep_domain::ports::Clock;
use twostep_domain::time::Timestamp;

/// Implements the domain's `Clock` port; shared behind an `Arc` between a
/// test and the code under test, so the test can move time forward.
#[derive(Debug)]
pub struct FakeClock(AtomicI64);

impl FakeClock {
    /// Fixed at `secs` (Unix time) until advanced.
    pub fn at(secs: i64) -> Self {
        Self(AtomicI64::new(secs))
    }

    /// Starting at the real time, so codes from external TOTP tools agree.
    pub fn starting_now() -> Self {
        Self::at(real_now())
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn secs(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_secs(self.secs())
    }
}

/// The real Unix time in seconds: for a fake clock's start, settings dated
/// relative to it, and servers spawned as separate processes (which run on
/// the real clock).
#[expect(
    clippy::disallowed_methods,
    reason = "tests start the fake clock at the real time and read it for separate server processes"
)]
pub fn real_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .try_into()
        .expect("fits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_only_when_advanced() {
        let clock = FakeClock::at(1_000);
        assert_eq!(clock.now(), Timestamp::from_secs(1_000));
        assert_eq!(clock.now(), Timestamp::from_secs(1_000));
        clock.advance(30);
        assert_eq!(clock.secs(), 1_030);
        assert_eq!(clock.now(), Timestamp::from_secs(1_030));
    }

    #[test]
    fn starting_now_is_the_real_time() {
        let before = real_now();
        let clock = FakeClock::starting_now();
        assert!((before..=real_now()).contains(&clock.secs()));
    }
}
