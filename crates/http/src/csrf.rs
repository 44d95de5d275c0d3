//! CSRF defence for cookie-authenticated requests (§2.11, SEC-55).
//!
//! Signed-in forms carry HMAC(csrf key, session id hash): derivable, so
//! nothing extra is stored, and bound to the session, so a token from
//! another session fails. Forms shown before sign-in carry HMAC of a random
//! pre-session cookie (a signed double submit). Either way the `Origin`
//! header, when the browser sends one, must be our own.

use axum::http::{HeaderMap, header};
use data_encoding::BASE64URL_NOPAD;
use twostep_domain::crypto::HashPurpose;
use twostep_domain::sessions::SignedIn;

use crate::AppState;

pub fn session_token(state: &AppState, me: &SignedIn) -> String {
    let mac = state.twostep.keys().keyed_hash(HashPurpose::Csrf, &[b"session", me.session.id.as_str().as_bytes()]);
    BASE64URL_NOPAD.encode(&mac)
}

/// Checked under every key held, so a form shown before a key rotation
/// reached this instance still posts.
pub fn session_token_ok(state: &AppState, me: &SignedIn, given: &str) -> bool {
    token_ok(state, &[b"session", me.session.id.as_str().as_bytes()], given)
}

fn token_ok(state: &AppState, parts: &[&[u8]], given: &str) -> bool {
    let Ok(given) = BASE64URL_NOPAD.decode(given.as_bytes()) else { return false };
    state.twostep.keys().verify_keyed_hash(HashPurpose::Csrf, parts, &given)
}

pub fn presession_token(state: &AppState, cookie: &str) -> String {
    let mac = state.twostep.keys().keyed_hash(HashPurpose::Csrf, &[b"pre-session", cookie.as_bytes()]);
    BASE64URL_NOPAD.encode(&mac)
}

pub fn presession_token_ok(state: &AppState, cookie: Option<&str>, given: &str) -> bool {
    cookie.is_some_and(|c| token_ok(state, &[b"pre-session", c.as_bytes()], given))
}

/// A present `Origin` must be ours. Browsers send `Origin: null` on form
/// posts under our `Referrer-Policy: no-referrer`, so `null` (like a
/// missing header) falls back to `Sec-Fetch-Site`, when sent, which must not
/// say cross-site. The token is checked in every case.
pub fn origin_ok(state: &AppState, headers: &HeaderMap) -> bool {
    let get = |name| headers.get(name).and_then(|v: &axum::http::HeaderValue| v.to_str().ok());
    match get(header::ORIGIN) {
        Some(o) if o != "null" => o == state.web.public_origin || state.web.localhost_origin.as_deref() == Some(o),
        _ => matches!(get(header::HeaderName::from_static("sec-fetch-site")), None | Some("same-origin" | "none")),
    }
}
