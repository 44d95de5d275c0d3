//! Codes sent by SMS, voice call or e-mail: at sign-in, for re-auth, to
//! verify a phone number, and to verify the account's e-mail address.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use twostep_domain::factors::phone::PhoneInput;
use twostep_domain::factors::{Challenge, Method};
use twostep_domain::notify::store::Channel;

use super::ApiErrorBody;
use super::login::parse_method;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiSession, Ctx, Place, SetupSession};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChallengeRequest {
    login_token: String,
    /// `sms`, `voice`, `email`, `push` or `webauthn`.
    method: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChallengeResponse {
    method: &'static str,
    /// The destination, masked: `+1 ••• ••• ••12`, `a•••@example.com`.
    sent_to: String,
    /// Seconds the code works.
    expires_in: i64,
}

/// A key is to sign: the options for `navigator.credentials.get()`, then
/// `/login/verify` (or `/me/reauth`) with `"credential"`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WebauthnChallengeResponse {
    /// `{"publicKey": …}`, binary fields base64url.
    #[schema(value_type = Object)]
    options: serde_json::Value,
}

/// A begun challenge as the contract shows it: a sent code's destination,
/// or a push's number to match.
fn begun(method: Method, challenge: Challenge) -> Response {
    match challenge {
        Challenge::Sent(sent) => {
            let body =
                ChallengeResponse { method: method.as_str(), sent_to: sent.sent_to, expires_in: sent.expires_in };
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Challenge::Push(started) => super::push::accepted(started),
        Challenge::WebAuthn { options } => {
            (StatusCode::OK, Json(WebauthnChallengeResponse { options })).into_response()
        }
    }
}

/// Send a sign-in code by SMS, voice call or e-mail. Only the latest code
/// sent works; resending is limited (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/login/challenge", tag = "sign-in", request_body = ChallengeRequest,
    responses((status = 202, description = "A code was sent; with method `push`, a PushChallengeResponse", body = ChallengeResponse),
        (status = 200, description = "With method `webauthn`: the key's options", body = WebauthnChallengeResponse),
        (status = 400, description = "invalid_request or method_unavailable", body = ApiErrorBody),
        (status = 401, description = "invalid_token: the login token is unknown or expired", body = ApiErrorBody),
        (status = 403, description = "factor_locked", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody),
        (status = 429, description = "too_many_requests", body = ApiErrorBody)))]
pub async fn login_challenge(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Place(place): Place,
    ApiJson(req): ApiJson<ChallengeRequest>,
) -> ApiResult<Response> {
    let method = parse_method(&req.method)?;
    let challenge = s.twostep.login_challenge(&req.login_token, method, place.as_deref(), &ctx).await?;
    Ok(begun(method, challenge))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReauthChallengeRequest {
    /// `sms`, `voice`, `email` or `push` (then `/me/reauth` with the approved challenge id as the code).
    method: String,
}

/// Send a code to prove the second factor for re-auth; then
/// `POST /api/v1/me/reauth` with the method and code.
#[utoipa::path(post, path = "/api/v1/me/reauth/challenge", tag = "me", request_body = ReauthChallengeRequest,
    security(("bearer" = [])),
    responses((status = 202, body = ChallengeResponse),
        (status = 400, description = "invalid_request or method_unavailable", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, description = "factor_locked or csrf_failed", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody),
        (status = 429, description = "too_many_requests", body = ApiErrorBody)))]
pub async fn reauth_challenge(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SetupSession(me): SetupSession,
    ApiJson(req): ApiJson<ReauthChallengeRequest>,
) -> ApiResult<Response> {
    let method = parse_method(&req.method)?;
    let challenge = s.twostep.reauth_challenge(&me, method, &ctx).await?;
    Ok(begun(method, challenge))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PhoneRequest {
    /// E.164, e.g. `+14155550123`. Or give `country` and `number`.
    phone: Option<String>,
    /// ISO 3166 alpha-2 region, e.g. `US`.
    country: Option<String>,
    /// The national number as typed, e.g. `(415) 555-0123`.
    number: Option<String>,
    /// `sms` (default) or `voice`.
    channel: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PhoneCodeResponse {
    sent_to: String,
    expires_in: i64,
}

/// Send a verification code to a new phone number. Needs recent re-auth;
/// an existing number stays in force until the new one is confirmed.
#[utoipa::path(post, path = "/api/v1/me/phone", tag = "phone", request_body = PhoneRequest, security(("bearer" = [])),
    responses((status = 202, body = PhoneCodeResponse),
        (status = 400, description = "invalid_request, invalid_phone or method_unavailable", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, description = "reauth_required or csrf_failed", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody),
        (status = 429, description = "too_many_requests", body = ApiErrorBody)))]
pub async fn start_phone(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SetupSession(me): SetupSession,
    ApiJson(req): ApiJson<PhoneRequest>,
) -> ApiResult<Response> {
    let input = match (&req.phone, &req.country, &req.number) {
        (Some(p), None, None) => PhoneInput::E164(p),
        (None, Some(country), Some(number)) => PhoneInput::National { country, number },
        _ => return Err(ApiError::InvalidRequest("give either phone, or country and number".into())),
    };
    let channel = match req.channel.as_deref() {
        None | Some("sms") => Channel::Sms,
        Some("voice") => Channel::Voice,
        Some(other) => return Err(ApiError::InvalidRequest(format!("unknown channel {other:?}; use sms or voice"))),
    };
    let sent = s.twostep.start_phone_verification(&me, input, channel, &ctx).await?;
    let body = PhoneCodeResponse { sent_to: sent.sent_to, expires_in: sent.expires_in };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CodeRequest {
    code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PhoneConfirmedResponse {
    /// The verified number, E.164.
    phone: String,
    /// The number as pages show it.
    masked: String,
    /// 10 recovery codes, only when the phone turned 2FA on.
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_codes: Option<Vec<String>>,
    /// Only when this confirmation ended an enrolment-only session: the new
    /// full session's token. The token used for this request no longer
    /// works (SEC-52).
    #[serde(skip_serializing_if = "Option::is_none")]
    session_token: Option<String>,
}

/// Confirm the number with the code sent to it; it then serves as the
/// `sms` and `voice` methods.
#[utoipa::path(post, path = "/api/v1/me/phone/confirm", tag = "phone", request_body = CodeRequest, security(("bearer" = [])),
    responses((status = 200, body = PhoneConfirmedResponse),
        (status = 400, body = ApiErrorBody), (status = 401, description = "invalid_code", body = ApiErrorBody),
        (status = 403, description = "reauth_required or csrf_failed", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn confirm_phone(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SetupSession(me): SetupSession,
    headers: axum::http::HeaderMap,
    ApiJson(req): ApiJson<CodeRequest>,
) -> ApiResult<Response> {
    let done = s.twostep.confirm_phone(&me, &req.code, &ctx).await?;
    let res = Json(PhoneConfirmedResponse {
        phone: done.phone.e164().to_owned(),
        masked: done.phone.masked(),
        recovery_codes: done
            .recovery_codes
            .map(|c| c.iter().map(twostep_domain::factors::recovery::code::RecoveryCode::display_grouped).collect()),
        session_token: done.session_token.as_ref().map(|t| t.expose().to_owned()),
    })
    .into_response();
    Ok(super::rotated_session(&s, &headers, done.session_token.as_ref(), res))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PhoneResponse {
    /// The verified number, masked; null when there is none.
    masked: Option<String>,
}

/// The account's verified phone, masked.
#[utoipa::path(get, path = "/api/v1/me/phone", tag = "phone", security(("bearer" = [])),
    responses((status = 200, body = PhoneResponse), (status = 401, body = ApiErrorBody)))]
pub async fn show_phone(State(s): State<AppState>, SetupSession(me): SetupSession) -> ApiResult<Json<PhoneResponse>> {
    let phone = s.twostep.phone_of(&me.account.id).await?;
    Ok(Json(PhoneResponse { masked: phone.map(|p| p.phone.masked()) }))
}

/// Remove the phone (re-auth). If it was the last factor, 2FA turns off.
#[utoipa::path(delete, path = "/api/v1/me/phone", tag = "phone", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ApiErrorBody),
        (status = 403, description = "reauth_required or csrf_failed", body = ApiErrorBody),
        (status = 404, description = "no phone", body = ApiErrorBody)))]
pub async fn remove_phone(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
) -> ApiResult<StatusCode> {
    s.twostep.remove_phone(&me, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mail a new verification code and link to the account's address.
/// 202 with where it went; 204 when the address is already verified.
#[utoipa::path(post, path = "/api/v1/me/email/verification", tag = "me", security(("bearer" = [])),
    responses((status = 202, body = PhoneCodeResponse), (status = 204, description = "already verified"),
        (status = 401, body = ApiErrorBody), (status = 403, description = "csrf_failed", body = ApiErrorBody),
        (status = 429, description = "too_many_requests", body = ApiErrorBody)))]
pub async fn send_email_verification(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SetupSession(me): SetupSession,
) -> ApiResult<Response> {
    Ok(match s.twostep.send_email_verification(&me.account.id, &ctx).await? {
        Some(sent) => {
            let body = PhoneCodeResponse { sent_to: sent.sent_to, expires_in: sent.expires_in };
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Verify the account's e-mail address with the mailed code.
#[utoipa::path(post, path = "/api/v1/me/email/confirm", tag = "me", request_body = CodeRequest, security(("bearer" = [])),
    responses((status = 204), (status = 400, body = ApiErrorBody),
        (status = 401, description = "invalid_code", body = ApiErrorBody),
        (status = 403, description = "csrf_failed", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn confirm_email(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SetupSession(me): SetupSession,
    ApiJson(req): ApiJson<CodeRequest>,
) -> ApiResult<StatusCode> {
    s.twostep.confirm_email(me.account.id.as_str(), &req.code, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
