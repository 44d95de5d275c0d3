//! Signing in and proving it again: the password step, the second step
//! against a login token, and re-authentication for sensitive changes.

pub mod login;
pub(crate) mod machine;
pub(crate) mod ports;
pub mod reauth;
pub(crate) mod service;
