//! Signed-in devices and remembered browsers (the security log: `security_log.rs`).

use axum::extract::{Path, State};
use axum::response::Response;

use super::error::{self, internal};
use super::{CsrfForm, SignedForm, see_other};
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
