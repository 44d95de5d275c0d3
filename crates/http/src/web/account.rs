//! Sign-up, sign-in (password, then second factor) and sign-out pages.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use twostep_domain::audit::Actor;
use twostep_domain::error::{AccountError, LoginError};
use twostep_domain::factors::Method;
use twostep_domain::login::LoginOutcome;
use twostep_domain::oob::SendError;
use twostep_domain::token::Token;

use super::codes;
use super::pages::{Login, LoginVerify, SendButton, SignUp};
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
                Ok(LoginOutcome::EnrollmentRequired { session, .. }) => with_cookie(
                    see_other(super::policy::REQUIRED_PATH),
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
        Err(AccountError::Throttled { retry_after }) => {
            let error = format!("Too many sign-ups from here. Try again in {}.", wait_text(retry_after));
            let page = SignUp { nav: None, csrf: f.csrf.clone(), email: f.email, error: Some(error), min_length };
            let mut res = render(StatusCode::TOO_MANY_REQUESTS, &page);
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
            return res;
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
    /// A protected app's URL to return to (forward-auth).
    rd: Option<String>,
}

pub async fn login_page(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let entry = crate::authz::portal_entry(&s, &headers, &ctx, q.rd.as_deref()).await;
    if let crate::authz::Entry::Back(res) = entry {
        return res;
    }
    let notice = if q.signed_out.is_some() {
        Some("You have been signed out.".to_owned())
    } else if q.reset.is_some() {
        Some("Your password has been reset. Sign in with your new password.".to_owned())
    } else {
        q.expired.map(|_| "Your sign-in took too long or had too many wrong codes. Please sign in again.".to_owned())
    };
    let page = page_with_presession(&s, &headers, |csrf| {
        render(StatusCode::OK, &Login { nav: None, csrf, email: String::new(), error: None, notice })
    });
    match entry {
        crate::authz::Entry::Remember(cookie) => with_cookie(page, cookie),
        _ => page,
    }
}

pub async fn login(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    PublicForm(f): PublicForm<CredentialsForm>,
) -> Response {
    let remembered = cookies::get(&headers, s.web.remember_cookie());
    match s.twostep.login(&f.email, &f.password, remembered.as_deref(), &ctx).await {
        Ok(LoginOutcome::Authenticated { session, .. }) => with_cookie(
            see_other(&crate::authz::after_sign_in(&s, &headers, "/security")),
            cookies::set(&s.web, s.web.session_cookie(), session.expose(), None),
        ),
        // Policy requires 2FA the account lacks: set-up comes first.
        Ok(LoginOutcome::EnrollmentRequired { session, .. }) => with_cookie(
            see_other(super::policy::REQUIRED_PATH),
            cookies::set(&s.web, s.web.session_cookie(), session.expose(), None),
        ),
        Ok(LoginOutcome::SecondFactorRequired { login_token, methods }) => {
            let age = s.twostep.settings().login_token_secs;
            let res = with_cookie(
                see_other("/login/verify"),
                cookies::set(&s.web, s.web.login_cookie(), login_token.expose(), Some(age)),
            );
            let list: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
            with_cookie(res, cookies::set(&s.web, methods_cookie(&s), &list.join("."), Some(age)))
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

/// The second step's methods, as the password step listed them. Only
/// which choices the page offers depends on it: the domain checks every
/// method again, so a doctored cookie gains nothing.
// TODO: read them from the login token once the domain can list them.
fn methods_cookie(s: &AppState) -> &'static str {
    if s.web.secure_cookies { "__Host-twostep_methods" } else { "twostep_methods" }
}

pub(super) fn login_methods(s: &AppState, headers: &HeaderMap) -> Vec<Method> {
    let listed: Vec<Method> = cookies::get(headers, methods_cookie(s))
        .map(|v| v.split('.').filter_map(Method::parse).collect())
        .unwrap_or_default();
    if listed.is_empty() { vec![Method::Totp, Method::RecoveryCode] } else { listed }
}

/// Ends the second step's cookies, after it succeeded or expired.
pub(super) fn clear_login(s: &AppState, res: Response) -> Response {
    let res = with_cookie(res, cookies::clear(&s.web, s.web.login_cookie()));
    with_cookie(res, cookies::clear(&s.web, methods_cookie(s)))
}

pub(super) fn verify_view(
    status: StatusCode,
    csrf: String,
    methods: &[Method],
    method: Method,
    error: Option<String>,
    send: Option<SendButton>,
) -> Response {
    let others = codes::others(methods, method, |m| format!("/login/verify?method={}", m.as_str()), "");
    let code_label = codes::code_label(method);
    render(status, &LoginVerify { nav: None, csrf, method: method.as_str(), code_label, error, send, others })
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    method: Option<String>,
}

pub async fn verify_page(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<VerifyQuery>) -> Response {
    if cookies::get(&headers, s.web.login_cookie()).is_none() {
        return see_other("/login");
    }
    let methods = login_methods(&s, &headers);
    let method = codes::pick(&methods, q.method.as_deref());
    // A GET never sends a code: prefetching or reloading must not text anyone.
    page_with_presession(&s, &headers, |csrf| {
        verify_view(StatusCode::OK, csrf, &methods, method, None, codes::send_button(method, None, 0))
    })
}

#[derive(Deserialize)]
pub struct ChallengeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    method: String,
    /// Where the previous code went, to keep saying so when a resend is refused.
    sent_to: Option<String>,
}

/// "Text me a code", "Call me", "E-mail me a code" and their resends.
pub async fn challenge(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    crate::extract::Place(place): crate::extract::Place,
    headers: HeaderMap,
    PublicForm(f): PublicForm<ChallengeForm>,
) -> Response {
    let Some(login_token) = cookies::get(&headers, s.web.login_cookie()) else {
        return see_other("/login?expired=1");
    };
    let methods = login_methods(&s, &headers);
    let method = codes::pick(&methods, Some(&f.method));
    if method == Method::Push {
        return super::login_push::start(&s, &ctx, &login_token, place.as_deref(), f.csrf, &methods).await;
    }
    if !codes::is_sent(method) {
        return see_other(&format!("/login/verify?method={}", method.as_str()));
    }
    let cooldown = s.twostep.settings().resend_cooldown_secs;
    match s.twostep.login_challenge(&login_token, method, &ctx).await {
        Ok(code) => {
            let send = codes::send_button(method, Some(code.sent_to), cooldown);
            verify_view(StatusCode::OK, f.csrf, &methods, method, None, send)
        }
        Err(SendError::LoginExpired) => clear_login(&s, see_other("/login?expired=1")),
        Err(e @ SendError::Internal(_)) => internal(&e),
        Err(e) => {
            let (message, wait) = codes::send_refused(&e, cooldown);
            let (status, method) = match e {
                SendError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, method),
                SendError::FactorLocked => (StatusCode::FORBIDDEN, Method::RecoveryCode),
                _ => (StatusCode::BAD_REQUEST, method),
            };
            let send = codes::send_button(method, codes::masked_or_none(f.sent_to.as_deref()), wait);
            verify_view(status, f.csrf, &methods, method, Some(message), send)
        }
    }
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
    /// Where a sent code went, to show again after a wrong one.
    sent_to: Option<String>,
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
    // The domain decides whether the account has the method; the list only
    // shapes the page shown after a wrong code.
    let method = Method::parse(&f.method).unwrap_or(Method::Totp);
    let methods = login_methods(&s, &headers);
    // A push is checked first: only an approved one is worth a try, so a
    // click before the device answered is not a wrong code.
    if method == Method::Push
        && let Some(res) = super::login_push::not_approved(&s, &f.code, &f.csrf, &methods).await
    {
        return res;
    }
    let again = |status, method, error: &str| {
        let send = codes::send_button(method, codes::masked_or_none(f.sent_to.as_deref()), 0);
        verify_view(status, f.csrf.clone(), &methods, method, Some(error.to_owned()), send)
    };
    match s.twostep.verify_login(&login_token, method, &f.code, &ctx).await {
        Ok(v) => {
            let next = match v.recovery_codes_remaining {
                Some(n) => format!("/security?recovery_used={n}"),
                None => crate::authz::after_sign_in(&s, &headers, "/security"),
            };
            let res =
                with_cookie(see_other(&next), cookies::set(&s.web, s.web.session_cookie(), v.session.expose(), None));
            let res = clear_login(&s, res);
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
                return clear_login(&s, see_other("/login?expired=1"));
            }
            let error = match method {
                Method::RecoveryCode => "That recovery code is not valid or was already used.",
                Method::Push => "That approval could not be used for this sign-in. Send another push.",
                m if codes::is_sent(m) => {
                    "That code didn't work. Check you typed the latest code we sent, or ask for a new one."
                }
                _ => "That code didn't work. Check your authenticator app and try the current code.",
            };
            again(StatusCode::UNAUTHORIZED, method, error)
        }
        Err(LoginError::Throttled { retry_after }) => {
            let error = format!("Too many wrong codes. Try again in {}.", wait_text(retry_after));
            again(StatusCode::TOO_MANY_REQUESTS, method, &error)
        }
        Err(LoginError::FactorLocked) => {
            let error = "Code sign-in is locked after too many wrong codes. Use one of your recovery codes.";
            again(StatusCode::FORBIDDEN, Method::RecoveryCode, error)
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
    let res = with_cookie(see_other("/login?signed_out=1"), cookies::clear(&s.web, s.web.session_cookie()));
    let mut res = crate::authz::clear_cookies(&s, res);
    res.headers_mut().insert("clear-site-data", HeaderValue::from_static("\"cache\""));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

super::csrf_field!(CredentialsForm, CsrfForm, VerifyForm, ChallengeForm);
