//! Forgot password, reset by e-mailed link, and change password pages.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use twostep_domain::error::CredentialError;

use super::account::{page_with_presession, wait_text};
use super::pages::{ChangePassword, ForgotPassword, ResetPassword};
use super::{PublicForm, SignedForm};
use super::{WebSession, factor_error, internal, render, see_other};
use crate::AppState;
use crate::extract::Ctx;

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
    let error = (!valid).then(|| "This link is invalid, already used or expired.".to_owned());
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
    let (valid, error) = match s.twostep.reset_password(&f.token, &f.password, &ctx).await {
        Ok(()) => return see_other("/login?reset=1"),
        Err(CredentialError::WeakPassword(e)) => (true, e.to_string()),
        Err(CredentialError::InvalidResetLink) => (false, "This link is invalid, already used or expired.".to_owned()),
        Err(e) => return internal(&e),
    };
    let page = ResetPassword { nav: None, csrf: f.csrf, token: f.token, valid, error: Some(error), min_length };
    render(StatusCode::BAD_REQUEST, &page)
}

pub async fn change_page(State(s): State<AppState>, session: WebSession) -> Response {
    match s.twostep.reauth_needs(&session.me).await {
        Ok((false, false)) => {
            let min_length = s.twostep.settings().password_policy.min_length;
            let page = ChangePassword { nav: session.nav(), csrf: session.csrf.clone(), error: None, min_length };
            render(StatusCode::OK, &page)
        }
        Ok(_) => factor_error(&twostep_domain::error::FactorError::ReauthRequired, "/security/password"),
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
    let error = match s.twostep.change_password(&session.me, &f.current_password, &f.new_password, &ctx).await {
        Ok(()) => return see_other("/security?notice=password_changed"),
        Err(CredentialError::ReauthRequired) => {
            return factor_error(&twostep_domain::error::FactorError::ReauthRequired, "/security/password");
        }
        Err(CredentialError::InvalidPassword) => "Your current password is not right.".to_owned(),
        Err(CredentialError::WeakPassword(e)) => e.to_string(),
        Err(CredentialError::Throttled { retry_after }) => {
            format!("Too many attempts. Try again in {}.", wait_text(retry_after))
        }
        Err(e) => return internal(&e),
    };
    let min_length = s.twostep.settings().password_policy.min_length;
    render(
        StatusCode::BAD_REQUEST,
        &ChangePassword { nav: session.nav(), csrf: session.csrf.clone(), error: Some(error), min_length },
    )
}

super::csrf_field!(ChangeForm, ForgotForm, ResetForm);
