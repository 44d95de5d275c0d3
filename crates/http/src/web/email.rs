//! Proving the account's e-mail address: the mailed link, and the resend
//! button and code field on the Security page.
//!
//! The link only shows a button: mail scanners and link previews fetch
//! links, and a GET that verified would let them confirm an address nobody
//! read. The button's form works without a session (the mail may be opened
//! on another device), guarded by the pre-session CSRF cookie.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use twostep_domain::error::FactorError;
use twostep_domain::factors::sent_code::SendError;

use super::account::{CsrfForm, page_with_presession};
use super::codes;
use super::pages::{Message, VerifyEmail};
use super::security::{EmailPanel, render_page};
use super::{PublicForm, SignedForm, internal, render, see_other};
use crate::AppState;
use crate::extract::Ctx;

#[derive(Deserialize)]
pub struct LinkQuery {
    account: Option<String>,
    code: Option<String>,
}

fn bad_link(status: StatusCode) -> Response {
    render(
        status,
        &Message::new(
            None,
            "This link does not work",
            "The link is incomplete, expired or was replaced by a newer one. Sign in and ask for a new verification e-mail on the Security page.",
        )
        .with_link("/security", "Go to Security"),
    )
}

pub async fn link_page(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<LinkQuery>) -> Response {
    let (Some(account), Some(code)) = (q.account, q.code) else {
        return bad_link(StatusCode::BAD_REQUEST);
    };
    // Lengths bounded so the page never echoes a long string back.
    if account.len() > 64 || code.len() > 16 {
        return bad_link(StatusCode::BAD_REQUEST);
    }
    page_with_presession(&s, &headers, |csrf| render(StatusCode::OK, &VerifyEmail { nav: None, csrf, account, code }))
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    code: String,
}

pub async fn confirm_link(State(s): State<AppState>, Ctx(ctx): Ctx, PublicForm(f): PublicForm<LinkForm>) -> Response {
    match s.twostep.confirm_email(&f.account, &f.code, &ctx).await {
        Ok(()) => render(
            StatusCode::OK,
            &Message::new(
                None,
                "E-mail address confirmed",
                "Thank you. Security notices will reach you at this address.",
            )
            .with_link("/security", "Go to Security"),
        ),
        Err(e @ FactorError::Internal(_)) => internal(&e),
        Err(_) => bad_link(StatusCode::BAD_REQUEST),
    }
}

/// "Resend verification e-mail" on the Security page.
pub async fn resend(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.send_email_verification(&session.me.account.id, &ctx).await {
        Ok(Some(_)) => see_other("/security?notice=verification_sent"),
        Ok(None) => see_other("/security?notice=email_verified"),
        Err(e @ SendError::Internal(_)) => internal(&e),
        Err(e) => {
            let (error, wait) = codes::send_refused(&e, s.twostep.settings().resend_cooldown_secs);
            let (status, error) = match e {
                SendError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, error),
                _ => (StatusCode::BAD_REQUEST, "A verification e-mail cannot be sent now. Try again later.".to_owned()),
            };
            render_page(&s, &session, status, None, EmailPanel { error: Some(error), wait }).await
        }
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// The mailed code typed on the Security page.
pub async fn confirm_code(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, f): SignedForm<CodeForm>,
) -> Response {
    match s.twostep.confirm_email(session.me.account.id.as_str(), &f.code, &ctx).await {
        Ok(()) => see_other("/security?notice=email_verified"),
        Err(e @ FactorError::Internal(_)) => internal(&e),
        Err(_) => {
            let error = "That code didn't work. Check you typed the code from the latest e-mail, or ask for a new one.";
            let panel = EmailPanel { error: Some(error.to_owned()), wait: 0 };
            render_page(&s, &session, StatusCode::UNAUTHORIZED, None, panel).await
        }
    }
}

super::csrf_field!(LinkForm, CodeForm);
