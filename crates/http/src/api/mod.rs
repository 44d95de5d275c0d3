//! The JSON API of `shared/design/api.md`, and its OpenAPI document.

mod admin;
mod allowlist;
mod codes;
mod login;
mod me;
mod openapi;
mod orgs;
pub(crate) mod push;
mod security;
mod security_log;
mod totp;
mod webauthn;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post, put};
use serde::Serialize;

use crate::AppState;
use crate::error::ErrorBody;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/v1/accounts", post(login::sign_up))
        .route("/api/v1/login", post(login::login))
        .route("/api/v1/login/challenge", post(codes::login_challenge))
        .route("/api/v1/login/challenge/{id}", get(push::status))
        .route("/api/v1/login/verify", post(login::verify))
        .route("/api/v1/login/passkey", post(webauthn::start_passkey))
        .route("/api/v1/login/passkey/{challenge_id}", post(webauthn::finish_passkey))
        .route("/api/v1/logout", post(login::logout))
        .route("/api/v1/me", get(me::me))
        .route("/api/v1/me/reauth", post(me::reauth))
        .route("/api/v1/me/reauth/challenge", post(codes::reauth_challenge))
        .route("/api/v1/me/phone", get(codes::show_phone).post(codes::start_phone).delete(codes::remove_phone))
        .route("/api/v1/me/phone/confirm", post(codes::confirm_phone))
        .route("/api/v1/me/email/verification", post(codes::send_email_verification))
        .route("/api/v1/me/email/confirm", post(codes::confirm_email))
        .route("/api/v1/me/totp", post(totp::start))
        .route("/api/v1/me/totp/confirm", post(totp::confirm))
        .route("/api/v1/me/totp/{enrollment_id}/qr.png", get(totp::qr_png))
        .route("/api/v1/me/authenticators", get(totp::list))
        .route("/api/v1/me/authenticators/{id}", delete(totp::remove).patch(webauthn::rename))
        .route("/api/v1/me/webauthn/registrations", post(webauthn::start))
        .route("/api/v1/me/webauthn/registrations/{registration_id}", post(webauthn::finish))
        .route("/api/v1/me/recovery-codes", get(me::reveal_codes).post(me::regenerate_codes))
        .route("/api/v1/me/two-factor", delete(me::disable_two_factor))
        .route("/api/v1/me/preferred-method", put(me::set_preferred_method))
        .route("/api/v1/password/forgot", post(security::forgot))
        .route("/api/v1/password/reset", post(security::reset))
        .route("/api/v1/me/password", post(security::change_password))
        .route("/api/v1/me/sessions", get(security::sessions))
        .route("/api/v1/me/sessions/revoke-others", post(security::revoke_others))
        .route("/api/v1/me/sessions/{id}", delete(security::revoke_session))
        .route("/api/v1/me/remembered-browsers", get(security::browsers))
        .route("/api/v1/me/remembered-browsers/{id}", delete(security::forget_browser))
        .route("/api/v1/me/security-log", get(security::security_log))
        .route("/api/v1/me/security-log/readable", get(security_log::readable))
        .route("/api/v1/me/ip-allowlist", get(allowlist::show).put(allowlist::replace))
        .route("/api/v1/orgs", get(orgs::list).post(orgs::create))
        .route("/api/v1/orgs/{id}", get(orgs::show))
        .route("/api/v1/orgs/{id}/members", post(orgs::invite))
        .route("/api/v1/orgs/{id}/invitations", get(orgs::invitations))
        .route("/api/v1/orgs/{id}/invitations/{invitation_id}", delete(orgs::revoke_invitation))
        .route("/api/v1/me/invitations", get(orgs::my_invitations))
        .route("/api/v1/me/invitations/{id}/accept", post(orgs::accept_invitation))
        .route("/api/v1/me/invitations/{id}/decline", post(orgs::decline_invitation))
        .route("/api/v1/orgs/{id}/members/{account_id}", put(orgs::set_role).delete(orgs::remove_member))
        .route("/api/v1/orgs/{id}/two-factor-policy", put(orgs::set_policy))
        .route("/api/v1/orgs/{id}/passkey-policy", put(orgs::set_passkey_policy))
        .route("/api/v1/admin/users", get(admin::users))
        .route("/api/v1/admin/users/{id}/reset-2fa", post(admin::reset_two_factor))
        .route("/api/v1/admin/users/{id}/disable", post(admin::disable))
        .route("/api/v1/admin/users/{id}/enable", post(admin::enable))
        .route("/api/v1/admin/audit", get(admin::audit))
        .route("/api/v1/me/push-devices", get(push::list))
        .route("/api/v1/me/push-devices/pairing", post(push::start_pairing))
        .route("/api/v1/me/push-devices/{id}", patch(push::rename).delete(push::remove))
        .route("/api/v1/push/devices", post(push::register))
        .route("/api/v1/push/challenges", get(push::pending))
        .route("/api/v1/push/challenges/{id}/answer", post(push::answer))
        .route("/api/v1/push/device/web-push", put(push::set_subscription))
        .route("/api/v1/push/device", delete(push::forget))
        .route("/api/v1/push/vapid-public-key", get(push::vapid_key))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HealthResponse {
    status: &'static str,
}

/// 200 when the store answers, 503 otherwise.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, body = HealthResponse), (status = 503, body = HealthResponse)))]
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if state.twostep.healthy().await {
        (StatusCode::OK, Json(HealthResponse { status: "ok" }))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(HealthResponse { status: "unavailable" }))
    }
}

async fn method_not_allowed(uri: axum::http::Uri) -> axum::response::Response {
    if uri.path().starts_with("/api/") {
        crate::error::ApiError::MethodNotAllowed.into_response()
    } else {
        StatusCode::METHOD_NOT_ALLOWED.into_response()
    }
}

async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    if uri.path().starts_with("/api/") {
        crate::error::ApiError::NotFound.into_response()
    } else {
        crate::web::error::not_found_page()
    }
}

/// Shared by the OpenAPI annotations.
pub type ApiErrorBody = ErrorBody;

/// Hands a caller its rotated session (SEC-52): the new token goes in the
/// body's `session_token`, and a caller signed in by the web cookie also
/// gets the cookie, since its old one no longer works.
pub(crate) fn rotated_session(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    token: Option<&twostep_domain::token::Token>,
    mut res: axum::response::Response,
) -> axum::response::Response {
    if let Some(token) = token
        && crate::extract::bearer(headers).is_none()
    {
        let cookie = crate::cookies::set(&state.web, state.web.session_cookie(), token.expose(), None);
        res.headers_mut().append(axum::http::header::SET_COOKIE, cookie);
    }
    res
}
