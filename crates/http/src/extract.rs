//! Request extractors shared by the API and the pages: JSON bodies in the
//! contract's error shape, the caller's context, and sessions.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, Method, header, request::Parts};
use serde::de::DeserializeOwned;
use twostep_domain::audit::RequestContext;
use twostep_domain::sessions::SignedIn;
use twostep_domain::sessions::store::SessionKind;
use twostep_domain::token::Token;

use crate::AppState;
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::{cookies, csrf};

/// A JSON body. Not JSON → 415; malformed, missing or mistyped fields →
/// 400 `invalid_request` (never axum's plain-text 422). An empty body reads
/// as `{}` so `POST /me/totp` works with or without one.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = is_json(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(|_| ApiError::PayloadTooLarge)?;
        json_body(is_json, &bytes).map(ApiJson)
    }
}

/// Whether the request says its body is JSON (`application/json` or `+json`).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()).is_some_and(|m| {
        let m = m.trim().to_ascii_lowercase();
        m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
    })
}

/// A body read as `ApiJson` reads one; for bodies already in hand (a signed
/// device request checks its bytes first).
pub fn json_body<T: DeserializeOwned>(is_json: bool, bytes: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    if body != b"{}" && !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidRequest(format!("invalid JSON body: {e}")))
}

/// Who is asking: address, user agent, request id.
pub struct Ctx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(request_context(parts)))
    }
}

/// The caller's context. The address is the one `client_ip::resolve`
/// decided (trusted proxies, SEC-60); the socket's if that layer did not run.
pub fn request_context(parts: &Parts) -> RequestContext {
    let ip = match parts.extensions.get::<ClientIp>() {
        Some(ip) => ip.text(),
        None => parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_canonical().to_string()),
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    RequestContext { ip, user_agent: header("user-agent"), request_id: header("x-request-id") }
}

/// The bearer token of an `Authorization` header. Tokens in query strings
/// are never read (SEC-49).
pub fn bearer(headers: &HeaderMap) -> Option<Token> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| Token::presented(token.trim()))
}

/// An API caller's session, by bearer token or by the web cookie. A cookie
/// caller changing state must send `X-CSRF-Token` (§2.11), and a cookie
/// caller's reads must come from our own origin.
pub struct ApiSession(pub SignedIn);

/// A session that may also be an `enrollment` one (policy requires 2FA the
/// account lacks): only the profile, re-auth, factor set-up and leaving an
/// organisation (with the list to leave from) take it.
pub struct SetupSession(pub SignedIn);

/// A session from a bearer token or cookie, used from an address its
/// account's IP allow-list admits (SEC-61).
async fn any_session(parts: &Parts, state: &AppState) -> Result<SignedIn, ApiError> {
    let ctx = request_context(parts);
    if let Some(token) = bearer(&parts.headers) {
        return Ok(state.twostep.authenticate_from(&token, &ctx).await?);
    }
    let token = cookies::get(&parts.headers, state.web.session_cookie()).ok_or(ApiError::Unauthenticated)?;
    let signed_in = state.twostep.authenticate_from(&Token::presented(&token), &ctx).await?;
    if matches!(parts.method, Method::GET | Method::HEAD) {
        // Some reads have effects (revealing recovery codes is audited and
        // mailed): a cross-site page must not set them off with the
        // cookie, by a link or an image (SEC-55). The pages' own fetches are
        // same-origin.
        if !csrf::origin_ok(state, &parts.headers) {
            return Err(ApiError::Csrf);
        }
    } else {
        let given = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !csrf::session_token_ok(state, &signed_in, given) || !csrf::origin_ok(state, &parts.headers) {
            return Err(ApiError::Csrf);
        }
    }
    Ok(signed_in)
}

impl FromRequestParts<AppState> for ApiSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let signed_in = any_session(parts, state).await?;
        if signed_in.session.kind == SessionKind::Enrollment {
            return Err(ApiError::EnrollmentRequired);
        }
        Ok(Self(signed_in))
    }
}

impl FromRequestParts<AppState> for SetupSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(any_session(parts, state).await?))
    }
}

/// The sign-in's approximate place, from the operator's `push.place_header`;
/// shown on companion devices. Believed only when the request came through
/// a trusted proxy (which sets it and drops whatever the client sent).
pub struct Place(pub Option<String>);

impl FromRequestParts<AppState> for Place {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(place(s, parts)))
    }
}

fn place(s: &AppState, parts: &Parts) -> Option<String> {
    let name = s.web.place_header.as_deref()?;
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    if !s.web.trusted_proxies.iter().any(|r| r.contains(peer)) {
        return None;
    }
    parts.headers.get(name)?.to_str().ok().map(str::to_owned)
}
