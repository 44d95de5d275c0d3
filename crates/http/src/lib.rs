//! twostep's HTTP face: the JSON API (`api`), the server-rendered pages
//! (`web`) and the OpenAPI document, on one axum router.
//!
//! Handlers are thin: extract, call one domain service, map the result.
//! Every response carries the security headers of `security.md` §2.11 and a
//! request id; request bodies are size-limited and requests time out.

pub mod api;
pub mod authz;
pub mod client_ip;
pub mod cookies;
pub mod csrf;
pub mod error;
pub mod extract;
mod headers;
pub mod oidc;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use twostep_domain::service::Twostep;

/// How the server is reached from outside, which decides cookie names and
/// flags and the origin CSRF checks compare against.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Scheme, host and port, without a trailing slash.
    pub public_origin: String,
    /// For a loopback public origin, the same as `http://localhost:PORT`:
    /// the name security keys need, so pages are used there too.
    pub localhost_origin: Option<String>,
    /// `Secure` cookies with the `__Host-` prefix; off only for plain http on loopback.
    pub secure_cookies: bool,
    /// Enables development-only pages.
    pub dev_mode: bool,
    /// Peers whose `X-Forwarded-For` is believed (SEC-60); empty: none.
    pub trusted_proxies: Vec<twostep_domain::policy::allowlist::IpRange>,
    /// The VAPID public key companion pages subscribe to Web Push with;
    /// `None` when Web Push is off.
    pub vapid_public_key: Option<String>,
    /// A header a trusted proxy sets to the client's approximate place
    /// (`CF-IPCountry`, a GeoIP module's city); shown with push requests.
    pub place_header: Option<String>,
}

impl WebConfig {
    pub fn session_cookie(&self) -> &'static str {
        if self.secure_cookies { "__Host-twostep_session" } else { "twostep_session" }
    }

    pub fn presession_cookie(&self) -> &'static str {
        if self.secure_cookies { "__Host-twostep_csrf" } else { "twostep_csrf" }
    }

    pub fn remember_cookie(&self) -> &'static str {
        if self.secure_cookies { "__Host-twostep_device" } else { "twostep_device" }
    }

    pub fn login_cookie(&self) -> &'static str {
        if self.secure_cookies { "__Host-twostep_login" } else { "twostep_login" }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub twostep: Arc<Twostep>,
    pub web: Arc<WebConfig>,
    /// The OpenID Connect provider (issue 17).
    pub oidc: Arc<twostep_domain::oidc::Oidc>,
}

const MAX_BODY_BYTES: usize = 64 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let hsts = state.web.public_origin.starts_with("https://");
    let proxies = Arc::new(state.web.trusted_proxies.clone());
    Router::new().merge(api::routes()).merge(authz::routes()).merge(web::routes()).merge(oidc::routes()).with_state(state).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(
                // Method and path only: no bodies, no credentials headers (§2.13).
                TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                }),
            )
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(axum::middleware::from_fn(move |req, next| client_ip::resolve(Arc::clone(&proxies), req, next)))
            .layer(axum::middleware::from_fn(move |req, next| headers::security_headers(hsts, req, next)))
            .layer(axum::middleware::from_fn(web::error_pages::error_pages))
            .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
    )
}
