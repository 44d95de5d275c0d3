//! "Confirm it's you": asks for whatever proof is missing, then returns to
//! the page the user was on. The session cookie gets a new id (§2.11).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use twostep_domain::error::FactorError;
use twostep_domain::factors::Method;
use twostep_domain::reauth::ReauthProofs;

use super::SignedForm;
use super::pages::Reauth;
use super::{WebSession, cookies, encode, internal, render, see_other, with_cookie};
use crate::AppState;
use crate::extract::Ctx;

/// Only local paths, so the form cannot become an open redirect.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/security".to_owned(),
    }
}

#[derive(Deserialize)]
pub struct ReauthQuery {
    next: Option<String>,
    method: Option<String>,
}

fn method_slug(m: Option<&str>) -> &'static str {
    if m == Some("recovery_code") { "recovery_code" } else { "totp" }
}

async fn show(
    s: &AppState,
    session: &WebSession,
    next: String,
    method: &'static str,
    error: Option<String>,
) -> Response {
    let (need_password, need_code) = match s.twostep.reauth_needs(&session.me).await {
        Ok(n) => n,
        Err(e) => return internal(&e),
    };
    if !need_password && !need_code && error.is_none() {
        return see_other(&next);
    }
    // After a failed attempt both proofs are asked again: simpler to reason about.
    let (need_password, need_code) = if error.is_some() {
        let two_factor = s.twostep.authenticators(&session.me.account.id).await.map_or(true, |a| !a.is_empty());
        (true, two_factor)
    } else {
        (need_password, need_code)
    };
    let status = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    render(
        status,
        &Reauth {
            nav: session.nav(),
            csrf: session.csrf.clone(),
            next_enc: encode(&next),
            next,
            need_password,
            need_code,
            method,
            error,
        },
    )
}

pub async fn page(State(s): State<AppState>, session: WebSession, Query(q): Query<ReauthQuery>) -> Response {
    show(&s, &session, safe_next(q.next.as_deref()), method_slug(q.method.as_deref()), None).await
}

#[derive(Deserialize)]
pub struct ReauthForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
    password: Option<String>,
    method: Option<String>,
    code: Option<String>,
}

pub async fn submit(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, f): SignedForm<ReauthForm>,
) -> Response {
    let next = safe_next(Some(&f.next));
    let method = method_slug(f.method.as_deref());
    let second_factor =
        f.code.as_deref().filter(|c| !c.trim().is_empty()).map(|c| (Method::parse(method).unwrap_or(Method::Totp), c));
    let proofs = ReauthProofs { password: f.password.as_deref().filter(|p| !p.is_empty()), second_factor };
    match s.twostep.reauth(&session.me, proofs, &ctx).await {
        Ok(()) => match s.twostep.rotate_session(&session.me.session.id).await {
            Ok(token) => {
                with_cookie(see_other(&next), cookies::set(&s.web, s.web.session_cookie(), token.expose(), None))
            }
            Err(e) => internal(&e),
        },
        Err(FactorError::InvalidPassword | FactorError::InvalidCode | FactorError::NothingToProve) => {
            show(
                &s,
                &session,
                next,
                method,
                Some("That didn't match. Check your password and code and try again.".into()),
            )
            .await
        }
        Err(FactorError::Throttled { retry_after }) => {
            let msg = format!("Too many attempts. Try again in {}.", super::account::wait_text(retry_after));
            show(&s, &session, next, method, Some(msg)).await
        }
        Err(FactorError::FactorLocked) => {
            let msg = "Code sign-in is locked after too many wrong codes. Use a recovery code.".to_owned();
            show(&s, &session, next, "recovery_code", Some(msg)).await
        }
        Err(e) => internal(&e),
    }
}

super::csrf_field!(ReauthForm);
