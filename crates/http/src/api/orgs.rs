//! Organisations (seed 003): members, roles and the "Require two-factor"
//! switch.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use twostep_domain::ports::{MemberRecord, OrgRecord, OrgRole};

use super::ApiErrorBody;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiSession, Ctx};

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrgResponse {
    id: String,
    name: String,
    require_two_factor: bool,
}

impl From<OrgRecord> for OrgResponse {
    fn from(o: OrgRecord) -> Self {
        Self { id: o.id, name: o.name, require_two_factor: o.require_two_factor }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MyOrg {
    id: String,
    name: String,
    require_two_factor: bool,
    /// `owner` or `member`.
    role: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Member {
    account_id: String,
    email: String,
    role: &'static str,
    two_factor_enabled: bool,
}

impl From<MemberRecord> for Member {
    fn from(m: MemberRecord) -> Self {
        Self {
            account_id: m.account_id.to_string(),
            email: m.email.to_string(),
            role: m.role.as_str(),
            two_factor_enabled: m.two_factor_enabled,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrgDetail {
    id: String,
    name: String,
    require_two_factor: bool,
    members: Vec<Member>,
}

fn parse_role(s: &str) -> ApiResult<OrgRole> {
    OrgRole::parse(s).ok_or_else(|| ApiError::InvalidRequest(format!("unknown role {s:?}; use owner or member")))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateOrgRequest {
    name: String,
}

/// Create an organisation; the caller is its owner.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "organisations", request_body = CreateOrgRequest,
    security(("bearer" = [])),
    responses((status = 201, body = OrgResponse), (status = 400, description = "invalid_request or invalid_name", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, description = "enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    ApiJson(req): ApiJson<CreateOrgRequest>,
) -> ApiResult<Response> {
    let org = s.twostep.create_org(&me, &req.name, &ctx).await?;
    Ok((StatusCode::CREATED, Json(OrgResponse::from(org))).into_response())
}

/// The caller's organisations.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "organisations", security(("bearer" = [])),
    responses((status = 200, body = Vec<MyOrg>), (status = 401, body = ApiErrorBody),
        (status = 403, description = "enrollment_required", body = ApiErrorBody)))]
pub async fn list(State(s): State<AppState>, ApiSession(me): ApiSession) -> ApiResult<Json<Vec<MyOrg>>> {
    let orgs = s.twostep.orgs_of(&me).await?;
    Ok(Json(
        orgs.into_iter()
            .map(|(o, role)| MyOrg {
                id: o.id,
                name: o.name,
                require_two_factor: o.require_two_factor,
                role: role.as_str(),
            })
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct MemberFilter {
    /// `false` lists only members without 2FA ("without 2FA" filter).
    two_factor: Option<bool>,
}

/// An organisation with its members and their 2FA status.
#[utoipa::path(get, path = "/api/v1/orgs/{id}", tag = "organisations", security(("bearer" = [])),
    params(("id" = String, Path), MemberFilter),
    responses((status = 200, body = OrgDetail), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, description = "two_factor_required or enrollment_required", body = ApiErrorBody),
        (status = 404, description = "not a member, or no such organisation", body = ApiErrorBody)))]
pub async fn show(
    State(s): State<AppState>,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
    Query(filter): Query<MemberFilter>,
) -> ApiResult<Json<OrgDetail>> {
    let view = s.twostep.org_view(&me, &id).await?;
    let members = view
        .members
        .into_iter()
        .filter(|m| filter.two_factor.is_none_or(|want| m.two_factor_enabled == want))
        .map(Member::from)
        .collect();
    Ok(Json(OrgDetail {
        id: view.org.id,
        name: view.org.name,
        require_two_factor: view.org.require_two_factor,
        members,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AddMemberRequest {
    email: String,
    /// `owner` or `member`.
    role: String,
}

/// Add an existing account (owners only).
#[utoipa::path(post, path = "/api/v1/orgs/{id}/members", tag = "organisations", request_body = AddMemberRequest,
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 201, body = Member), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, description = "forbidden (not an owner), two_factor_required, enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 404, description = "no such organisation or account", body = ApiErrorBody),
        (status = 409, description = "already_member", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn add_member(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AddMemberRequest>,
) -> ApiResult<Response> {
    let role = parse_role(&req.role)?;
    let member = s.twostep.add_member(&me, &id, &req.email, role, &ctx).await?;
    Ok((StatusCode::CREATED, Json(Member::from(member))).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RoleRequest {
    /// `owner` or `member`.
    role: String,
}

/// Change a member's role (owners only); transfer ownership by promoting
/// another member, then stepping down. The last owner cannot step down.
#[utoipa::path(put, path = "/api/v1/orgs/{id}/members/{account_id}", tag = "organisations", request_body = RoleRequest,
    security(("bearer" = [])), params(("id" = String, Path), ("account_id" = String, Path)),
    responses((status = 204), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, description = "forbidden, two_factor_required, enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, description = "last_owner", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn set_role(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path((id, account_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<RoleRequest>,
) -> ApiResult<StatusCode> {
    let role = parse_role(&req.role)?;
    s.twostep.set_member_role(&me, &id, &account_id, role, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member (owners), or leave (your own account id).
#[utoipa::path(delete, path = "/api/v1/orgs/{id}/members/{account_id}", tag = "organisations",
    security(("bearer" = [])), params(("id" = String, Path), ("account_id" = String, Path)),
    responses((status = 204), (status = 401, body = ApiErrorBody),
        (status = 403, description = "forbidden, two_factor_required, enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, description = "last_owner", body = ApiErrorBody)))]
pub async fn remove_member(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path((id, account_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.twostep.remove_member(&me, &id, &account_id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct PolicyRequest {
    require_two_factor: bool,
}

/// The "Require two-factor" switch (owners only); refused while an owner
/// lacks 2FA, naming them in `error.owners`.
#[utoipa::path(put, path = "/api/v1/orgs/{id}/two-factor-policy", tag = "organisations", request_body = PolicyRequest,
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = PolicyRequest), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, description = "forbidden, two_factor_required, enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 404, body = ApiErrorBody),
        (status = 409, description = "owners_without_two_factor, with `owners`", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn set_policy(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PolicyRequest>,
) -> ApiResult<Json<PolicyRequest>> {
    let require_two_factor = s.twostep.set_org_two_factor(&me, &id, req.require_two_factor, &ctx).await?;
    Ok(Json(PolicyRequest { require_two_factor }))
}
