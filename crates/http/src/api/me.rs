//! The signed-in account: profile, re-auth, recovery codes, disabling 2FA.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use twostep_domain::signin::reauth::ReauthProofs;

use super::ApiErrorBody;
use super::login::parse_method;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiSession, Ctx, SetupSession};

#[derive(Serialize, utoipa::ToSchema)]
pub struct TwoFactorStatus {
    enabled: bool,
    methods: Vec<&'static str>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MeResponse {
    id: String,
    email: String,
    two_factor: TwoFactorStatus,
    recovery_codes_remaining: usize,
    /// Whether the address is verified (notices go only to a verified one).
    email_verified: bool,
}

/// The signed-in account and its 2FA status.
#[utoipa::path(get, path = "/api/v1/me", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = ApiErrorBody)))]
pub async fn me(State(s): State<AppState>, SetupSession(me): SetupSession) -> ApiResult<Json<MeResponse>> {
    let (methods, remaining) =
        s.twostep.two_factor_status(&me.account).await.map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(MeResponse {
        id: me.account.id.to_string(),
        email: me.account.email.to_string(),
        two_factor: TwoFactorStatus {
            enabled: !methods.is_empty(),
            methods: methods.iter().map(|m| m.as_str()).collect(),
        },
        recovery_codes_remaining: remaining,
        email_verified: me.account.email_verified_at.is_some(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReauthRequest {
    password: Option<String>,
    method: Option<String>,
    code: Option<String>,
    /// With method `webauthn`, instead of `code`: the key's answer to `/me/reauth/challenge`.
    #[schema(value_type = Option<Object>)]
    credential: Option<serde_json::Value>,
}

/// Prove the password and/or a second factor again ("sudo mode").
#[utoipa::path(post, path = "/api/v1/me/reauth", tag = "me", request_body = ReauthRequest, security(("bearer" = [])),
    responses((status = 204), (status = 400, body = ApiErrorBody),
        (status = 401, description = "invalid_credentials or invalid_code", body = ApiErrorBody),
        (status = 415, body = ApiErrorBody), (status = 429, body = ApiErrorBody), (status = 413, body = ApiErrorBody)))]
pub async fn reauth(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SetupSession(me): SetupSession,
    ApiJson(req): ApiJson<ReauthRequest>,
) -> ApiResult<StatusCode> {
    let raw = match (&req.method, &req.code, &req.credential) {
        (Some(m), code, credential) if code.is_some() || credential.is_some() => {
            let method = parse_method(m)?;
            Some((method, super::login::raw_proof(method, code.as_deref(), credential.as_ref())?))
        }
        (None, None, None) => None,
        _ => return Err(ApiError::InvalidRequest("give both method and code".into())),
    };
    let second_factor = raw.as_ref().map(|(method, raw)| (*method, method.proof(raw)));
    s.twostep.reauth(&me, ReauthProofs { password: req.password.as_deref(), second_factor }, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RevealedCode {
    code: String,
    used: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RevealedCodesResponse {
    codes: Vec<RevealedCode>,
}

/// Reveal the current recovery codes, used ones marked.
#[utoipa::path(get, path = "/api/v1/me/recovery-codes", tag = "recovery codes", security(("bearer" = [])),
    responses((status = 200, body = RevealedCodesResponse), (status = 401, body = ApiErrorBody),
        (status = 403, description = "reauth_required, or csrf_failed (signed in by cookie, asked from another site)", body = ApiErrorBody),
        (status = 409, description = "two_factor_not_enabled", body = ApiErrorBody)))]
pub async fn reveal_codes(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
) -> ApiResult<Json<RevealedCodesResponse>> {
    let codes = s.twostep.reveal_recovery_codes(&me, &ctx).await?;
    Ok(Json(RevealedCodesResponse {
        codes: codes.into_iter().map(|c| RevealedCode { code: c.code.display_grouped(), used: c.used }).collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NewCodesResponse {
    codes: Vec<String>,
}

/// A new set of 10 recovery codes; the old ones stop working.
#[utoipa::path(post, path = "/api/v1/me/recovery-codes", tag = "recovery codes", security(("bearer" = [])),
    responses((status = 201, body = NewCodesResponse), (status = 401, body = ApiErrorBody),
        (status = 403, description = "reauth_required", body = ApiErrorBody),
        (status = 409, description = "two_factor_not_enabled", body = ApiErrorBody)))]
pub async fn regenerate_codes(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
) -> ApiResult<Response> {
    let codes = s.twostep.regenerate_recovery_codes(&me, &ctx).await?;
    let body = NewCodesResponse {
        codes: codes.iter().map(twostep_domain::factors::recovery::code::RecoveryCode::display_grouped).collect(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Turn two-factor authentication off: every factor and recovery code goes.
#[utoipa::path(delete, path = "/api/v1/me/two-factor", tag = "me", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ApiErrorBody),
        (status = 403, description = "reauth_required or two_factor_required_by_policy", body = ApiErrorBody), (status = 409, description = "two_factor_not_enabled", body = ApiErrorBody)))]
pub async fn disable_two_factor(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
) -> ApiResult<StatusCode> {
    s.twostep.disable_two_factor(&me, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct PreferredMethod {
    /// A method the account can use now (`push`, `totp`, `sms`…), or
    /// `null` for strongest first.
    method: Option<String>,
}

/// Choose the method sign-in asks for first: it leads `methods` at the
/// second step while the account holds it.
#[utoipa::path(put, path = "/api/v1/me/preferred-method", tag = "me", request_body = PreferredMethod,
    security(("bearer" = [])),
    responses((status = 200, body = PreferredMethod),
        (status = 400, description = "invalid_request: an unknown method, or one this account cannot use now", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 415, body = ApiErrorBody), (status = 413, body = ApiErrorBody)))]
pub async fn set_preferred_method(
    State(s): State<AppState>,
    ApiSession(me): ApiSession,
    ApiJson(req): ApiJson<PreferredMethod>,
) -> ApiResult<Json<PreferredMethod>> {
    let method = req.method.as_deref().map(parse_method).transpose()?;
    s.twostep.set_preferred_method(&me, method).await?;
    Ok(Json(PreferredMethod { method: method.map(|m| m.as_str().to_owned()) }))
}
