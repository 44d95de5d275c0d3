//! Signed-in devices and remembered browsers (the security log: `security_log.rs`).

use axum::extract::{Path, State};
use axum::response::Response;

use super::error::{self, internal};
use super::pages::Confirm;
use super::{CsrfForm, SignedForm, WebSession, see_other};
use crate::AppState;
use crate::extract::Ctx;

const REVOKE_OTHERS: &str = "/security/sessions/revoke-others";

fn revoke_path(id: &str) -> String {
    format!("/security/sessions/{}/revoke", super::encode(id))
}

/// Signing a session out needs a fresh re-auth (SEC-54). When the button
/// finds it stale, re-auth comes back here, to the question, so the action
/// the person chose is one click away instead of lost (issue 20, item 2).
pub async fn revoke_session(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.revoke_session(&session.me, &id, &ctx).await {
        Ok(_) => see_other("/security?notice=session_revoked"),
        Err(e) => error::factor(&e, &revoke_path(&id)),
    }
}

/// The question before signing one session out, where re-auth returns to.
pub async fn revoke_session_page(State(s): State<AppState>, session: WebSession, Path(id): Path<String>) -> Response {
    let here = revoke_path(&id);
    let page = Confirm {
        nav: None,
        csrf: String::new(),
        heading: "Sign out this session".into(),
        text: "The browser or app using it is signed out at once and must sign in again.".into(),
        action: here.clone(),
        button: "Sign out",
        danger: true,
        cancel: "/security".into(),
    };
    super::security::confirm_page(&s, session, &here, page).await
}

pub async fn revoke_others(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.revoke_other_sessions(&session.me, &ctx).await {
        Ok(_) => see_other("/security?notice=others_revoked"),
        Err(e) => error::factor(&e, REVOKE_OTHERS),
    }
}

/// The question before "Sign out everywhere else", where re-auth returns to.
pub async fn revoke_others_page(State(s): State<AppState>, session: WebSession) -> Response {
    let page = Confirm {
        nav: None,
        csrf: String::new(),
        heading: "Sign out everywhere else".into(),
        text: "Every other browser and app signed in to your account is signed out at once. This one stays signed in."
            .into(),
        action: REVOKE_OTHERS.into(),
        button: "Sign out everywhere else",
        danger: true,
        cancel: "/security".into(),
    };
    super::security::confirm_page(&s, session, REVOKE_OTHERS, page).await
}

/// Forgetting a browser lowers privilege, so it needs no re-auth.
pub async fn forget_browser(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.forget_browser(&session.me, &id, &ctx).await {
        Ok(_) => see_other("/security?notice=browser_forgotten"),
        Err(e) => internal(&e),
    }
}
