//! Proving the account's e-mail address: the mailed link, and the resend
//! button and code field on the Security page.
//!
//! The link only shows a button: mail scanners and link previews fetch
//! links, and a GET that verified would let them confirm an address nobody
//! read. The button's form works without a session (the mail may be opened
//! on another device), guarded by the pre-session CSRF cookie.

use super::account::page_with_presession;
use super::error::{self, Reply, SendForm, bad_email_link};
use super::pages::{Message, VerifyEmail};
use super::security::{EmailPanel, render_page};
use super::{CsrfForm, PublicForm, SignedForm, render, see_other};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct LinkQuery {
    account: Option<String>,
    code: Option<String>,
}

pub async fn link_page(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<LinkQuery>) -> Response {
    let (Some(account), Some(code)) = (q.account, q.code) else {
        return bad_email_link(StatusCode::BAD_REQUEST);
    };
    // Lengths bounded so the page never echoes a long string back.
    if account.len() > 64 || code.len() > 16 {
        return bad_email_link(StatusCode::BAD_REQUEST);
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
        Err(e) => error::email_link(&e),
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
        Err(e) => match error::send(e, SendForm::EmailVerification, s.twostep.settings().resend_cooldown_secs) {
            Reply::Inline(r) => {
                render_page(&s, &session, r.status, None, EmailPanel { error: Some(r.message), wait: r.wait }).await
            }
            Reply::Page(res) => res,
        },
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
        Err(e) => match error::email_code(e) {
            Reply::Inline(r) => {
                render_page(&s, &session, r.status, None, EmailPanel { error: Some(r.message), wait: 0 }).await
            }
            Reply::Page(res) => res,
        },
    }
}

super::csrf_field!(LinkForm, CodeForm);
