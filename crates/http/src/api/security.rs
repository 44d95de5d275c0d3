//! Passwords, sessions, remembered browsers and the user's security log.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::ApiErrorBody;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiSession, Ctx};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ForgotRequest {
    email: String,
}

/// Ask for a password-reset link by e-mail. Answers alike whether or not
/// the address has an account.
#[utoipa::path(post, path = "/api/v1/password/forgot", tag = "password", request_body = ForgotRequest,
    responses((status = 202), (status = 400, body = ApiErrorBody), (status = 415, body = ApiErrorBody), (status = 413, body = ApiErrorBody)))]
pub async fn forgot(State(s): State<AppState>, Ctx(ctx): Ctx, ApiJson(req): ApiJson<ForgotRequest>) -> Response {
    s.twostep.request_password_reset_in_background(&req.email, &ctx);
    (StatusCode::ACCEPTED, Json(serde_json::json!({}))).into_response()
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ResetRequest {
    /// The token from the e-mailed link.
    token: String,
    password: String,
}

/// Set a new password with a reset link's token. Every session ends; the
/// second factor is still asked at the next sign-in.
#[utoipa::path(post, path = "/api/v1/password/reset", tag = "password", request_body = ResetRequest,
    responses((status = 204), (status = 400, description = "invalid_token or weak_password", body = ApiErrorBody),
        (status = 415, body = ApiErrorBody), (status = 413, body = ApiErrorBody)))]
pub async fn reset(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<ResetRequest>,
) -> ApiResult<StatusCode> {
    s.twostep.reset_password(&req.token, &req.password, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

/// Change the password (re-auth needed); other sessions end.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "password", request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses((status = 204), (status = 400, description = "weak_password", body = ApiErrorBody),
        (status = 401, description = "invalid_credentials", body = ApiErrorBody),
        (status = 403, description = "reauth_required", body = ApiErrorBody), (status = 429, body = ApiErrorBody), (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn change_password(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    s.twostep.change_password(&me, &req.current_password, &req.new_password, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionResponse {
    id: String,
    device: String,
    ip: String,
    created_at: String,
    last_seen_at: String,
    current: bool,
}

/// The account's signed-in devices.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = [SessionResponse]), (status = 401, body = ApiErrorBody)))]
pub async fn sessions(State(s): State<AppState>, ApiSession(me): ApiSession) -> ApiResult<Json<Vec<SessionResponse>>> {
    let list = s.twostep.sessions_of(&me).await?;
    Ok(Json(
        list.into_iter()
            .map(|v| SessionResponse {
                id: v.id,
                device: v.device,
                ip: v.ip,
                created_at: v.created_at.rfc3339(),
                last_seen_at: v.last_seen_at.rfc3339(),
                current: v.current,
            })
            .collect(),
    ))
}

/// Sign one session out (re-auth needed).
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ApiErrorBody),
        (status = 403, description = "reauth_required", body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn revoke_session(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if s.twostep.revoke_session(&me, &id, &ctx).await? { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::NotFound) }
}

/// Sign out everywhere else (re-auth needed).
#[utoipa::path(post, path = "/api/v1/me/sessions/revoke-others", tag = "sessions", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ApiErrorBody),
        (status = 403, description = "reauth_required", body = ApiErrorBody)))]
pub async fn revoke_others(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
) -> ApiResult<StatusCode> {
    s.twostep.revoke_other_sessions(&me, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BrowserResponse {
    id: String,
    device: String,
    ip: String,
    created_at: String,
    expires_at: String,
    last_used_at: Option<String>,
}

/// Browsers that skip the second factor ("Remember this browser").
#[utoipa::path(get, path = "/api/v1/me/remembered-browsers", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = [BrowserResponse]), (status = 401, body = ApiErrorBody)))]
pub async fn browsers(State(s): State<AppState>, ApiSession(me): ApiSession) -> ApiResult<Json<Vec<BrowserResponse>>> {
    let list = s.twostep.remembered_browsers(&me.account.id).await.map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(
        list.into_iter()
            .map(|b| BrowserResponse {
                device: twostep_domain::abuse::device::describe(&b.user_agent),
                id: b.id,
                ip: b.ip,
                created_at: b.created_at.rfc3339(),
                expires_at: b.expires_at.rfc3339(),
                last_used_at: b.last_used_at.map(twostep_domain::time::Timestamp::rfc3339),
            })
            .collect(),
    ))
}

/// Forget a remembered browser: it will be asked for a code again.
#[utoipa::path(delete, path = "/api/v1/me/remembered-browsers/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn forget_browser(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let found = s.twostep.forget_browser(&me, &id, &ctx).await.map_err(|e| ApiError::Internal(e.into()))?;
    if found { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::NotFound) }
}

#[derive(utoipa::IntoParams)]
#[expect(dead_code, reason = "documents the query for OpenAPI; parsed by hand for contract errors")]
pub struct LogQuery {
    /// At most this many entries (1–500, default 100).
    limit: Option<i64>,
    /// Only entries older than this one (an entry's `id`): the next page.
    before: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LogEntry {
    /// The entry's place in the log; pass it as `before` for older entries.
    id: i64,
    at: String,
    event: String,
    success: bool,
    ip: String,
    device: String,
    factor_id: Option<String>,
    details: String,
}

/// The account's own security log, newest first: one entry per event (see
/// `/api/v1/me/security-log/readable` for entries as people read them).
#[utoipa::path(get, path = "/api/v1/me/security-log", tag = "sessions", security(("bearer" = [])), params(LogQuery),
    responses((status = 200, body = [LogEntry]), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody)))]
pub async fn security_log(
    State(s): State<AppState>,
    ApiSession(me): ApiSession,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<Json<Vec<LogEntry>>> {
    let limit = match q.get("limit") {
        None => 100,
        Some(v) => v.parse::<i64>().map_err(|_| ApiError::InvalidRequest("limit must be a whole number".into()))?,
    };
    let before = super::security_log::cursor(&q)?;
    let entries = s.twostep.security_log(&me, limit.clamp(1, 500), before).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|(e, device)| LogEntry {
                id: e.id,
                at: e.at.rfc3339(),
                event: e.kind,
                success: e.success,
                device,
                ip: e.ip,
                factor_id: e.factor_id,
                details: e.details,
            })
            .collect(),
    ))
}
