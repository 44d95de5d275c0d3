//! Black-box tests: the real server over HTTP, on SQLite and PostgreSQL.
//!
//! The scaffolding (`TestApp`, the receivers, the SMTP sink, the
//! per-backend macros) is the shared test kit, `crates/testkit`.

mod burst;

mod accounts;
mod admin;
mod allowlist;
mod binary;
mod codes;
mod crash;
mod credentials;
mod delivery;
mod forward_auth;
mod forward_auth_proxy;
mod hardening;
mod interop;
mod invitations;
mod key_rotation;
mod limits;
mod mandate;
mod notices;
mod oidc;
mod oidc_burst;
mod oidc_clients;
mod oidc_interop;
mod ops;
mod ops_handoff;
mod ops_metrics;
mod orgs;
mod phone;
mod push;
mod recovery;
mod security_log;
mod session_cache;
mod sessions;
mod signup_limits;
mod throttle;
mod timing;
mod totp;
mod web;
mod web_safety;
mod webauthn;
mod webauthn_pages;
