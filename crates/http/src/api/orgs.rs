//! Organisations (seed 003): members, roles and the "Require two-factor"
//! switch; membership by invitation (issue 14).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use twostep_domain::policy::store::{InvitationView, MemberRecord, OrgRecord, OrgRole};

use super::ApiErrorBody;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiSession, Ctx, SetupSession};

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrgResponse {
    id: String,
    name: String,
    require_two_factor: bool,
    /// Members may register only device-bound keys, no synced passkeys.
    refuse_synced_passkeys: bool,
}

impl From<OrgRecord> for OrgResponse {
    fn from(o: OrgRecord) -> Self {
        Self {
            id: o.id,
            name: o.name,
            require_two_factor: o.require_two_factor,
            refuse_synced_passkeys: o.refuse_synced_passkeys,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MyOrg {
    id: String,
    name: String,
    require_two_factor: bool,
    /// Members may register only device-bound keys, no synced passkeys.
    refuse_synced_passkeys: bool,
    /// `owner` or `member`.
    role: &'static str,
}

impl MyOrg {
    fn of(o: OrgRecord, role: OrgRole) -> Self {
        Self {
            id: o.id,
            name: o.name,
            require_two_factor: o.require_two_factor,
            refuse_synced_passkeys: o.refuse_synced_passkeys,
            role: role.as_str(),
        }
    }
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
    /// Members may register only device-bound keys, no synced passkeys.
    refuse_synced_passkeys: bool,
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
    let org = s.twostep.orgs().create_org(&me, &req.name, &ctx).await?;
    Ok((StatusCode::CREATED, Json(OrgResponse::from(org))).into_response())
}

/// The caller's organisations. An enrolment-only session may list them
/// too, so it can find the one it wants to leave.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "organisations", security(("bearer" = [])),
    responses((status = 200, body = Vec<MyOrg>), (status = 401, body = ApiErrorBody)))]
pub async fn list(State(s): State<AppState>, SetupSession(me): SetupSession) -> ApiResult<Json<Vec<MyOrg>>> {
    let orgs = s.twostep.orgs().orgs_of(&me).await?;
    Ok(Json(orgs.into_iter().map(|(o, role)| MyOrg::of(o, role)).collect()))
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
    let view = s.twostep.orgs().org_view(&me, &id).await?;
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
        refuse_synced_passkeys: view.org.refuse_synced_passkeys,
        members,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct InviteRequest {
    email: String,
    /// `owner` or `member`.
    role: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InvitationSent {
    invitation_id: String,
    email: String,
    role: &'static str,
    /// Always `pending`.
    status: &'static str,
}

/// Invite an e-mail address (owners only). The same 202 for every
/// well-formed address, whether or not it has an account: nobody becomes a
/// member without accepting. Capped at 20 invitations per owner and
/// organisation per hour (429 with `Retry-After`); inviting an address
/// again renews its invitation.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/members", tag = "organisations", request_body = InviteRequest,
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 202, body = InvitationSent),
        (status = 400, description = "invalid_request or invalid_email", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody),
        (status = 403, description = "forbidden (not an owner), two_factor_required, enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 404, description = "no such organisation, or not a member", body = ApiErrorBody),
        (status = 409, description = "already_member: the address is a member's (owners see the members anyway)", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody),
        (status = 429, description = "too_many_requests, with `Retry-After`", body = ApiErrorBody)))]
pub async fn invite(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<InviteRequest>,
) -> ApiResult<Response> {
    let role = parse_role(&req.role)?;
    let sent = s.twostep.orgs().invite(&me, &id, &req.email, role, &ctx).await?;
    let body = InvitationSent {
        invitation_id: sent.id,
        email: sent.email.to_string(),
        role: sent.role.as_str(),
        status: "pending",
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PendingInvitation {
    invitation_id: String,
    email: String,
    role: &'static str,
    /// The inviting owner's e-mail address.
    invited_by: String,
    expires_at: String,
}

/// The organisation's pending invitations (owners only).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/invitations", tag = "organisations", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<PendingInvitation>), (status = 401, body = ApiErrorBody),
        (status = 403, description = "forbidden, two_factor_required or enrollment_required", body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn invitations(
    State(s): State<AppState>,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<PendingInvitation>>> {
    let list = s.twostep.orgs().org_invitations(&me, &id).await?;
    Ok(Json(
        list.into_iter()
            .map(|v| PendingInvitation {
                invitation_id: v.invitation.id,
                email: v.invitation.email.to_string(),
                role: v.invitation.role.as_str(),
                invited_by: v.invited_by_email.to_string(),
                expires_at: v.invitation.expires_at.rfc3339(),
            })
            .collect(),
    ))
}

/// Revoke a pending invitation (owners only).
#[utoipa::path(delete, path = "/api/v1/orgs/{id}/invitations/{invitation_id}", tag = "organisations",
    security(("bearer" = [])), params(("id" = String, Path), ("invitation_id" = String, Path)),
    responses((status = 204), (status = 401, body = ApiErrorBody),
        (status = 403, description = "forbidden, two_factor_required, enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 404, description = "no such organisation or invitation", body = ApiErrorBody)))]
pub async fn revoke_invitation(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path((id, invitation_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.twostep.orgs().revoke_invitation(&me, &id, &invitation_id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InvitingOrg {
    id: String,
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MyInvitation {
    invitation_id: String,
    org: InvitingOrg,
    /// `owner` or `member`.
    role: &'static str,
    /// The inviting owner's e-mail address.
    invited_by: String,
    expires_at: String,
    /// `false` while the caller's e-mail address is unverified: accepting
    /// and declining answer `403 email_unverified` until it is verified.
    can_accept: bool,
}

impl MyInvitation {
    fn new(v: InvitationView, can_accept: bool) -> Self {
        Self {
            invitation_id: v.invitation.id,
            org: InvitingOrg { id: v.invitation.org_id, name: v.org_name },
            role: v.invitation.role.as_str(),
            invited_by: v.invited_by_email.to_string(),
            expires_at: v.invitation.expires_at.rfc3339(),
            can_accept,
        }
    }
}

/// Pending invitations to the caller's e-mail address (they last 7 days).
/// Listed whether or not the address is verified; only a verified one may
/// answer them (`can_accept`).
#[utoipa::path(get, path = "/api/v1/me/invitations", tag = "organisations", security(("bearer" = [])),
    responses((status = 200, body = Vec<MyInvitation>), (status = 401, body = ApiErrorBody),
        (status = 403, description = "enrollment_required", body = ApiErrorBody)))]
pub async fn my_invitations(
    State(s): State<AppState>,
    ApiSession(me): ApiSession,
) -> ApiResult<Json<Vec<MyInvitation>>> {
    let list = s.twostep.orgs().my_invitations(&me).await?;
    let can_accept = me.account.email_verified_at.is_some();
    Ok(Json(list.into_iter().map(|v| MyInvitation::new(v, can_accept)).collect()))
}

/// Accept an invitation to the caller's address: the caller becomes a
/// member with the invited role, under the organisation's 2FA rule. The
/// address must be verified first (sign-up does not prove it): until then
/// `403 email_unverified`, and nothing changes.
#[utoipa::path(post, path = "/api/v1/me/invitations/{id}/accept", tag = "organisations",
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 201, body = MyOrg), (status = 401, body = ApiErrorBody),
        (status = 403, description = "email_unverified (verify the account's e-mail address first), enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 404, description = "no pending invitation with this id to the caller's address", body = ApiErrorBody),
        (status = 409, description = "already_member", body = ApiErrorBody)))]
pub async fn accept_invitation(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (org, role) = s.twostep.orgs().accept_invitation(&me, &id, &ctx).await?;
    let body = MyOrg::of(org, role);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Decline an invitation to the caller's address. Like accepting, only
/// from a verified address (`403 email_unverified`): an account holding an
/// address it does not own must not void the real invitee's invitation.
#[utoipa::path(post, path = "/api/v1/me/invitations/{id}/decline", tag = "organisations",
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ApiErrorBody),
        (status = 403, description = "email_unverified (verify the account's e-mail address first), enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 404, description = "no pending invitation with this id to the caller's address", body = ApiErrorBody)))]
pub async fn decline_invitation(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.twostep.orgs().decline_invitation(&me, &id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
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
    s.twostep.orgs().set_member_role(&me, &id, &account_id, role, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Leaving from an enrolment-only session that no rule holds any more.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LeftResponse {
    /// The new full session's token; the one used for this request no
    /// longer works (SEC-52).
    session_token: String,
}

/// Remove a member (owners), or leave (your own account id). Leaving is
/// always possible, from an enrolment-only session too; when no rule then
/// requires 2FA of the account, that session ends for a full one under a
/// new token (200 with `session_token`; otherwise 204).
#[utoipa::path(delete, path = "/api/v1/orgs/{id}/members/{account_id}", tag = "organisations",
    security(("bearer" = [])), params(("id" = String, Path), ("account_id" = String, Path)),
    responses((status = 204),
        (status = 200, description = "left from an enrolment-only session, which ended for a full one", body = LeftResponse),
        (status = 401, body = ApiErrorBody),
        (status = 403, description = "forbidden, two_factor_required, enrollment_required (removing someone else) or csrf_failed", body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, description = "last_owner", body = ApiErrorBody)))]
pub async fn remove_member(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SetupSession(me): SetupSession,
    headers: HeaderMap,
    Path((id, account_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    if account_id == me.account.id.as_str() {
        return Ok(match s.twostep.leave_org(&me, &id, &ctx).await? {
            Some(token) => {
                let body = LeftResponse { session_token: token.expose().to_owned() };
                super::rotated_session(&s, &headers, Some(&token), (StatusCode::OK, Json(body)).into_response())
            }
            None => StatusCode::NO_CONTENT.into_response(),
        });
    }
    if me.session.kind == twostep_domain::sessions::store::SessionKind::Enrollment {
        return Err(ApiError::EnrollmentRequired);
    }
    s.twostep.remove_member(&me, &id, &account_id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct PolicyRequest {
    require_two_factor: bool,
}

/// The rule as set, and what it meant for the members.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PolicyResponse {
    require_two_factor: bool,
    /// Members without a second factor when the rule was set.
    members_without_two_factor: usize,
    /// Of those, how many were e-mailed now: each member is told once per
    /// organisation, however often the rule is turned on.
    members_notified: usize,
}

/// The "Require two-factor" switch (owners only); refused while an owner
/// lacks 2FA, naming them in `error.owners`. Turning it on e-mails the
/// members without 2FA (once each).
#[utoipa::path(put, path = "/api/v1/orgs/{id}/two-factor-policy", tag = "organisations", request_body = PolicyRequest,
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = PolicyResponse), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
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
) -> ApiResult<Json<PolicyResponse>> {
    let switch = s.twostep.orgs().set_org_two_factor(&me, &id, req.require_two_factor, &ctx).await?;
    Ok(Json(PolicyResponse {
        require_two_factor: switch.required,
        members_without_two_factor: switch.lacking,
        members_notified: switch.told,
    }))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct PasskeyPolicy {
    /// Refuse synced (backup-eligible) passkeys when members register a
    /// key; keys already registered stay.
    refuse_synced_passkeys: bool,
}

/// The "Refuse synced passkeys" switch (owners only). While on, a member's
/// registration of a backup-eligible credential is refused with
/// `400 synced_key_refused`; device-bound security keys and passkeys are
/// accepted. The operator may refuse them for everyone
/// (`webauthn.allow_synced = false`).
#[utoipa::path(put, path = "/api/v1/orgs/{id}/passkey-policy", tag = "organisations", request_body = PasskeyPolicy,
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = PasskeyPolicy), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, description = "forbidden, two_factor_required, enrollment_required or csrf_failed", body = ApiErrorBody),
        (status = 404, body = ApiErrorBody),
        (status = 413, body = ApiErrorBody), (status = 415, body = ApiErrorBody)))]
pub async fn set_passkey_policy(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiSession(me): ApiSession,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PasskeyPolicy>,
) -> ApiResult<Json<PasskeyPolicy>> {
    let refuse = s.twostep.orgs().set_org_refuse_synced_passkeys(&me, &id, req.refuse_synced_passkeys, &ctx).await?;
    Ok(Json(PasskeyPolicy { refuse_synced_passkeys: refuse }))
}
