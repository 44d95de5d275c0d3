//! Authenticator apps: enrolment, confirmation, listing and removal.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use twostep_domain::factors::store::AuthenticatorRecord;

use super::ApiErrorBody;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiSession, Ctx, SetupSession};

/// `{}`: the call takes no fields (an empty body is read as `{}` too).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct EmptyBody {}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EnrollmentResponse {
    enrollment_id: String,
    /// Base32, for typing into an app by hand.
    secret: String,
    otpauth_uri: String,
    /// The otpauth URI as an inline SVG QR code.
    qr_svg: String,
}

/// Start adding an authenticator app: a new secret on every call; earlier
/// unconfirmed enrolments stop working.
#[utoipa::path(post, path = "/api/v1/me/totp", tag = "authenticators", request_body = EmptyBody, security(("bearer" = [])),
    responses((status = 201, body = EnrollmentResponse), (status = 401, body = ApiErrorBody),
        (status = 400, body = ApiErrorBody), (status = 403, description = "reauth_required", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn start(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SetupSession(me): SetupSession,
    ApiJson(_): ApiJson<EmptyBody>,
) -> ApiResult<Response> {
    let e = s.twostep.start_totp_enrollment(&me, &ctx).await?;
    let body = EnrollmentResponse {
        enrollment_id: e.id.to_string(),
        secret: e.secret_base32.clone(),
        otpauth_uri: e.otpauth_uri.clone(),
        qr_svg: e.qr_svg.clone(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ConfirmRequest {
    enrollment_id: String,
    code: String,
    name: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuthenticatorResponse {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    name: String,
    created_at: String,
    last_used_at: Option<String>,
    /// For a security key (`type` `webauthn`): what kind, and whether synced.
    #[serde(skip_serializing_if = "Option::is_none")]
    webauthn: Option<super::webauthn::KeyDetails>,
}

impl From<&AuthenticatorRecord> for AuthenticatorResponse {
    fn from(a: &AuthenticatorRecord) -> Self {
        Self {
            id: a.id.to_string(),
            kind: a.kind.clone(),
            name: a.name.clone(),
            created_at: a.created_at.rfc3339(),
            last_used_at: a.last_used_at.map(twostep_domain::time::Timestamp::rfc3339),
            webauthn: None,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConfirmResponse {
    authenticator: AuthenticatorResponse,
    /// Only when this authenticator turned 2FA on.
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_codes: Option<Vec<String>>,
    /// Only when this confirmation ended an enrolment-only session: the new
    /// full session's token. The token used for this request no longer
    /// works (SEC-52).
    #[serde(skip_serializing_if = "Option::is_none")]
    session_token: Option<String>,
}

impl ConfirmResponse {
    pub(super) fn of(c: &twostep_domain::factors::totp::Confirmed) -> Self {
        Self {
            authenticator: (&c.authenticator).into(),
            recovery_codes: c.recovery_codes.as_ref().map(|codes| {
                codes.iter().map(twostep_domain::factors::recovery::code::RecoveryCode::display_grouped).collect()
            }),
            session_token: c.session_token.as_ref().map(|t| t.expose().to_owned()),
        }
    }
}

/// Confirm an enrolment with a code from the app.
#[utoipa::path(post, path = "/api/v1/me/totp/confirm", tag = "authenticators", request_body = ConfirmRequest,
    security(("bearer" = [])),
    responses((status = 201, body = ConfirmResponse), (status = 400, body = ApiErrorBody),
        (status = 401, description = "invalid_code (wrong code, or the enrolment expired or was replaced)", body = ApiErrorBody),
        (status = 403, description = "reauth_required", body = ApiErrorBody), (status = 415, body = ApiErrorBody), (status = 413, body = ApiErrorBody)))]
pub async fn confirm(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SetupSession(me): SetupSession,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ConfirmRequest>,
) -> ApiResult<Response> {
    let c = s.twostep.confirm_totp(&me, &req.enrollment_id, &req.code, req.name.as_deref(), &ctx).await?;
    let body = ConfirmResponse::of(&c);
    let res = (StatusCode::CREATED, Json(body)).into_response();
    Ok(super::rotated_session(&s, &headers, c.session_token.as_ref(), res))
}

/// The enrolment's QR code as a PNG, while it is pending.
#[utoipa::path(get, path = "/api/v1/me/totp/{enrollment_id}/qr.png", tag = "authenticators", security(("bearer" = [])),
    params(("enrollment_id" = String, Path)),
    responses((status = 200, content_type = "image/png"), (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn qr_png(
    State(s): State<AppState>,
    SetupSession(me): SetupSession,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let png = s.twostep.enrollment_qr_png(&me, &id).await.map_err(|_| ApiError::NotFound)?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

/// The account's authenticators.
#[utoipa::path(get, path = "/api/v1/me/authenticators", tag = "authenticators", security(("bearer" = [])),
    responses((status = 200, body = [AuthenticatorResponse]), (status = 401, body = ApiErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    SetupSession(me): SetupSession,
) -> ApiResult<Json<Vec<AuthenticatorResponse>>> {
    let all = s.twostep.authenticators(&me.account.id).await?;
    let mut listed: Vec<AuthenticatorResponse> = all.iter().map(AuthenticatorResponse::from).collect();
    if all.iter().any(|a| a.kind == twostep_domain::factors::webauthn::WEBAUTHN_KIND) {
        let keys = s.twostep.webauthn_credentials(&me.account.id).await?;
        for a in &mut listed {
            a.webauthn = keys.iter().find(|k| k.authenticator_id.as_str() == a.id).map(super::webauthn::KeyDetails::of);
        }
    }
    Ok(Json(listed))
}

/// Remove an authenticator. Removing the last one turns 2FA off.
#[utoipa::path(delete, path = "/api/v1/me/authenticators/{id}", tag = "authenticators", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ApiErrorBody),
        (status = 403, description = "reauth_required", body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn remove(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.twostep.remove_authenticator(&me, &id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
