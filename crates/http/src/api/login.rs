//! Sign-up, sign-in (both steps) and sign-out.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use twostep_domain::audit::Actor;
use twostep_domain::factors::Method;
use twostep_domain::signin::login::LoginOutcome;

use super::ApiErrorBody;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Ctx, SetupSession};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignUpRequest {
    email: String,
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountResponse {
    id: String,
    email: String,
}

/// Create an account. Well-formed attempts (taken addresses included) are
/// capped per source address and per e-mail address each hour
/// (`signup.per_source_per_hour`, `signup.per_email_per_hour`).
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = SignUpRequest,
    responses((status = 201, body = AccountResponse),
        (status = 400, description = "invalid_request, invalid_email or weak_password", body = ApiErrorBody),
        (status = 409, description = "email_taken", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody),
        (status = 429, description = "too_many_requests: too many sign-ups from this address or for this e-mail; see `Retry-After`", body = ApiErrorBody,
            headers(("Retry-After" = i64, description = "seconds until a sign-up is counted again")))))]
pub async fn sign_up(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<SignUpRequest>,
) -> ApiResult<Response> {
    let account = s.twostep.sign_up(&req.email, &req.password, Actor::User, &ctx).await?;
    let body = AccountResponse { id: account.id.to_string(), email: account.email.to_string() };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// One of `authenticated` (with `session_token`), `second_factor_required`
/// (with `login_token` and `methods`) or `enrollment_required`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    login_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    methods: Option<Vec<&'static str>>,
}

/// Sign in with e-mail and password.
#[utoipa::path(post, path = "/api/v1/login", tag = "sign-in", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse),
        (status = 400, body = ApiErrorBody), (status = 401, description = "invalid_credentials", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody), (status = 429, body = ApiErrorBody)))]
pub async fn login(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    Ok(Json(LoginResponse::of(s.twostep.login(&req.email, &req.password, None, &ctx).await?)))
}

impl LoginResponse {
    pub(super) fn of(outcome: LoginOutcome) -> Self {
        match outcome {
            LoginOutcome::Authenticated { session, .. } => LoginResponse {
                status: "authenticated",
                session_token: Some(session.expose().to_owned()),
                login_token: None,
                methods: None,
            },
            LoginOutcome::EnrollmentRequired { session, .. } => LoginResponse {
                status: "enrollment_required",
                session_token: Some(session.expose().to_owned()),
                login_token: None,
                methods: None,
            },
            LoginOutcome::SecondFactorRequired { login_token, methods } => LoginResponse {
                status: "second_factor_required",
                session_token: None,
                login_token: Some(login_token.expose().to_owned()),
                methods: Some(methods.iter().map(|m| m.as_str()).collect()),
            },
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct VerifyRequest {
    login_token: String,
    /// `totp`, `recovery_code`, `sms`, `voice`, `email`, `push` (with a
    /// `code`) or `webauthn` (with a `credential`).
    method: String,
    code: Option<String>,
    /// For `webauthn`: the browser's `PublicKeyCredential.toJSON()`.
    #[schema(value_type = Option<Object>)]
    credential: Option<serde_json::Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifyResponse {
    status: &'static str,
    session_token: String,
    /// Present after a recovery-code sign-in: how many codes are left.
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_codes_remaining: Option<usize>,
}

/// The proof a body gives for `method`, as its raw text: a key's
/// credential as JSON, any other method's code. The field the method needs
/// is required.
pub fn raw_proof(method: Method, code: Option<&str>, credential: Option<&serde_json::Value>) -> ApiResult<String> {
    if method.info().proving == twostep_domain::factors::Proving::Assertion {
        credential.map(ToString::to_string).ok_or_else(|| ApiError::InvalidRequest("missing field `credential`".into()))
    } else {
        code.map(str::to_owned).ok_or_else(|| ApiError::InvalidRequest("missing field `code`".into()))
    }
}

pub fn parse_method(s: &str) -> ApiResult<Method> {
    Method::parse(s).ok_or_else(|| ApiError::InvalidRequest(format!("unknown method {s:?}")))
}

/// Second step of sign-in.
#[utoipa::path(post, path = "/api/v1/login/verify", tag = "sign-in", request_body = VerifyRequest,
    responses((status = 200, body = VerifyResponse),
        (status = 400, body = ApiErrorBody), (status = 401, description = "invalid_code", body = ApiErrorBody),
        (status = 415, body = ApiErrorBody), (status = 429, body = ApiErrorBody), (status = 413, body = ApiErrorBody)))]
pub async fn verify(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> ApiResult<Json<VerifyResponse>> {
    let method = parse_method(&req.method)?;
    let raw = raw_proof(method, req.code.as_deref(), req.credential.as_ref())?;
    let v = s.twostep.verify_login(&req.login_token, method, method.proof(&raw), &ctx).await?;
    Ok(Json(VerifyResponse {
        status: "authenticated",
        session_token: v.session.expose().to_owned(),
        recovery_codes_remaining: v.recovery_codes_remaining,
    }))
}

/// End the session; its token stops working.
#[utoipa::path(post, path = "/api/v1/logout", tag = "sign-in", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ApiErrorBody), (status = 403, description = "csrf_failed", body = ApiErrorBody)))]
pub async fn logout(State(s): State<AppState>, Ctx(ctx): Ctx, SetupSession(me): SetupSession) -> ApiResult<Response> {
    s.twostep.sign_out(&me, &ctx).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert("clear-site-data", HeaderValue::from_static("\"cookies\""));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
