//! Black-box tests: the real server over HTTP, on SQLite and PostgreSQL.

mod burst;
mod helpers;
mod mail;
mod receiver;

mod accounts;
mod admin;
mod allowlist;
mod binary;
mod codes;
mod credentials;
mod delivery;
mod hardening;
mod interop;
mod invitations;
mod limits;
mod mandate;
mod notices;
mod ops;
mod orgs;
mod phone;
mod push;
mod recovery;
mod sessions;
mod signup_limits;
mod throttle;
mod timing;
mod totp;
mod web;
mod web_safety;
