//! Black-box tests: the real server over HTTP, on SQLite and PostgreSQL.

mod helpers;

mod accounts;
mod binary;
mod hardening;
mod interop;
mod recovery;
mod sessions;
mod totp;
