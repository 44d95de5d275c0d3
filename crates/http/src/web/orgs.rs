//! Organisation pages (seed 003, issue 14): the list with the invitations
//! waiting for the signed-in account (Accept, Decline; until its address is
//! verified, a link to verify it instead) and a "Create
//! organisation" form, and one organisation with its members, their 2FA
//! status, the owners' invitations (Invite, Revoke), member management and
//! the "Require two-factor" switch. "Leave" works from an enrolment-only
//! session too (`/orgs/{id}/leave`).
//!
//! Non-members get the same 404 as for an id that does not exist. Every
//! change is a CSRF-checked POST that redirects back with a notice, or
//! shows the page again with the reason it was refused.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use twostep_domain::policy::orgs::{OrgError, OrgView};
use twostep_domain::policy::store::OrgRole;

use super::error::{self, Refusal, internal};
use super::pages::{Confirm, Nav, OrgRow, human_time};
use super::{CsrfForm, SignedForm, WebSession, encode, policy, render, see_other, with_cookie};
use crate::extract::Ctx;
use crate::{AppState, cookies};

/// An invitation waiting for the signed-in account.
pub struct InvitationRow {
    pub id: String,
    pub org: String,
    pub role: &'static str,
    pub invited_by: String,
    pub expires: String,
}

/// A pending invitation of the organisation, as its owners see it.
pub struct PendingRow {
    pub id: String,
    pub email: String,
    pub role: &'static str,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "orgs.html")]
pub struct OrgList {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub orgs: Vec<OrgRow>,
    pub invitations: Vec<InvitationRow>,
    /// Whether the account's address is verified: only then may it answer
    /// invitations, otherwise each row says so and links to Security.
    pub email_verified: bool,
    /// What was typed in the create form, shown again after an error.
    pub name: String,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
}

pub struct MemberRow {
    pub account_id: String,
    pub email: String,
    pub role: &'static str,
    pub owner: bool,
    pub two_factor: bool,
    /// The signed-in account's own row.
    pub me: bool,
}

#[derive(Template)]
#[template(path = "org.html")]
#[expect(clippy::struct_excessive_bools, reason = "independent switches the page shows, not a state machine")]
pub struct OrgPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub id: String,
    pub name: String,
    pub require_two_factor: bool,
    /// Members may not register synced (backup-eligible) passkeys.
    pub refuse_synced_passkeys: bool,
    /// Whether the signed-in account is an owner (and may manage).
    pub owner: bool,
    pub members: Vec<MemberRow>,
    /// Pending invitations (shown to owners).
    pub invitations: Vec<PendingRow>,
    /// How many members there are in all, whatever the filter.
    pub total: usize,
    /// "Show only members without 2FA" is on.
    pub without_only: bool,
    /// Owners without 2FA, comma-separated: why "Require two-factor" is disabled.
    pub blocked: Option<String>,
    /// Members without 2FA, whatever the filter: what the switch would mean.
    pub lacking: usize,
    pub notice: Option<String>,
    pub error: Option<String>,
    /// What was typed in the invite form, shown again after an error.
    pub add_email: String,
    /// The role picked in the invite form: `member` or `owner`.
    pub add_role: &'static str,
}

pub(super) fn org_path(id: &str) -> String {
    format!("/orgs/{}", encode(id))
}

fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "created" => "Organisation created. You are its owner.",
        "invited" => "Invitation sent. They become a member once they accept it.",
        "revoked" => "Invitation revoked.",
        "accepted" => "You joined the organisation.",
        "declined" => "Invitation declined.",
        "role" => "Role changed.",
        "removed" => "Member removed.",
        "required" => "Two-factor authentication is now required of every member.",
        "not_required" => "Two-factor authentication is no longer required.",
        "synced_refused" => "Members can no longer add synced passkeys. Keys they already have stay.",
        "synced_allowed" => "Members may add synced passkeys again.",
        "left" => "You left the organisation.",
        _ => return None,
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    notice: Option<String>,
}

pub async fn list(State(s): State<AppState>, session: WebSession, Query(q): Query<ListQuery>) -> Response {
    let notice = q.notice.as_deref().and_then(notice_text);
    list_view(&s, &session, StatusCode::OK, String::new(), notice, None).await
}

async fn list_view(
    s: &AppState,
    session: &WebSession,
    status: StatusCode,
    name: String,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Response {
    let orgs = match s.twostep.orgs().orgs_of(&session.me).await {
        Ok(o) => o,
        Err(e) => return internal(&e),
    };
    let orgs = orgs
        .into_iter()
        .map(|(o, role)| OrgRow {
            id: o.id,
            name: o.name,
            role: role.as_str(),
            require_two_factor: o.require_two_factor,
        })
        .collect();
    let invitations = match s.twostep.orgs().my_invitations(&session.me).await {
        Ok(list) => list
            .into_iter()
            .map(|v| InvitationRow {
                id: v.invitation.id,
                org: v.org_name,
                role: v.invitation.role.as_str(),
                invited_by: v.invited_by_email.to_string(),
                expires: human_time(v.invitation.expires_at),
            })
            .collect(),
        Err(e) => return internal(&e),
    };
    let page = OrgList {
        nav: session.nav(),
        csrf: session.csrf.clone(),
        orgs,
        invitations,
        email_verified: session.me.account.email_verified_at.is_some(),
        name,
        notice,
        error,
    };
    render(status, &page)
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

pub async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, f): SignedForm<CreateForm>,
) -> Response {
    match s.twostep.orgs().create_org(&session.me, &f.name, &ctx).await {
        Ok(org) => see_other(&format!("{}?notice=created", org_path(&org.id))),
        Err(e) => match error::org(&e) {
            Some(r) => list_view(&s, &session, r.status, f.name, None, Some(r.message)).await,
            None => internal(&e),
        },
    }
}

#[derive(Deserialize)]
pub struct ShowQuery {
    /// `false`: only members without 2FA.
    two_factor: Option<String>,
    notice: Option<String>,
    /// After "Require two-factor": members without it, and how many were
    /// mailed now.
    lacking: Option<usize>,
    told: Option<usize>,
}

/// "1 member", "3 members".
fn members(n: usize) -> String {
    if n == 1 { "1 member".to_owned() } else { format!("{n} members") }
}

/// What turning the rule on did, in words.
fn required_notice(lacking: usize, told: usize) -> String {
    let said = "Two-factor authentication is now required of every member.";
    if lacking == 0 {
        return format!("{said} Every member already has it.");
    }
    let mailed = match told {
        0 => "each was e-mailed about it before".to_owned(),
        1 if lacking == 1 => "they were e-mailed about it".to_owned(),
        n => format!("{} e-mailed about it now", members(n)),
    };
    format!("{said} {} without it must set it up at their next sign-in; {mailed}.", members(lacking))
}

/// How the organisation page is shown beyond its data.
pub(super) struct Shown {
    status: StatusCode,
    without_only: bool,
    notice: Option<String>,
    error: Option<String>,
    add_email: String,
    add_role: &'static str,
}

impl Shown {
    fn refused(self, r: Refusal) -> Self {
        Self { status: r.status, error: Some(r.message), ..self }
    }

    pub(super) fn ok() -> Self {
        Self {
            status: StatusCode::OK,
            without_only: false,
            notice: None,
            error: None,
            add_email: String::new(),
            add_role: "member",
        }
    }
}

pub async fn show(
    State(s): State<AppState>,
    session: WebSession,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let notice = match (q.notice.as_deref(), q.lacking) {
        (Some("required"), Some(lacking)) => Some(required_notice(lacking, q.told.unwrap_or(0))),
        (key, _) => key.and_then(notice_text).map(str::to_owned),
    };
    let shown = Shown { without_only: q.two_factor.as_deref() == Some("false"), notice, ..Shown::ok() };
    org_page(&s, &session, &id, shown).await
}

async fn org_page(s: &AppState, session: &WebSession, id: &str, shown: Shown) -> Response {
    let view = match s.twostep.orgs().org_view(&session.me, id).await {
        Ok(view) => view,
        Err(e) => return org_error(s, session, id, &e).await,
    };
    let invitations = if view.my_role == OrgRole::Owner {
        match s.twostep.orgs().org_invitations(&session.me, id).await {
            Ok(list) => list
                .into_iter()
                .map(|v| PendingRow {
                    id: v.invitation.id,
                    email: v.invitation.email.to_string(),
                    role: v.invitation.role.as_str(),
                    expires: human_time(v.invitation.expires_at),
                })
                .collect(),
            Err(e) => return internal(&e),
        }
    } else {
        Vec::new()
    };
    render(shown.status, &page_of(session, view, invitations, shown))
}

fn page_of(session: &WebSession, view: OrgView, invitations: Vec<PendingRow>, shown: Shown) -> OrgPage {
    let owner = view.my_role == OrgRole::Owner;
    // The switch's reason is computed from every member, whatever the filter.
    let owners_without: Vec<String> = view
        .members
        .iter()
        .filter(|m| m.role == OrgRole::Owner && !m.two_factor_enabled)
        .map(|m| m.email.to_string())
        .collect();
    let total = view.members.len();
    let lacking = view.members.iter().filter(|m| !m.two_factor_enabled).count();
    let members = view
        .members
        .into_iter()
        .filter(|m| !(shown.without_only && m.two_factor_enabled))
        .map(|m| MemberRow {
            me: m.account_id == session.me.account.id,
            account_id: m.account_id.to_string(),
            email: m.email.to_string(),
            role: m.role.as_str(),
            owner: m.role == OrgRole::Owner,
            two_factor: m.two_factor_enabled,
        })
        .collect();
    OrgPage {
        nav: session.nav(),
        csrf: session.csrf.clone(),
        id: view.org.id,
        name: view.org.name,
        require_two_factor: view.org.require_two_factor,
        refuse_synced_passkeys: view.org.refuse_synced_passkeys,
        owner,
        members,
        invitations,
        total,
        without_only: shown.without_only,
        blocked: (!owners_without.is_empty()).then(|| owners_without.join(", ")),
        lacking,
        notice: shown.notice,
        error: shown.error,
        add_email: shown.add_email,
        add_role: shown.add_role,
    }
}

/// Errors that leave nothing of the organisation to show.
async fn org_error(s: &AppState, session: &WebSession, id: &str, e: &OrgError) -> Response {
    match e {
        OrgError::NotFound => error::org_not_found(session.nav()),
        OrgError::TwoFactorRequired => {
            let org = match s.twostep.orgs().orgs_of(&session.me).await {
                Ok(orgs) => orgs.into_iter().find(|(o, _)| o.id == id).map(|(o, _)| o),
                Err(e) => return internal(&e),
            };
            policy::org_requires(s, session, org)
        }
        other => internal(other),
    }
}

/// A refused change: the organisation page again, saying why.
pub(super) async fn refused(s: &AppState, session: &WebSession, id: &str, e: OrgError, shown: Shown) -> Response {
    match error::org(&e) {
        Some(r) => org_page(s, session, id, shown.refused(r)).await,
        None => org_error(s, session, id, &e).await,
    }
}

fn parse_role(role: &str) -> OrgRole {
    OrgRole::parse(role).unwrap_or(OrgRole::Member)
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// "Invite" (owners).
pub async fn invite(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    SignedForm(session, f): SignedForm<AddForm>,
) -> Response {
    let role = parse_role(&f.role);
    match s.twostep.orgs().invite(&session.me, &id, &f.email, role, &ctx).await {
        Ok(_) => see_other(&format!("{}?notice=invited", org_path(&id))),
        Err(e) => {
            let shown = Shown { add_email: f.email, add_role: role.as_str(), ..Shown::ok() };
            refused(&s, &session, &id, e, shown).await
        }
    }
}

/// "Revoke" on a pending invitation (owners).
pub async fn revoke_invitation(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((id, invitation)): Path<(String, String)>,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.orgs().revoke_invitation(&session.me, &id, &invitation, &ctx).await {
        Ok(()) => see_other(&format!("{}?notice=revoked", org_path(&id))),
        Err(OrgError::NotFound) if s.twostep.orgs().org_view(&session.me, &id).await.is_ok() => {
            org_page(&s, &session, &id, Shown::ok().refused(error::invitation_closed())).await
        }
        Err(e) => refused(&s, &session, &id, e, Shown::ok()).await,
    }
}

/// "Accept" on an invitation to the signed-in account.
pub async fn accept_invitation(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(invitation): Path<String>,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.orgs().accept_invitation(&session.me, &invitation, &ctx).await {
        Ok(_) => see_other("/orgs?notice=accepted"),
        Err(e) => invitation_refused(&s, &session, e).await,
    }
}

/// "Decline" on an invitation to the signed-in account.
pub async fn decline_invitation(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(invitation): Path<String>,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.orgs().decline_invitation(&session.me, &invitation, &ctx).await {
        Ok(()) => see_other("/orgs?notice=declined"),
        Err(e) => invitation_refused(&s, &session, e).await,
    }
}

async fn invitation_refused(s: &AppState, session: &WebSession, e: OrgError) -> Response {
    match error::invitation(e) {
        error::Reply::Inline(r) => list_view(s, session, r.status, String::new(), None, Some(r.message)).await,
        error::Reply::Page(res) => res,
    }
}

/// The question before leaving: from the organisation page, the page of
/// an organisation that needs 2FA the member lacks, or the enrolment page.
pub async fn confirm_leave(State(s): State<AppState>, session: WebSession, Path(id): Path<String>) -> Response {
    let org = match s.twostep.orgs().orgs_of(&session.me).await {
        Ok(orgs) => orgs.into_iter().find(|(o, _)| o.id == id),
        Err(e) => return internal(&e),
    };
    let Some((org, role)) = org else { return error::org_not_found(session.nav()) };
    let enrolling = session.me.session.kind == twostep_domain::sessions::store::SessionKind::Enrollment;
    let owner_note =
        if role == OrgRole::Owner { " If you are its only owner, make another member an owner first." } else { "" };
    // "Leave …?" and "Remove …?": asked before the change, with what follows.
    let page = Confirm {
        nav: session.nav(),
        csrf: session.csrf.clone(),
        heading: format!("Leave {}?", org.name).into(),
        text: format!(
            "You will no longer be a member of {name} and lose access to it at once. To come back, an owner must \
             invite you again.{owner_note}",
            name = org.name
        )
        .into(),
        action: format!("{}/leave", org_path(&org.id)),
        button: "Leave",
        danger: true,
        cancel: if enrolling { policy::REQUIRED_PATH.into() } else { org_path(&org.id).into() },
    };
    render(StatusCode::OK, &page)
}

/// The question before an owner removes a member.
pub async fn confirm_remove(
    State(s): State<AppState>,
    session: WebSession,
    Path((id, account)): Path<(String, String)>,
) -> Response {
    let view = match s.twostep.orgs().org_view(&session.me, &id).await {
        Ok(view) => view,
        Err(e) => return org_error(&s, &session, &id, &e).await,
    };
    if view.my_role != OrgRole::Owner {
        return refused(&s, &session, &id, OrgError::NotOwner, Shown::ok()).await;
    }
    let Some(member) = view.members.iter().find(|m| m.account_id.to_string() == account) else {
        return refused(&s, &session, &id, OrgError::NotFound, Shown::ok()).await;
    };
    let page = Confirm {
        nav: session.nav(),
        csrf: session.csrf.clone(),
        heading: format!("Remove {} from {}?", member.email, view.org.name).into(),
        text: format!(
            "{email} loses access to {name} at once and is not told by e-mail. To bring them back, invite them again.",
            email = member.email,
            name = view.org.name
        )
        .into(),
        action: format!("{}/members/{}/remove", org_path(&view.org.id), encode(&account)),
        button: "Remove",
        danger: true,
        cancel: org_path(&view.org.id).into(),
    };
    render(StatusCode::OK, &page)
}

/// "Leave": from the organisation page, the page of an organisation that
/// needs 2FA the member lacks, or the enrolment landing page. When leaving
/// ends an enrolment-only session's limits, the session cookie is renewed
/// (a privilege change, §2.11).
pub async fn leave(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    let enrolling = session.me.session.kind == twostep_domain::sessions::store::SessionKind::Enrollment;
    match s.twostep.leave_org(&session.me, &id, &ctx).await {
        Ok(Some(token)) => with_cookie(
            see_other("/orgs?notice=left"),
            cookies::set(&s.web, s.web.session_cookie(), token.expose(), None),
        ),
        Ok(None) if enrolling => see_other(&format!("{}?notice=left", policy::REQUIRED_PATH)),
        Ok(None) => see_other("/orgs?notice=left"),
        Err(OrgError::LastOwner) if !enrolling => refused(&s, &session, &id, OrgError::LastOwner, Shown::ok()).await,
        Err(OrgError::LastOwner) => see_other(&format!("{}?notice=last_owner", policy::REQUIRED_PATH)),
        Err(OrgError::NotFound) => org_error(&s, &session, &id, &OrgError::NotFound).await,
        Err(e) => internal(&e),
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

pub async fn set_role(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((id, account)): Path<(String, String)>,
    SignedForm(session, f): SignedForm<RoleForm>,
) -> Response {
    let Some(role) = OrgRole::parse(&f.role) else {
        return refused(&s, &session, &id, OrgError::NotFound, Shown::ok()).await;
    };
    match s.twostep.orgs().set_member_role(&session.me, &id, &account, role, &ctx).await {
        Ok(()) => see_other(&format!("{}?notice=role", org_path(&id))),
        Err(e) => refused(&s, &session, &id, e, Shown::ok()).await,
    }
}

/// "Remove" (owners), or "Leave" (one's own row).
pub async fn remove_member(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((id, account)): Path<(String, String)>,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    let leaving = account == session.me.account.id.to_string();
    match s.twostep.remove_member(&session.me, &id, &account, &ctx).await {
        Ok(()) if leaving => see_other("/orgs?notice=left"),
        Ok(()) => see_other(&format!("{}?notice=removed", org_path(&id))),
        Err(e) => refused(&s, &session, &id, e, Shown::ok()).await,
    }
}

super::csrf_field!(CreateForm, AddForm, RoleForm);
