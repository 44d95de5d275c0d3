//! Administration (issue 6): users with their 2FA status, resetting 2FA,
//! disabling accounts, everyone's audit log.
//!
//! Every route needs an administrator's session with 2FA on (else 403
//! `two_factor_required`); every change also needs a recent re-auth (403
//! `reauth_required`). For anyone who is not an administrator the routes
//! answer 404 `not_found`, as if they did not exist. An administrator's own
//! account is refused with 409 `own_account`: its Security page is the place.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use twostep_domain::ids::AccountId;
use twostep_domain::policy::admin::AuditSearch;
use twostep_domain::policy::store::{AccountQuery, AccountSummary};
use twostep_domain::time::Timestamp;

use super::ApiErrorBody;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiSession, Ctx};

#[derive(Serialize, utoipa::ToSchema)]
pub struct AdminTwoFactor {
    enabled: bool,
    /// The kinds of second factor set up: `totp`, `phone`.
    factors: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AdminUser {
    id: String,
    email: String,
    email_verified: bool,
    two_factor: AdminTwoFactor,
    created_at: String,
    last_sign_in_at: Option<String>,
    disabled: bool,
    disabled_at: Option<String>,
    admin: bool,
}

impl From<AccountSummary> for AdminUser {
    fn from(s: AccountSummary) -> Self {
        let a = s.account;
        Self {
            id: a.id.to_string(),
            email: a.email.to_string(),
            email_verified: a.email_verified_at.is_some(),
            two_factor: AdminTwoFactor { enabled: !s.factor_kinds.is_empty(), factors: s.factor_kinds },
            created_at: a.created_at.rfc3339(),
            last_sign_in_at: a.last_sign_in_at.map(Timestamp::rfc3339),
            disabled: a.disabled_at.is_some(),
            disabled_at: a.disabled_at.map(Timestamp::rfc3339),
            admin: a.admin_since.is_some(),
        }
    }
}

#[derive(utoipa::IntoParams)]
#[expect(dead_code, reason = "documents the query for OpenAPI; parsed by hand for contract errors")]
pub struct UserQuery {
    /// A part of the e-mail address (case-insensitive), or an exact account id.
    q: Option<String>,
    /// `true`: only users with 2FA on; `false`: only users without.
    two_factor: Option<bool>,
    /// At most this many users (1–500, default 100), by e-mail.
    limit: Option<i64>,
}

fn param<'a>(q: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    q.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn limit(q: &HashMap<String, String>) -> ApiResult<i64> {
    match param(q, "limit") {
        None => Ok(100),
        Some(v) => Ok(v
            .parse::<i64>()
            .map_err(|_| ApiError::InvalidRequest("limit must be a whole number".into()))?
            .clamp(1, 500)),
    }
}

/// Users by e-mail, with their 2FA status and last sign-in.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])), params(UserQuery),
    responses((status = 200, body = [AdminUser]), (status = 400, description = "invalid_request", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody),
        (status = 403, description = "two_factor_required (the admin lacks 2FA) or enrollment_required", body = ApiErrorBody),
        (status = 404, description = "not_found: the caller is not an administrator", body = ApiErrorBody)))]
pub async fn users(
    State(s): State<AppState>,
    ApiSession(me): ApiSession,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<AdminUser>>> {
    // Not an admin: 404 before the query is even looked at.
    s.twostep.admin_check(&me).await?;
    let two_factor = match param(&q, "two_factor") {
        None => None,
        Some("true" | "on" | "1") => Some(true),
        Some("false" | "off" | "0") => Some(false),
        Some(_) => return Err(ApiError::InvalidRequest("two_factor must be true or false".into())),
    };
    let query = AccountQuery { text: param(&q, "q").map(str::to_owned), two_factor, limit: limit(&q)? };
    let list = s.twostep.admin_users(&me, &query).await?;
    Ok(Json(list.into_iter().map(AdminUser::from).collect()))
}

/// Remove every second factor and recovery code of a user, end their
/// sessions and remembered browsers, clear their factor lock-outs; the
/// user is mailed. Needs a recent re-auth.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/reset-2fa", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's account id")),
    responses((status = 204), (status = 401, body = ApiErrorBody),
        (status = 403, description = "reauth_required, two_factor_required, enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 404, description = "not_found: no such user, or the caller is not an administrator", body = ApiErrorBody),
        (status = 409, description = "own_account", body = ApiErrorBody)))]
pub async fn reset_two_factor(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.twostep.admin_reset_two_factor(&me, &AccountId::from_stored(id), &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disable a user: they can no longer sign in, and their sessions end.
/// Needs a recent re-auth.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/disable", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's account id")),
    responses((status = 204), (status = 401, body = ApiErrorBody),
        (status = 403, description = "reauth_required, two_factor_required, enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 404, description = "not_found: no such user, or the caller is not an administrator", body = ApiErrorBody),
        (status = 409, description = "own_account", body = ApiErrorBody)))]
pub async fn disable(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.twostep.admin_set_disabled(&me, &AccountId::from_stored(id), true, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable a disabled user again. Needs a recent re-auth.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/enable", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's account id")),
    responses((status = 204), (status = 401, body = ApiErrorBody),
        (status = 403, description = "reauth_required, two_factor_required, enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 404, description = "not_found: no such user, or the caller is not an administrator", body = ApiErrorBody),
        (status = 409, description = "own_account", body = ApiErrorBody)))]
pub async fn enable(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.twostep.admin_set_disabled(&me, &AccountId::from_stored(id), false, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(utoipa::IntoParams)]
#[expect(dead_code, reason = "documents the query for OpenAPI; parsed by hand for contract errors")]
pub struct AuditQuery {
    /// The user's e-mail address or account id.
    user: Option<String>,
    /// One event kind, e.g. `two_factor_reset` or `sign_in_succeeded`.
    event: Option<String>,
    /// From this instant on: RFC 3339, or a UTC date (its start).
    since: Option<String>,
    /// Before this instant: RFC 3339, or a UTC date (the whole day included).
    until: Option<String>,
    /// At most this many entries (1–500, default 100), newest first.
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AdminLogEntry {
    at: String,
    event: String,
    account_id: Option<String>,
    email: Option<String>,
    /// `user`, `admin`, `cli` or `system`; an admin's account id is in `details`.
    actor: String,
    success: bool,
    ip: String,
    user_agent: String,
    request_id: String,
    factor_id: Option<String>,
    details: String,
}

/// Everyone's audit log, newest first, with filters.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = [AdminLogEntry]),
        (status = 400, description = "invalid_request: a bad limit or time", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody),
        (status = 403, description = "two_factor_required (the admin lacks 2FA) or enrollment_required", body = ApiErrorBody),
        (status = 404, description = "not_found: the caller is not an administrator", body = ApiErrorBody)))]
pub async fn audit(
    State(s): State<AppState>,
    ApiSession(me): ApiSession,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<AdminLogEntry>>> {
    // Not an admin: 404 before the query is even looked at.
    s.twostep.admin_check(&me).await?;
    let search = AuditSearch {
        user: param(&q, "user"),
        event: param(&q, "event"),
        since: param(&q, "since"),
        until: param(&q, "until"),
        limit: limit(&q)?,
    };
    let entries = s.twostep.admin_audit(&me, &search).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AdminLogEntry {
                at: e.at.rfc3339(),
                event: e.kind,
                account_id: e.account_id.map(|a| a.to_string()),
                email: e.email,
                actor: e.actor,
                success: e.success,
                ip: e.ip,
                user_agent: e.user_agent,
                request_id: e.request_id,
                factor_id: e.factor_id,
                details: e.details,
            })
            .collect(),
    ))
}
