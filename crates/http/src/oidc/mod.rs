//! The OpenID Connect provider's endpoints (issue 17): discovery, JWKS,
//! the authorization endpoint with its consent page, the token endpoint,
//! userinfo, revocation, introspection and RP-initiated logout.
//!
//! Paths live under `/oidc/` and `/.well-known/`; errors take the specs'
//! shape (`{"error","error_description"}`), not the API's, because relying
//! party libraries read that one.

mod apps;
mod authorize;
mod endpoints;
mod pages;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::cors::{Any, CorsLayer};
use twostep_domain::oidc::OidcError;

use crate::{AppState, cookies};

pub const AUTHORIZE_PATH: &str = "/oidc/authorize";

pub fn routes() -> Router<AppState> {
    // What an app running only in a browser (a public client with PKCE)
    // calls from its own origin. None of these reads a cookie, so any
    // origin may call them; credentials are never allowed.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(3600));
    let for_browser_apps = Router::new()
        .route("/.well-known/openid-configuration", get(endpoints::discovery))
        .route("/oidc/jwks", get(endpoints::jwks))
        .route("/oidc/token", post(endpoints::token))
        .route("/oidc/userinfo", get(endpoints::userinfo).post(endpoints::userinfo_post))
        .route("/oidc/revoke", post(endpoints::revoke))
        .layer(cors);
    Router::new()
        .merge(for_browser_apps)
        .route(AUTHORIZE_PATH, get(authorize::authorize))
        .route("/oidc/consent", post(authorize::consent))
        .route("/oidc/introspect", post(endpoints::introspect))
        .route("/oidc/logout", get(authorize::logout).post(authorize::logout_post))
        .route("/security/apps", get(apps::page))
        .route("/security/apps/{id}/revoke", post(apps::revoke))
        .route("/admin/oidc", get(apps::admin_page))
}

/// The cookie holding the authorization request while the person signs in.
fn return_cookie(s: &AppState) -> &'static str {
    if s.web.secure_cookies { "__Host-twostep_oidc" } else { "twostep_oidc" }
}

/// A sign-in that began at the authorization endpoint goes back there;
/// `None` when it did not. Only our own authorize path is ever returned.
pub fn pending_return(s: &AppState, h: &HeaderMap) -> Option<String> {
    let raw = cookies::get(h, return_cookie(s))?;
    let bytes = data_encoding::BASE64URL_NOPAD.decode(raw.as_bytes()).ok()?;
    let path = String::from_utf8(bytes).ok()?;
    let rest = path.strip_prefix(AUTHORIZE_PATH)?.strip_prefix('?')?;
    // Re-encoded from the parsed pairs, so nothing but a query follows.
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(rest).ok()?;
    Some(format!("{AUTHORIZE_PATH}?{}", serde_urlencoded::to_string(pairs).ok()?))
}

/// A JSON error as RFC 6749 §5.2 shapes it; never cached.
fn json_error(status: StatusCode, e: &OidcError) -> Response {
    if e.is_internal() {
        tracing::error!(error = %e, "oidc request failed");
    }
    let body = serde_json::json!({ "error": e.code(), "error_description": e.description() });
    no_store((status, axum::Json(body)).into_response())
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// The status the token-style endpoints answer a refusal with.
fn status_of(e: &OidcError) -> StatusCode {
    match e {
        OidcError::InvalidClient | OidcError::InvalidToken => StatusCode::UNAUTHORIZED,
        e if e.is_internal() => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}
