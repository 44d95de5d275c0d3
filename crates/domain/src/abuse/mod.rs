//! Abuse resistance: the throttles that bound guessing (§2.5) and the
//! description of a sign-in's client used to spot a new device.

pub mod device;
mod guard;
pub mod store;
pub mod throttle;
pub(crate) mod throttles;
