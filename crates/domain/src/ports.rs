//! The domain's view of the outside world beyond storage: time and
//! randomness. Each area's storage trait lives beside its service (`store.rs`).
//!
//! Domain code never reads the system clock or the OS random source itself;
//! it asks these ports, so tests can move time forward exactly and the
//! wiring in `startup.rs` is the one place the real ones are chosen.

use crate::time::Timestamp;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// A cryptographically secure random source.
pub trait Rng: Send + Sync {
    fn fill(&self, buf: &mut [u8]);
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(clippy::disallowed_methods, reason = "the one adapter allowed to read the wall clock")]
    fn now(&self) -> Timestamp {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp::from_secs(i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
    }
}

/// The operating system's CSPRNG.
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&self, buf: &mut [u8]) {
        use rand::RngCore;
        rand::rngs::OsRng.fill_bytes(buf);
    }
}
