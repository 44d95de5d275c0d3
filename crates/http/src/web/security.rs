//! The Security page, recovery codes, and turning 2FA off.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use twostep_domain::factors::recovery_code::RecoveryCode;
use twostep_domain::recovery::LOW_WATER;

use super::SignedForm;
use super::account::CsrfForm;
use super::pages::{AuthenticatorRow, BrowserRow, CodeRow, Confirm, RecoveryCodes, Security, SessionRow, human_time};
use super::{WebSession, factor_error, internal, render, see_other};
use crate::AppState;
use crate::extract::Ctx;

#[derive(Deserialize)]
pub struct SecurityQuery {
    recovery_used: Option<usize>,
    notice: Option<String>,
}

pub async fn page(State(s): State<AppState>, session: WebSession, Query(q): Query<SecurityQuery>) -> Response {
    let account = &session.me.account;
    let (authenticators, remaining) =
        match (s.twostep.authenticators(&account.id).await, s.twostep.recovery_codes_remaining(&account.id).await) {
            (Ok(a), Ok(r)) => (a, r),
            (Err(e), _) | (_, Err(e)) => return internal(&e),
        };
    let enabled = !authenticators.is_empty();
    let (sessions, browsers) =
        match (s.twostep.sessions_of(&session.me).await, s.twostep.remembered_browsers(&account.id).await) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) => return internal(&e),
            (_, Err(e)) => return internal(&e),
        };
    let sessions = sessions
        .into_iter()
        .map(|v| SessionRow {
            id: v.id,
            device: v.device,
            ip: v.ip,
            last_seen: human_time(v.last_seen_at),
            current: v.current,
        })
        .collect();
    let browsers = browsers
        .into_iter()
        .map(|b| BrowserRow {
            device: twostep_domain::device::describe(&b.user_agent),
            id: b.id,
            ip: b.ip,
            until: human_time(b.expires_at),
        })
        .collect();
    let notice = match (q.recovery_used, q.notice.as_deref()) {
        (Some(n), _) => Some(format!("You signed in with a recovery code. {n} recovery codes are left.")),
        (None, Some("enabled")) => Some("Two-factor authentication is on.".to_owned()),
        (None, Some("added")) => Some("Authenticator app added.".to_owned()),
        (None, Some("removed")) => Some("Authenticator removed.".to_owned()),
        (None, Some("disabled")) => Some("Two-factor authentication is off.".to_owned()),
        (None, Some("password_changed")) => Some("Password changed. Your other sessions were signed out.".to_owned()),
        (None, Some("session_revoked")) => Some("That device was signed out.".to_owned()),
        (None, Some("others_revoked")) => Some("All your other sessions were signed out.".to_owned()),
        (None, Some("browser_forgotten")) => Some("That browser will be asked for a code again.".to_owned()),
        _ => None,
    };
    let warning = (enabled && remaining <= LOW_WATER)
        .then(|| format!("Only {remaining} recovery codes are left. Regenerate them so you cannot be locked out."));
    let rows = authenticators
        .iter()
        .map(|a| AuthenticatorRow {
            id: a.id.to_string(),
            name: a.name.clone(),
            created: human_time(a.created_at),
            last_used: a.last_used_at.map_or_else(|| "never".to_owned(), human_time),
        })
        .collect();
    render(
        StatusCode::OK,
        &Security {
            nav: session.nav(),
            csrf: session.csrf.clone(),
            sessions,
            browsers,
            email: account.email.to_string(),
            enabled,
            authenticators: rows,
            recovery_remaining: remaining,
            notice,
            warning,
        },
    )
}

pub fn show_codes(
    session: &WebSession,
    codes: &[RecoveryCode],
    heading: &'static str,
    intro: &'static str,
) -> Response {
    let rows = codes.iter().map(|c| CodeRow { code: c.display_grouped(), used: false }).collect();
    render(
        StatusCode::OK,
        &RecoveryCodes { nav: session.nav(), heading, intro, codes: rows, done_label: "I have saved my codes" },
    )
}

pub async fn reveal_codes(State(s): State<AppState>, Ctx(ctx): Ctx, session: WebSession) -> Response {
    match s.twostep.reveal_recovery_codes(&session.me, &ctx).await {
        Ok(codes) => {
            let rows = codes.iter().map(|c| CodeRow { code: c.code.display_grouped(), used: c.used }).collect();
            render(
                StatusCode::OK,
                &RecoveryCodes {
                    nav: session.nav(),
                    heading: "Your recovery codes",
                    intro: "Each code signs you in once if you cannot use your authenticator app. Used codes are crossed out.",
                    codes: rows,
                    done_label: "Back to Security",
                },
            )
        }
        Err(e) => factor_error(&e, "/security/recovery-codes"),
    }
}

pub async fn download_codes(State(s): State<AppState>, Ctx(ctx): Ctx, session: WebSession) -> Response {
    match s.twostep.reveal_recovery_codes(&session.me, &ctx).await {
        Ok(codes) => {
            let mut text = format!(
                "twostep recovery codes for {}\n\nEach code works once. Keep this file somewhere safe.\n\n",
                session.me.account.email
            );
            for c in &codes {
                text.push_str(&c.code.display_grouped());
                text.push_str(if c.used { "  (used)\n" } else { "\n" });
            }
            (
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::CONTENT_DISPOSITION, "attachment; filename=\"twostep-recovery-codes.txt\""),
                ],
                text,
            )
                .into_response()
        }
        Err(e) => factor_error(&e, "/security/recovery-codes"),
    }
}

pub async fn regenerate_page(State(s): State<AppState>, session: WebSession) -> Response {
    confirm_page(
        &s,
        session,
        "/security/recovery-codes/regenerate",
        Confirm {
            nav: None,
            csrf: String::new(),
            heading: "Regenerate recovery codes",
            text: "You will get 10 new recovery codes. Your current codes will stop working at once.",
            action: "/security/recovery-codes/regenerate".into(),
            button: "Regenerate codes",
            danger: false,
        },
    )
    .await
}

pub async fn regenerate(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.regenerate_recovery_codes(&session.me, &ctx).await {
        Ok(codes) => show_codes(
            &session,
            &codes,
            "Your new recovery codes",
            "Your old codes no longer work. Save these now: download, copy or print them.",
        ),
        Err(e) => factor_error(&e, "/security/recovery-codes/regenerate"),
    }
}

pub async fn disable_page(State(s): State<AppState>, session: WebSession) -> Response {
    confirm_page(
        &s,
        session,
        "/security/two-factor/disable",
        Confirm {
            nav: None,
            csrf: String::new(),
            heading: "Disable two-factor authentication",
            text: "All your authenticators and recovery codes will be removed, and your password alone will sign you in.",
            action: "/security/two-factor/disable".into(),
            button: "Disable two-factor authentication",
            danger: true,
        },
    )
    .await
}

pub async fn disable(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.disable_two_factor(&session.me, &ctx).await {
        Ok(()) => see_other("/security?notice=disabled"),
        Err(e) => factor_error(&e, "/security/two-factor/disable"),
    }
}

/// A confirmation page for a sensitive action. Re-auth is asked for first,
/// so the user confirms once they are cleared and lands back here.
pub async fn confirm_page(s: &AppState, session: WebSession, here: &str, mut page: Confirm) -> Response {
    match s.twostep.reauth_needs(&session.me).await {
        Ok((false, false)) => {
            page.nav = session.nav();
            page.csrf = session.csrf.clone();
            render(StatusCode::OK, &page)
        }
        Ok(_) => factor_error(&twostep_domain::error::FactorError::ReauthRequired, here),
        Err(e) => internal(&e),
    }
}
