//! twostep's domain: accounts, sessions, sign-in and second factors.
//!
//! Pure logic behind narrow ports (`ports`): no HTTP, no SQL, no wall clock,
//! no OS randomness. The HTTP and storage crates depend on this one, never the
//! other way round, so the rules that make the product secure live in one
//! place and are tested without a server.

pub mod abuse;
pub mod accounts;
pub mod audit;
pub mod crypto;
pub mod error;
pub mod factors;
pub mod ids;
pub mod meters;
pub mod notify;
pub mod oidc;
pub mod policy;
pub mod ports;
pub mod rotation;
pub mod service;
pub mod sessions;
pub mod settings;
pub mod signin;
pub mod storage;
#[cfg(test)]
pub(crate) mod testing;
pub mod time;
pub mod token;
