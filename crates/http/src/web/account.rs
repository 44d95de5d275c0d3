//! Sign-up, sign-in (password, then second factor) and sign-out pages.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use twostep_domain::audit::Actor;
use twostep_domain::factors::{Challenge, ChallengeError, Method};
use twostep_domain::signin::login::LoginOutcome;
use twostep_domain::token::Token;

use super::error::{self, Reply, SendForm};
use super::pages::{Login, SignUp};
use super::policy::REQUIRED_PATH;
use super::{CsrfForm, PublicForm, SignedForm, codes, render, see_other, signin, with_cookie};
use crate::extract::Ctx;
use crate::{AppState, cookies, csrf};

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
    match s.twostep.sign_up(&f.email, &f.password, Actor::User, &ctx).await {
        // Signing up signs in: the same path as the sign-in form.
        Ok(_) => match s.twostep.login(&f.email, &f.password, None, &ctx).await {
            Ok(LoginOutcome::Authenticated { session, .. }) => with_cookie(
                see_other("/security"),
                cookies::set(&s.web, s.web.session_cookie(), session.expose(), None),
            ),
            Ok(LoginOutcome::EnrollmentRequired { session, .. }) => with_cookie(
                see_other(REQUIRED_PATH),
                cookies::set(&s.web, s.web.session_cookie(), session.expose(), None),
            ),
            Ok(LoginOutcome::SecondFactorRequired { .. }) | Err(_) => see_other("/login"),
        },
        Err(e) => error::sign_up(e).or_page(|r| {
            let page = SignUp { nav: None, csrf: f.csrf, email: f.email, error: Some(r.message.clone()), min_length };
            r.retry_after(render(r.status, &page))
        }),
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    signed_out: Option<String>,
    expired: Option<String>,
    reset: Option<String>,
    /// A protected app's URL to return to (forward-auth).
    rd: Option<String>,
    /// The address to fill in: an app's `login_hint` (OpenID Connect).
    email: Option<String>,
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
    let email = q.email.filter(|e| e.len() <= 254).unwrap_or_default();
    let page = page_with_presession(&s, &headers, |csrf| {
        render(
            StatusCode::OK,
            &Login { nav: None, csrf, email, error: None, notice, passkeys: s.twostep.passkeys_offered() },
        )
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
        Ok(outcome) => signed_in(&s, &headers, outcome),
        Err(e) => error::password_step(e).or_page(|r| {
            let page = Login {
                nav: None,
                csrf: f.csrf,
                email: f.email,
                error: Some(r.message),
                notice: None,
                passkeys: s.twostep.passkeys_offered(),
            };
            render(r.status, &page)
        }),
    }
}

/// Where the browser goes after the first step, with its cookie.
fn signed_in(s: &AppState, headers: &HeaderMap, outcome: LoginOutcome) -> Response {
    match outcome {
        LoginOutcome::Authenticated { session, .. } => with_cookie(
            see_other(&crate::authz::after_sign_in(s, headers, "/security")),
            cookies::set(&s.web, s.web.session_cookie(), session.expose(), None),
        ),
        // Policy requires 2FA the account lacks: set-up comes first.
        LoginOutcome::EnrollmentRequired { session, .. } => {
            with_cookie(see_other(REQUIRED_PATH), cookies::set(&s.web, s.web.session_cookie(), session.expose(), None))
        }
        // Only the token rides in the cookie; the methods are asked of the
        // domain on every page of the second step (`signin`).
        LoginOutcome::SecondFactorRequired { login_token, .. } => {
            let age = s.twostep.settings().login_token_secs;
            with_cookie(
                see_other("/login/verify"),
                cookies::set(&s.web, s.web.login_cookie(), login_token.expose(), Some(age)),
            )
        }
    }
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    challenge_id: String,
    /// The browser's `PublicKeyCredential.toJSON()`, as app.js posts it.
    #[serde(default)]
    credential: String,
}

/// "Sign in with a passkey" (or the address field's autofill): app.js got
/// the options from `POST /api/v1/login/passkey` and posts the answer here.
pub async fn passkey(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    PublicForm(f): PublicForm<PasskeyForm>,
) -> Response {
    let shown = |status, message: String| {
        let page = Login {
            nav: None,
            csrf: f.csrf.clone(),
            email: String::new(),
            error: Some(message),
            notice: None,
            passkeys: s.twostep.passkeys_offered(),
        };
        render(status, &page)
    };
    let Ok(credential) = serde_json::from_str::<serde_json::Value>(&f.credential) else {
        return shown(StatusCode::BAD_REQUEST, "Your browser gave no answer from a passkey. Try again.".to_owned());
    };
    match s.twostep.finish_passkey_sign_in(&f.challenge_id, &credential, &ctx).await {
        Ok(outcome) => signed_in(&s, &headers, outcome),
        Err(e) => error::passkey_step(e).or_page(|r| r.retry_after(shown(r.status, r.message.clone()))),
    }
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    method: Option<String>,
}

pub async fn verify_page(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<VerifyQuery>,
) -> Response {
    if signin::login_token(&s, &headers).is_none() {
        return see_other("/login");
    }
    let step = match signin::pending(&s, &headers).await {
        Ok(step) => step,
        Err(res) => return res,
    };
    let method = codes::pick(&step.methods, q.method.as_deref());
    // A GET never sends a code: prefetching or reloading must not text
    // anyone. A key's challenge is only stored, for this login token.
    let key = signin::key_options(&s, &step.login_token, method, &ctx).await;
    page_with_presession(&s, &headers, |csrf| {
        signin::view(StatusCode::OK, csrf, &step.methods, method, None, codes::send_button(method, None, 0), key)
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
    let step = match signin::pending(&s, &headers).await {
        Ok(step) => step,
        Err(res) => return res,
    };
    let method = codes::pick(&step.methods, Some(&f.method));
    if !method.sends_code() && !method.is_approval() {
        return see_other(&format!("/login/verify?method={}", method.as_str()));
    }
    let cooldown = s.twostep.settings().resend_cooldown_secs;
    match s.twostep.login_challenge(&step.login_token, method, place.as_deref(), &ctx).await {
        Ok(Challenge::Sent(code)) => {
            let send = codes::send_button(method, Some(code.sent_to), cooldown);
            signin::view(StatusCode::OK, f.csrf, &step.methods, method, None, send, None)
        }
        Ok(Challenge::Push(started)) => super::login_push::started(f.csrf, &step.methods, started),
        // Unreached (a key is neither sent nor approved); the form again.
        Ok(Challenge::WebAuthn { .. }) => see_other(&format!("/login/verify?method={}", method.as_str())),
        Err(ChallengeError::Push(e)) => super::login_push::refused(&s, e, f.csrf, &step.methods),
        Err(ChallengeError::Send(e)) => error::send(e, SendForm::SignIn(&s.web), cooldown).or_page(|r| {
            let method = r.method(method);
            let send = codes::send_button(method, codes::masked_or_none(f.sent_to.as_deref()), r.wait);
            signin::view(r.status, f.csrf, &step.methods, method, Some(r.message), send, None)
        }),
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
    let Some(login_token) = signin::login_token(&s, &headers) else {
        return see_other("/login?expired=1");
    };
    // The domain decides whether the account has the method.
    let method = Method::parse(&f.method).unwrap_or(Method::STRONGEST);
    // A push is checked first: only an approved one is worth a try, so a
    // click before the device answered is not a wrong code.
    if method.is_approval() {
        let step = match signin::pending(&s, &headers).await {
            Ok(step) => step,
            Err(res) => return res,
        };
        if let Some(res) = super::login_push::not_approved(&s, &f.code, &f.csrf, &step.methods).await {
            return res;
        }
    }
    match s.twostep.verify_login(&login_token, method, method.proof(&f.code), &ctx).await {
        Ok(v) => {
            let next = match v.recovery_codes_remaining {
                Some(n) => format!("/security?recovery_used={n}"),
                None => crate::authz::after_sign_in(&s, &headers, "/security"),
            };
            let res =
                with_cookie(see_other(&next), cookies::set(&s.web, s.web.session_cookie(), v.session.expose(), None));
            let res = signin::finish(&s, res);
            if f.remember.is_none() {
                return res;
            }
            match s.twostep.remember_browser(&v.account, &ctx).await {
                Ok(token) => {
                    let age = s.twostep.settings().remember_browser_secs;
                    with_cookie(res, cookies::set(&s.web, s.web.remember_cookie(), token.expose(), Some(age)))
                }
                Err(e) => error::internal(&e),
            }
        }
        Err(e) => match error::code_step(e, method) {
            Reply::Page(res) => res,
            // Asked again only while the login token lives: wrong codes
            // spend it, and then the sign-in starts over.
            Reply::Inline(r) => match signin::pending(&s, &headers).await {
                Ok(step) => {
                    let method = r.method(method);
                    let send = codes::send_button(method, codes::masked_or_none(f.sent_to.as_deref()), 0);
                    let key = signin::key_options(&s, &step.login_token, method, &ctx).await;
                    signin::view(r.status, f.csrf, &step.methods, method, Some(r.message), send, key)
                }
                Err(res) => res,
            },
        },
    }
}

pub async fn logout(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, _): SignedForm<CsrfForm>,
) -> Response {
    if let Err(e) = s.twostep.sign_out(&session.me, &ctx).await {
        return error::internal(&e);
    }
    let res = with_cookie(see_other("/login?signed_out=1"), cookies::clear(&s.web, s.web.session_cookie()));
    let mut res = crate::authz::clear_cookies(&s, res);
    res.headers_mut().insert("clear-site-data", HeaderValue::from_static("\"cache\""));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

super::csrf_field!(CredentialsForm, VerifyForm, ChallengeForm, PasskeyForm);
