//! Forgot password, reset by e-mailed link, and change password pages.

use super::account::page_with_presession;
use super::error::{self, BAD_RESET_LINK, internal, reauth_first};
use super::pages::{ChangePassword, ForgotPassword, ResetPassword};
use super::{PublicForm, SignedForm, WebSession, render, see_other};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

pub async fn forgot_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    page_with_presession(&s, &headers, |csrf| render(StatusCode::OK, &ForgotPassword { nav: None, csrf, sent: false }))
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

pub async fn forgot(State(s): State<AppState>, Ctx(ctx): Ctx, PublicForm(f): PublicForm<ForgotForm>) -> Response {
    // The same page, as fast, whether or not the address has an account
    // (§2.12, SEC-14): the work happens after the answer.
    s.twostep.request_password_reset_in_background(&f.email, &ctx);
    render(StatusCode::OK, &ForgotPassword { nav: None, csrf: f.csrf, sent: true })
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

pub async fn reset_page(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<TokenQuery>) -> Response {
    let valid = s.twostep.reset_link_live(&q.token).await;
    let min_length = s.twostep.settings().password_policy.min_length;
    let error = (!valid).then(|| BAD_RESET_LINK.to_owned());
    page_with_presession(&s, &headers, |csrf| {
        let status = if valid { StatusCode::OK } else { StatusCode::BAD_REQUEST };
        render(status, &ResetPassword { nav: None, csrf, token: q.token, valid, error, min_length })
    })
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

pub async fn reset(State(s): State<AppState>, Ctx(ctx): Ctx, PublicForm(f): PublicForm<ResetForm>) -> Response {
    let min_length = s.twostep.settings().password_policy.min_length;
    match s.twostep.reset_password(&f.token, &f.password, &ctx).await {
        Ok(()) => see_other("/login?reset=1"),
        Err(e) => {
            // A weak password keeps the form; a dead link does not.
            let valid = matches!(e, twostep_domain::error::CredentialError::WeakPassword(_));
            error::credential(e, "/reset-password").or_page(|r| {
                let page = ResetPassword {
                    nav: None,
                    csrf: f.csrf,
                    token: f.token,
                    valid,
                    error: Some(r.message),
                    min_length,
                };
                render(r.status, &page)
            })
        }
    }
}

pub async fn change_page(State(s): State<AppState>, session: WebSession) -> Response {
    match s.twostep.reauth_needs(&session.me).await {
        Ok((false, false)) => {
            let min_length = s.twostep.settings().password_policy.min_length;
            let page = ChangePassword { nav: session.nav(), csrf: session.csrf.clone(), error: None, min_length };
            render(StatusCode::OK, &page)
        }
        Ok(_) => reauth_first("/security/password"),
        Err(e) => internal(&e),
    }
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

pub async fn change(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, f): SignedForm<ChangeForm>,
) -> Response {
    match s.twostep.change_password(&session.me, &f.current_password, &f.new_password, &ctx).await {
        Ok(()) => see_other("/security?notice=password_changed"),
        Err(e) => error::credential(e, "/security/password").or_page(|r| {
            let min_length = s.twostep.settings().password_policy.min_length;
            let page =
                ChangePassword { nav: session.nav(), csrf: session.csrf.clone(), error: Some(r.message), min_length };
            render(r.status, &page)
        }),
    }
}

super::csrf_field!(ChangeForm, ForgotForm, ResetForm);
