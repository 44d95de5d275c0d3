//! Black-box tests: the real server over HTTP, on SQLite and PostgreSQL.

mod helpers;
mod mail;

mod accounts;
mod binary;
mod credentials;
mod hardening;
mod interop;
mod notices;
mod recovery;
mod sessions;
mod throttle;
mod totp;
mod web;
