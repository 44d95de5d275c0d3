//! twostep's domain: accounts, sessions, sign-in and second factors.
//!
//! Pure logic behind narrow ports (`ports`): no HTTP, no SQL, no wall clock,
//! no OS randomness. The HTTP and storage crates depend on this one, never the
//! other way round, so the rules that make the product secure live in one
//! place and are tested without a server.

pub mod access;
pub mod accounts;
pub mod admin;
pub mod allowlist;
pub mod audit;
pub mod credentials;
pub mod crypto;
pub mod device;
pub mod email;
pub mod email_verification;
pub mod error;
pub mod factors;
pub mod forward_auth;
pub mod ids;
pub mod login;
pub mod notice;
pub mod oob;
pub mod orgs;
pub mod outbox;
pub mod password;
pub mod phone;
pub mod phone_factor;
pub mod policy;
pub mod ports;
pub mod push;
pub mod reauth;
pub mod recovery;
pub mod remember;
pub mod service;
pub mod sessions;
pub mod settings;
pub mod throttle;
pub mod time;
pub mod token;
pub mod totp;
