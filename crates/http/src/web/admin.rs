//! The admin pages (issue 6): users with their 2FA status and last sign-in,
//! search, resetting 2FA and disabling accounts behind re-auth and a
//! confirmation page, and the audit log with filters.
//!
//! To anyone who is not an administrator `/admin` does not exist (the 404
//! page); an administrator without 2FA is sent to set it up first (SEC-62).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use twostep_domain::ids::AccountId;
use twostep_domain::policy::admin::{AdminError, AuditSearch};
use twostep_domain::policy::store::{AccountQuery, AccountSummary};

use super::error::{self, Reply, internal, not_found_page};
use super::pages::{Nav, human_time};
use super::{CsrfForm, SignedForm, WebSession, encode, render, see_other};
use crate::AppState;
use crate::extract::Ctx;

/// How many users and log entries a page shows.
const PAGE_ROWS: i64 = 200;

pub struct UserRow {
    pub id: String,
    pub email: String,
    /// The factor kinds, for people: "authenticator app, phone"; empty
    /// when 2FA is off.
    pub factors: String,
    pub created: String,
    pub last_sign_in: String,
    pub disabled: bool,
    pub admin: bool,
    /// The administrator's own row: no actions here.
    pub me: bool,
}

fn user_row(s: AccountSummary, me: &AccountId) -> UserRow {
    let a = s.account;
    UserRow {
        me: &a.id == me,
        id: a.id.to_string(),
        email: a.email.to_string(),
        factors: s.factor_kinds.iter().map(|k| twostep_domain::factors::kind_label(k)).collect::<Vec<_>>().join(", "),
        created: human_time(a.created_at),
        last_sign_in: a.last_sign_in_at.map_or_else(|| "never".to_owned(), human_time),
        disabled: a.disabled_at.is_some(),
        admin: a.admin_since.is_some(),
    }
}

#[derive(Template)]
#[template(path = "admin_users.html")]
pub struct UsersPage {
    pub nav: Option<Nav>,
    pub q: String,
    /// `""`, `"on"` or `"off"`.
    pub two_factor: String,
    pub users: Vec<UserRow>,
    pub notice: Option<String>,
    /// More users matched than the page shows.
    pub truncated: bool,
}

pub struct AuditRow {
    pub when: String,
    pub event: String,
    pub email: String,
    pub actor: String,
    pub ok: bool,
    pub ip: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
pub struct AuditPage {
    pub nav: Option<Nav>,
    pub user: String,
    pub event: String,
    pub since: String,
    pub until: String,
    pub entries: Vec<AuditRow>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_confirm.html")]
pub struct ConfirmPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub heading: &'static str,
    pub email: String,
    pub text: &'static str,
    pub action: String,
    pub button: &'static str,
}

const RESET_WHEN_REQUIRED: &str = "Every authenticator, phone and recovery code of this account will be removed, \
     all its sessions and remembered browsers signed out, and its factor lock-outs cleared. The user is told by \
     e-mail (at a verified address). Two-factor authentication is required of this account (by the operator or \
     an organisation it belongs to), so after its password it must set two-factor up again before doing anything \
     else.";

/// What an admin may do to a user, as named in the URL.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    ResetTwoFactor,
    Disable,
    Enable,
}

impl Action {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "reset-2fa" => Self::ResetTwoFactor,
            "disable" => Self::Disable,
            "enable" => Self::Enable,
            _ => return None,
        })
    }

    fn slug(self) -> &'static str {
        match self {
            Self::ResetTwoFactor => "reset-2fa",
            Self::Disable => "disable",
            Self::Enable => "enable",
        }
    }

    fn confirm(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::ResetTwoFactor => (
                "Reset two-factor authentication",
                "Every authenticator, phone and recovery code of this account will be removed, all its sessions \
                 and remembered browsers signed out, and its factor lock-outs cleared. The user is told by e-mail \
                 (at a verified address) and signs in with their password alone until they set up two-factor \
                 authentication again.",
                "Reset two-factor authentication",
            ),
            Self::Disable => (
                "Disable account",
                "The account can no longer sign in, and all its sessions end. You can enable it again later.",
                "Disable account",
            ),
            Self::Enable => ("Enable account", "The account can sign in again.", "Enable account"),
        }
    }

    fn done(self, email: &str) -> String {
        match self {
            Self::ResetTwoFactor => {
                format!("Two-factor authentication of {email} was reset and all its sessions ended.")
            }
            Self::Disable => format!("{email} is disabled and was signed out."),
            Self::Enable => format!("{email} is enabled again."),
        }
    }
}

/// Where an admin error leads a browser.
fn admin_error(e: AdminError, back_to: &str) -> Response {
    error::admin(e, back_to).or_page(|r| internal(&r.message))
}

#[derive(Deserialize)]
pub struct UsersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    two_factor: String,
    /// After an action: which one, and on whom.
    done: Option<String>,
    id: Option<String>,
}

pub async fn users_page(State(s): State<AppState>, session: WebSession, Query(q): Query<UsersQuery>) -> Response {
    let me = &session.me;
    let two_factor = match q.two_factor.as_str() {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    };
    let text = Some(q.q.trim().to_owned()).filter(|t| !t.is_empty());
    let query = AccountQuery { text, two_factor, limit: PAGE_ROWS + 1 };
    let mut users = match s.twostep.admin_users(me, &query).await {
        Ok(u) => u,
        Err(e) => return admin_error(e, "/admin"),
    };
    let truncated = users.len() > usize::try_from(PAGE_ROWS).unwrap_or(usize::MAX);
    users.truncate(usize::try_from(PAGE_ROWS).unwrap_or(usize::MAX));
    let notice = match (q.done.as_deref().and_then(Action::parse), q.id) {
        (Some(action), Some(id)) => match s.twostep.admin_user(me, &AccountId::from_stored(id)).await {
            Ok(u) => Some(action.done(u.account.email.as_str())),
            Err(_) => None,
        },
        _ => None,
    };
    let page = UsersPage {
        nav: session.nav(),
        q: q.q.trim().to_owned(),
        two_factor: two_factor.map_or("", |on| if on { "on" } else { "off" }).to_owned(),
        users: users.into_iter().map(|u| user_row(u, &me.account.id)).collect(),
        notice,
        truncated,
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

fn non_empty(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

pub async fn audit_page(State(s): State<AppState>, session: WebSession, Query(q): Query<AuditQuery>) -> Response {
    let search = AuditSearch {
        user: non_empty(&q.user),
        event: non_empty(&q.event),
        since: non_empty(&q.since),
        until: non_empty(&q.until),
        limit: PAGE_ROWS,
    };
    let (entries, error) = match s.twostep.admin_audit(&session.me, &search).await {
        Ok(entries) => (entries, None),
        Err(e) => match error::admin(e, "/admin/audit") {
            Reply::Inline(r) => (Vec::new(), Some(r.message)),
            Reply::Page(res) => return res,
        },
    };
    let entries = entries
        .into_iter()
        .map(|e| AuditRow {
            when: human_time(e.at),
            event: e.kind,
            email: e.email.unwrap_or_else(|| "-".to_owned()),
            actor: e.actor,
            ok: e.success,
            ip: e.ip,
            details: e.details,
        })
        .collect();
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let page = AuditPage {
        nav: session.nav(),
        user: q.user.trim().to_owned(),
        event: q.event.trim().to_owned(),
        since: q.since.trim().to_owned(),
        until: q.until.trim().to_owned(),
        entries,
        error,
    };
    render(status, &page)
}

/// The confirmation page of an action, shown once re-auth is recent (else
/// the re-auth page first, which comes back here).
pub async fn confirm_page(
    State(s): State<AppState>,
    session: WebSession,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let Some(action) = Action::parse(&action) else { return not_found_page() };
    let here = format!("/admin/users/{}/{}", encode(&id), action.slug());
    let target = match s.twostep.admin_user(&session.me, &AccountId::from_stored(id)).await {
        Ok(t) => t,
        Err(e) => return admin_error(e, &here),
    };
    if target.account.id == session.me.account.id {
        return admin_error(AdminError::OwnAccount, &here);
    }
    match s.twostep.reauth_needs(&session.me).await {
        Ok((false, false)) => {}
        Ok(_) => return admin_error(AdminError::ReauthRequired, &here),
        Err(e) => return internal(&e),
    }
    let (heading, mut text, button) = action.confirm();
    // The operator's mandate or an organisation's rule: after the reset the
    // password leads straight to setting two-factor up again.
    if action == Action::ResetTwoFactor && s.twostep.two_factor_required(&target.account.id).await.unwrap_or(false) {
        text = RESET_WHEN_REQUIRED;
    }
    let page = ConfirmPage {
        nav: session.nav(),
        csrf: session.csrf.clone(),
        heading,
        email: target.account.email.to_string(),
        text,
        action: here,
        button,
    };
    render(StatusCode::OK, &page)
}

pub async fn act(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((id, action)): Path<(String, String)>,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    let Some(action) = Action::parse(&action) else { return not_found_page() };
    let here = format!("/admin/users/{}/{}", encode(&id), action.slug());
    let id = AccountId::from_stored(id);
    let me = &session.me;
    let done = match action {
        Action::ResetTwoFactor => s.twostep.admin_reset_two_factor(me, &id, &ctx).await,
        Action::Disable => s.twostep.admin_set_disabled(me, &id, true, &ctx).await,
        Action::Enable => s.twostep.admin_set_disabled(me, &id, false, &ctx).await,
    };
    match done {
        Ok(target) => {
            let q = encode(target.email.as_str());
            see_other(&format!("/admin?q={q}&done={}&id={}", action.slug(), encode(target.id.as_str())))
        }
        Err(e) => admin_error(e, &here),
    }
}
