//! Signed-in devices, remembered browsers and the security log pages.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::error::{self, internal};
use super::pages::{LogRow, SecurityLog, human_time};
use super::{CsrfForm, SignedForm, WebSession, render, see_other};
use crate::AppState;
use crate::extract::Ctx;

pub async fn revoke_session(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.revoke_session(&session.me, &id, &ctx).await {
        Ok(_) => see_other("/security?notice=session_revoked"),
        Err(e) => error::factor(&e, "/security"),
    }
}

pub async fn revoke_others(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.revoke_other_sessions(&session.me, &ctx).await {
        Ok(_) => see_other("/security?notice=others_revoked"),
        Err(e) => error::factor(&e, "/security"),
    }
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

pub async fn log_page(State(s): State<AppState>, session: WebSession) -> Response {
    match s.twostep.security_log(&session.me, 200).await {
        Ok(entries) => {
            let entries = entries
                .into_iter()
                .map(|e| LogRow {
                    when: human_time(e.at),
                    event: e.kind.replace('_', " "),
                    ok: e.success,
                    device: twostep_domain::abuse::device::describe(&e.user_agent),
                    ip: e.ip,
                })
                .collect();
            render(StatusCode::OK, &SecurityLog { nav: session.nav(), entries })
        }
        Err(e) => internal(&e),
    }
}
