//! Who must have 2FA, as the browser meets it: the enrolment landing page
//! an enrolment-only session is held on, the operator's mandate banner,
//! and the "Why am I seeing this?" page.
//!
//! An `enrollment` session (policy requires 2FA the account lacks) reaches
//! only factor set-up, re-auth, e-mail verification, sign-out, leaving an
//! organisation and the two pages here; `WebSession` sends every other page
//! to the landing page, which lists the organisations it may leave.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use twostep_domain::policy::Mandate;
use twostep_domain::policy::store::OrgRecord;
use twostep_domain::sessions::SignedIn;
use twostep_domain::sessions::store::SessionKind;
use twostep_domain::time::Timestamp;

use super::error::internal;
use super::pages::{Nav, OrgRow};
use super::{WebSession, render, see_other};
use crate::AppState;

/// Where an enrolment-only session is sent.
pub const REQUIRED_PATH: &str = "/security/two-factor/required";
/// The explanation of the operator's mandate.
pub const WHY_PATH: &str = "/two-factor/why";

/// The pages an enrolment-only session may reach: setting up a first
/// factor (app or phone), re-auth, e-mail verification, sign-out and the
/// explanations.
pub fn enrollment_may_reach(path: &str) -> bool {
    matches!(
        path,
        REQUIRED_PATH
            | WHY_PATH
            | "/security/phone"
            | "/security/phone/verify"
            | "/security/email/verification"
            | "/security/email/confirm"
            | "/reauth"
            | "/reauth/challenge"
            | "/logout"
            // Meets the operator's mandate when `policy.allowlist_satisfies` is on;
            // the domain refuses it otherwise.
            | "/security/ip-allowlist"
            | "/security/keys/new"
            | "/security/keys/finish"
    ) || path.starts_with("/security/totp/")
        || is_leave(path)
}

/// `/orgs/{id}/leave`: a member may always leave, so leaving is allowed
/// where set-up is.
fn is_leave(path: &str) -> bool {
    path.strip_prefix("/orgs/")
        .and_then(|rest| rest.strip_suffix("/leave"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// "2026-11-23", or "2026-11-23 09:30 UTC" when the time is not midnight.
pub fn human_date(t: Timestamp) -> String {
    let s = t.rfc3339();
    match (s.get(..10), s.get(11..16)) {
        (Some(day), Some("00:00")) => day.to_owned(),
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => s,
    }
}

/// The banner's date: set while the operator's mandate is upcoming and the
/// account has no second factor (nor an allow-list that meets the mandate).
pub async fn banner(state: &AppState, me: &SignedIn) -> Result<Option<String>, Response> {
    let Mandate::Upcoming { from } = state.twostep.operator_mandate() else { return Ok(None) };
    match state.twostep.authenticators(&me.account.id).await {
        Ok(factors) if factors.is_empty() => {}
        Ok(_) => return Ok(None),
        Err(e) => return Err(internal(&e)),
    }
    match state.twostep.mandate_met_by_allowlist(&me.account.id).await {
        Ok(true) => Ok(None),
        Ok(false) => Ok(Some(human_date(from))),
        Err(e) => Err(internal(&e)),
    }
}

#[derive(Template)]
#[template(path = "two_factor_required.html")]
pub struct Required {
    pub nav: Option<Nav>,
    /// Held here by policy (an enrolment-only session), rather than shown
    /// because one organisation needs it.
    pub enrolling: bool,
    /// The organisation that asks for it, when one does (with a "Leave" button).
    pub org: Option<OrgRow>,
    /// The organisations that hold an enrolment-only session here, each
    /// with a "Leave" button: leaving is allowed where set-up is.
    pub leavable: Vec<OrgRow>,
    pub notice: Option<&'static str>,
    pub phone_available: bool,
}

fn row(o: OrgRecord) -> OrgRow {
    OrgRow { id: o.id, name: o.name, role: "member", require_two_factor: o.require_two_factor }
}

#[derive(serde::Deserialize)]
pub struct RequiredQuery {
    notice: Option<String>,
}

/// The landing page of an enrolment-only session.
pub async fn required_page(State(s): State<AppState>, session: WebSession, Query(q): Query<RequiredQuery>) -> Response {
    if session.me.session.kind != SessionKind::Enrollment {
        return see_other("/security");
    }
    let leavable = match s.twostep.orgs().orgs_requiring_two_factor(&session.me).await {
        Ok(orgs) => orgs.into_iter().map(row).collect(),
        Err(e) => return internal(&e),
    };
    let notice = match q.notice.as_deref() {
        Some("left") => Some("You left the organisation."),
        Some("last_owner") => {
            Some("You are the last owner of that organisation: make another member an owner before you leave.")
        }
        _ => None,
    };
    render(
        StatusCode::OK,
        &Required {
            nav: session.nav(),
            enrolling: true,
            org: None,
            leavable,
            notice,
            phone_available: s.twostep.settings().phone_enabled,
        },
    )
}

/// What a member without 2FA sees of an organisation that requires it.
pub fn org_requires(s: &AppState, session: &WebSession, org: Option<OrgRecord>) -> Response {
    render(
        StatusCode::FORBIDDEN,
        &Required {
            nav: session.nav(),
            enrolling: false,
            org: org.map(row),
            leavable: Vec::new(),
            notice: None,
            phone_available: s.twostep.settings().phone_enabled,
        },
    )
}

#[derive(Template)]
#[template(path = "mandate.html")]
pub struct Why {
    pub nav: Option<Nav>,
    /// `none`, `upcoming` or `enforced`.
    pub mandate: &'static str,
    /// The date it applies from, when the operator set one.
    pub from: Option<String>,
    pub enabled: bool,
    pub enrolling: bool,
}

/// "Why am I seeing this?"
pub async fn why_page(State(s): State<AppState>, session: WebSession) -> Response {
    let enabled = match s.twostep.authenticators(&session.me.account.id).await {
        Ok(f) => !f.is_empty(),
        Err(e) => return internal(&e),
    };
    let settings = s.twostep.settings();
    let (mandate, from) = match s.twostep.operator_mandate() {
        Mandate::None => ("none", None),
        Mandate::Upcoming { from } => ("upcoming", Some(human_date(from))),
        Mandate::Enforced => ("enforced", settings.two_factor_enforce_from.map(human_date)),
    };
    render(
        StatusCode::OK,
        &Why {
            nav: session.nav(),
            mandate,
            from,
            enabled,
            enrolling: session.me.session.kind == SessionKind::Enrollment,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrolment_sessions_reach_only_set_up() {
        for ok in
            [REQUIRED_PATH, "/security/totp/new", "/security/totp/confirm", "/security/phone", "/logout", "/reauth"]
                .into_iter()
                .chain(["/security/keys/new", "/security/keys/finish"])
        {
            assert!(enrollment_may_reach(ok), "{ok}");
        }
        assert!(enrollment_may_reach("/orgs/abc/leave"), "leaving is allowed where set-up is");
        for no in [
            "/security",
            "/orgs",
            "/orgs/x",
            "/security/phone/remove",
            "/security/log",
            "/security/password",
            "/security/keys/x/rename",
            "/orgs//leave",
            "/orgs/x/members/y/leave",
            "/orgs/x/members",
        ] {
            assert!(!enrollment_may_reach(no), "{no}");
        }
    }

    #[test]
    fn dates_drop_midnight() {
        assert_eq!(human_date(Timestamp::from_secs(1_799_971_200)), "2027-01-15");
        assert_eq!(human_date(Timestamp::from_secs(1_800_000_000)), "2027-01-15 08:00 UTC");
    }
}
