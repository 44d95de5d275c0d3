//! Sign-up, sign-in (password, then second factor) and sign-out pages.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use twostep_domain::audit::Actor;
use twostep_domain::error::{AccountError, LoginError};
use twostep_domain::factors::Method;
use twostep_domain::login::LoginOutcome;
use twostep_domain::token::Token;

use super::pages::{Login, LoginVerify, SignUp};
use super::{PublicForm, SignedForm};
use super::{cookies, csrf, internal, render, see_other, with_cookie};
use crate::AppState;
use crate::extract::Ctx;

/// The pre-session CSRF cookie: the one the browser has, or a new one to set.
fn presession(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(v) = cookies::get(headers, state.web.presession_cookie()) {
        return (v, None);
    }
    let v = Token::generate(state.twostep.rng()).expose().to_owned();
    let set = cookies::set(&state.web, state.web.presession_cookie(), &v, None);
    (v, Some(set))
}

pub fn page_with_presession(state: &AppState, headers: &HeaderMap, build: impl FnOnce(String) -> Response) -> Response {
    let (cookie, set) = presession(state, headers);
    let res = build(csrf::presession_token(state, &cookie));
    match set {
        Some(v) => with_cookie(res, v),
        None => res,
    }
}

pub async fn home(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if cookies::get(&headers, s.web.session_cookie()).is_some() { see_other("/security") } else { see_other("/login") }
}

#[derive(Deserialize)]
pub struct CredentialsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn signup_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let min_length = s.twostep.settings().password_policy.min_length;
    page_with_presession(&s, &headers, |csrf| {
        render(StatusCode::OK, &SignUp { nav: None, csrf, email: String::new(), error: None, min_length })
    })
}

pub async fn signup(State(s): State<AppState>, Ctx(ctx): Ctx, PublicForm(f): PublicForm<CredentialsForm>) -> Response {
    let min_length = s.twostep.settings().password_policy.min_length;
    let error = match s.twostep.sign_up(&f.email, &f.password, Actor::User, &ctx).await {
        Ok(_) => {
            // Signing up signs in: the same path as the sign-in form.
            return match s.twostep.login(&f.email, &f.password, None, &ctx).await {
                Ok(LoginOutcome::Authenticated { session, .. }) => with_cookie(
                    see_other("/security"),
                    cookies::set(&s.web, s.web.session_cookie(), session.expose(), None),
                ),
                Ok(LoginOutcome::SecondFactorRequired { .. }) | Err(_) => see_other("/login"),
            };
        }
        Err(AccountError::InvalidEmail(e)) => e.to_string(),
        Err(AccountError::WeakPassword(e)) => e.to_string(),
        Err(AccountError::EmailTaken) => {
            "An account with this e-mail address already exists. Sign in instead.".to_owned()
        }
        Err(e @ (AccountError::NotFound | AccountError::Internal(_))) => return internal(&e),
    };
    let csrf = f.csrf.clone();
    render(StatusCode::BAD_REQUEST, &SignUp { nav: None, csrf, email: f.email, error: Some(error), min_length })
}

#[derive(Deserialize)]
pub struct LoginQuery {
    signed_out: Option<String>,
    expired: Option<String>,
    reset: Option<String>,
}

pub async fn login_page(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    let notice = if q.signed_out.is_some() {
        Some("You have been signed out.".to_owned())
    } else if q.reset.is_some() {
        Some("Your password has been reset. Sign in with your new password.".to_owned())
    } else {
        q.expired.map(|_| "Your sign-in took too long or had too many wrong codes. Please sign in again.".to_owned())
    };
    page_with_presession(&s, &headers, |csrf| {
        render(StatusCode::OK, &Login { nav: None, csrf, email: String::new(), error: None, notice })
    })
}

pub async fn login(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    PublicForm(f): PublicForm<CredentialsForm>,
) -> Response {
    let remembered = cookies::get(&headers, s.web.remember_cookie());
    match s.twostep.login(&f.email, &f.password, remembered.as_deref(), &ctx).await {
        Ok(LoginOutcome::Authenticated { session, .. }) => {
            with_cookie(see_other("/security"), cookies::set(&s.web, s.web.session_cookie(), session.expose(), None))
        }
        Ok(LoginOutcome::SecondFactorRequired { login_token, .. }) => {
            let age = s.twostep.settings().login_token_secs;
            with_cookie(
                see_other("/login/verify"),
                cookies::set(&s.web, s.web.login_cookie(), login_token.expose(), Some(age)),
            )
        }
        Err(LoginError::InvalidCredentials | LoginError::InvalidCode) => render(
            StatusCode::UNAUTHORIZED,
            &Login {
                nav: None,
                csrf: f.csrf,
                email: f.email,
                error: Some("Incorrect email or password.".into()),
                notice: None,
            },
        ),
        Err(LoginError::Throttled { retry_after }) => render(
            StatusCode::TOO_MANY_REQUESTS,
            &Login {
                nav: None,
                csrf: f.csrf,
                email: f.email,
                error: Some(format!("Too many attempts. Try again in {}.", wait_text(retry_after))),
                notice: None,
            },
        ),
        Err(LoginError::FactorLocked) => internal(&"factor lock at the password step"),
        Err(e @ LoginError::Internal(_)) => internal(&e),
    }
}

/// "12 seconds", "3 minutes".
pub fn wait_text(secs: i64) -> String {
    if secs < 90 { format!("{} seconds", secs.max(1)) } else { format!("{} minutes", (secs + 59) / 60) }
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    method: Option<String>,
}

fn method_slug(m: Option<&str>) -> &'static str {
    if m == Some("recovery_code") { "recovery_code" } else { "totp" }
}

pub async fn verify_page(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<VerifyQuery>) -> Response {
    if cookies::get(&headers, s.web.login_cookie()).is_none() {
        return see_other("/login");
    }
    let method = method_slug(q.method.as_deref());
    page_with_presession(&s, &headers, |csrf| {
        render(StatusCode::OK, &LoginVerify { nav: None, csrf, method, error: None })
    })
}

#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    code: String,
    /// "Remember this browser for 30 days".
    remember: Option<String>,
}

pub async fn verify(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    PublicForm(f): PublicForm<VerifyForm>,
) -> Response {
    let Some(login_token) = cookies::get(&headers, s.web.login_cookie()) else {
        return see_other("/login?expired=1");
    };
    let method_str = method_slug(Some(&f.method));
    let method = Method::parse(method_str).unwrap_or(Method::Totp);
    match s.twostep.verify_login(&login_token, method, &f.code, &ctx).await {
        Ok(v) => {
            let next = match v.recovery_codes_remaining {
                Some(n) => format!("/security?recovery_used={n}"),
                None => "/security".to_owned(),
            };
            let res =
                with_cookie(see_other(&next), cookies::set(&s.web, s.web.session_cookie(), v.session.expose(), None));
            let res = with_cookie(res, cookies::clear(&s.web, s.web.login_cookie()));
            if f.remember.is_none() {
                return res;
            }
            match s.twostep.remember_browser(&v.account, &ctx).await {
                Ok(token) => {
                    let age = s.twostep.settings().remember_browser_secs;
                    with_cookie(res, cookies::set(&s.web, s.web.remember_cookie(), token.expose(), Some(age)))
                }
                Err(e) => internal(&e),
            }
        }
        Err(LoginError::InvalidCode | LoginError::InvalidCredentials) => {
            if !s.twostep.login_token_live(&login_token).await {
                return with_cookie(see_other("/login?expired=1"), cookies::clear(&s.web, s.web.login_cookie()));
            }
            let error = if method == Method::RecoveryCode {
                "That recovery code is not valid or was already used."
            } else {
                "That code didn't work. Check your authenticator app and try the current code."
            };
            render(
                StatusCode::UNAUTHORIZED,
                &LoginVerify { nav: None, csrf: f.csrf, method: method_str, error: Some(error.into()) },
            )
        }
        Err(LoginError::Throttled { retry_after }) => {
            let error = format!("Too many wrong codes. Try again in {}.", wait_text(retry_after));
            render(
                StatusCode::TOO_MANY_REQUESTS,
                &LoginVerify { nav: None, csrf: f.csrf, method: method_str, error: Some(error) },
            )
        }
        Err(LoginError::FactorLocked) => {
            let error = "Code sign-in is locked after too many wrong codes. Use one of your recovery codes.";
            render(
                StatusCode::FORBIDDEN,
                &LoginVerify { nav: None, csrf: f.csrf, method: "recovery_code", error: Some(error.into()) },
            )
        }
        Err(e @ LoginError::Internal(_)) => internal(&e),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn logout(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, _): SignedForm<CsrfForm>,
) -> Response {
    if let Err(e) = s.twostep.sign_out(&session.me, &ctx).await {
        return internal(&e);
    }
    let mut res = with_cookie(see_other("/login?signed_out=1"), cookies::clear(&s.web, s.web.session_cookie()));
    res.headers_mut().insert("clear-site-data", HeaderValue::from_static("\"cache\""));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

super::csrf_field!(CredentialsForm, CsrfForm, VerifyForm);
