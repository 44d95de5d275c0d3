//! The account's IP allow-list (story P3; SEC-61): read it, replace it.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use twostep_domain::policy::allowlist::{AllowEntry, EntryInput};

use super::ApiErrorBody;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{ApiJson, Ctx, SetupSession};

#[derive(Serialize, utoipa::ToSchema)]
pub struct AllowlistEntry {
    /// A normalised address (`203.0.113.7`) or CIDR range (`10.0.0.0/8`).
    cidr: String,
    /// What the entry is for; may be empty.
    label: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AllowlistResponse {
    /// Sign-in and sessions work only from these; empty: from anywhere.
    entries: Vec<AllowlistEntry>,
    /// The address this request came from, as the server sees it.
    current_ip: String,
    /// Only when saving the list ended an enrolment-only session: the new
    /// full session's token. The token used for this request no longer
    /// works (SEC-52).
    #[serde(skip_serializing_if = "Option::is_none")]
    session_token: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EntryRequest {
    /// An IPv4/IPv6 address or CIDR range; IPv4 ranges /8 or narrower, IPv6 /32 or narrower.
    cidr: String,
    /// Up to 64 characters.
    label: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AllowlistRequest {
    /// The whole new list, at most 50 entries; `[]` lifts the restriction.
    entries: Vec<EntryRequest>,
    /// Save a list that leaves out `current_ip` anyway: this session ends
    /// at its next request and sign-ins from here are refused.
    #[serde(default)]
    confirm_lockout: bool,
}

fn response(entries: Vec<AllowEntry>, current_ip: String) -> AllowlistResponse {
    AllowlistResponse {
        entries: entries.into_iter().map(|e| AllowlistEntry { cidr: e.range.to_string(), label: e.label }).collect(),
        current_ip,
        session_token: None,
    }
}

/// The IP allow-list and the caller's address.
#[utoipa::path(get, path = "/api/v1/me/ip-allowlist", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = AllowlistResponse), (status = 401, description = "unauthenticated", body = ApiErrorBody),
        (status = 403, description = "enrollment_required, or ip_not_allowed (this session was used from outside the list and has ended)", body = ApiErrorBody)))]
pub async fn show(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SetupSession(me): SetupSession,
) -> ApiResult<Json<AllowlistResponse>> {
    let entries = s.twostep.allowlist_of(&me).await?;
    Ok(Json(response(entries, ctx.ip)))
}

/// Replace the IP allow-list (re-auth needed). A list without the caller's
/// address is refused with 409 `would_lock_out` (naming `current_ip`) unless
/// `confirm_lockout` is true. Audited; the account is mailed. When the
/// operator lets an allow-list meet the 2FA mandate, an enrolment-only
/// session may set one, which makes it a full session.
#[utoipa::path(put, path = "/api/v1/me/ip-allowlist", tag = "me", request_body = AllowlistRequest,
    security(("bearer" = [])),
    responses((status = 200, body = AllowlistResponse),
        (status = 400, description = "invalid_ip_range (with `entry`), or invalid_request (bad body, a label over 64 characters with `entry`, more than 50 entries)", body = ApiErrorBody),
        (status = 401, description = "unauthenticated", body = ApiErrorBody),
        (status = 403, description = "reauth_required, enrollment_required, two_factor_required_by_policy (the list is what meets the operator's mandate and cannot be cleared), ip_not_allowed or csrf_failed", body = ApiErrorBody),
        (status = 409, description = "would_lock_out (with `current_ip`)", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn replace(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SetupSession(me): SetupSession,
    headers: axum::http::HeaderMap,
    ApiJson(req): ApiJson<AllowlistRequest>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let entries: Vec<EntryInput> =
        req.entries.into_iter().map(|e| EntryInput { cidr: e.cidr, label: e.label.unwrap_or_default() }).collect();
    let saved = s.twostep.set_allowlist(&me, &entries, req.confirm_lockout, &ctx).await?;
    let mut body = response(saved.entries, ctx.ip);
    body.session_token = saved.session_token.as_ref().map(|t| t.expose().to_owned());
    Ok(super::rotated_session(&s, &headers, saved.session_token.as_ref(), Json(body).into_response()))
}
