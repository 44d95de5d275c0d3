//! Server-rendered pages: sign-up, sign-in (both steps), sign-out, the
//! Security page and its flows. No CDN: templates and assets are compiled
//! into the binary. Every state-changing form carries a CSRF token.

mod account;
mod admin;
mod allowlist;
mod assets;
mod codes;
pub mod companion;
mod dev;
mod devices;
mod email;
pub mod error;
pub mod error_pages;
mod keys;
mod login_push;
mod org_policy;
mod orgs;
mod pages;
mod password;
mod phone;
mod policy;
mod push;
mod reauth;
mod rename;
mod security;
mod security_log;
mod signin;
mod totp;

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use twostep_domain::sessions::SignedIn;
use twostep_domain::sessions::store::SessionKind;
use twostep_domain::token::Token;

use crate::{AppState, cookies, csrf};
use error::{bad_form, forbidden};
pub use pages::{Confirm, Nav};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(account::home))
        .route("/signup", get(account::signup_page).post(account::signup))
        .route("/login", get(account::login_page).post(account::login))
        .route("/login/verify", get(account::verify_page).post(account::verify))
        .route("/login/challenge", post(account::challenge))
        .route("/login/passkey", post(account::passkey))
        .route("/logout", post(account::logout))
        .route("/security", get(security::page))
        .route("/security/totp/new", get(totp::new_enrollment_page).post(totp::new_enrollment))
        .route("/security/totp/confirm", post(totp::confirm))
        .route("/security/totp/{id}/qr.png", get(totp::qr_png))
        .route("/security/keys/new", get(keys::new_page).post(keys::start))
        .route("/security/keys/finish", post(keys::finish))
        .route("/security/keys/{id}/rename", get(keys::rename_page).post(keys::rename))
        .route("/security/authenticators/{id}/remove", get(totp::remove_page).post(totp::remove))
        .route("/security/recovery-codes", get(security::reveal_codes_page).post(security::reveal_codes))
        .route("/security/recovery-codes.txt", get(security::download_codes_page).post(security::download_codes))
        .route("/security/recovery-codes/regenerate", get(security::regenerate_page).post(security::regenerate))
        .route("/security/two-factor/disable", get(security::disable_page).post(security::disable))
        .route("/security/preferred-method", post(security::set_first_method))
        .route("/reauth", get(reauth::page).post(reauth::submit))
        .route("/reauth/challenge", post(reauth::challenge))
        .route("/security/phone", get(phone::setup_page).post(phone::send))
        .route("/security/phone/verify", get(phone::verify_page).post(phone::verify))
        .route("/security/phone/remove", get(phone::remove_page).post(phone::remove))
        .route("/security/push/new", get(push::new_pairing_page).post(push::new_pairing))
        .route("/security/push/{id}/rename", get(push::rename_page).post(push::rename))
        .route("/security/push/{id}/remove", get(push::remove_page).post(push::remove))
        .route("/companion", get(companion::page))
        .route("/companion-sw.js", get(companion::service_worker))
        .route("/companion.webmanifest", get(companion::manifest))
        .route("/static/companion.js", get(companion::script))
        .route("/static/companion-icon.svg", get(companion::icon))
        .route("/security/email/verification", post(email::resend))
        .route("/security/email/confirm", post(email::confirm_code))
        .route("/verify-email", get(email::link_page).post(email::confirm_link))
        // Answers 404 unless dev mode is on.
        .route("/dev/outbox", get(dev::outbox))
        .route("/forgot-password", get(password::forgot_page).post(password::forgot))
        .route("/reset-password", get(password::reset_page).post(password::reset))
        .route("/security/password", get(password::change_page).post(password::change))
        .route("/security/sessions/revoke-others", get(devices::revoke_others_page).post(devices::revoke_others))
        .route("/security/sessions/{id}/revoke", get(devices::revoke_session_page).post(devices::revoke_session))
        .route("/security/browsers/{id}/forget", post(devices::forget_browser))
        .route(security_log::PATH, get(security_log::page))
        .route(allowlist::PATH, get(allowlist::page).post(allowlist::save))
        .route(policy::REQUIRED_PATH, get(policy::required_page))
        .route(policy::WHY_PATH, get(policy::why_page))
        .route("/orgs", get(orgs::list).post(orgs::create))
        .route("/orgs/{id}", get(orgs::show))
        .route("/orgs/{id}/members", post(orgs::invite))
        .route("/orgs/{id}/invitations/{invitation}/revoke", post(orgs::revoke_invitation))
        .route("/orgs/{id}/leave", get(orgs::confirm_leave).post(orgs::leave))
        .route("/invitations/{id}/accept", post(orgs::accept_invitation))
        .route("/invitations/{id}/decline", post(orgs::decline_invitation))
        .route("/orgs/{id}/members/{account}/role", post(orgs::set_role))
        .route("/orgs/{id}/members/{account}/remove", get(orgs::confirm_remove).post(orgs::remove_member))
        .route("/orgs/{id}/two-factor", post(org_policy::set_two_factor))
        .route("/orgs/{id}/passkey-policy", post(org_policy::set_passkey_policy))
        .route("/admin", get(admin::users_page))
        .route("/admin/audit", get(admin::audit_page))
        .route("/admin/users/{id}/{action}", get(admin::confirm_page).post(admin::act))
        .route("/static/app.css", get(assets::css))
        .route("/static/app.js", get(assets::js))
        .route("/static/icon.svg", get(error_pages::icon))
        .route("/favicon.ico", get(error_pages::icon))
}

pub fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

pub fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// A signed-in browser. Without a live session cookie the request is sent
/// to the sign-in page.
pub struct WebSession {
    pub me: SignedIn,
    pub csrf: String,
    /// The operator's 2FA mandate date for the banner (see `policy::banner`).
    pub mandate: Option<String>,
}

impl WebSession {
    pub fn nav(&self) -> Option<Nav> {
        Some(Nav {
            email: self.me.account.email.to_string(),
            csrf: self.csrf.clone(),
            mandate: self.mandate.clone(),
            admin: self.me.account.admin_since.is_some(),
        })
    }

    /// Checks a form's CSRF token and the request's `Origin`.
    pub fn form_ok(&self, state: &AppState, headers: &HeaderMap, given: &str) -> bool {
        csrf::session_token_ok(state, &self.me, given) && csrf::origin_ok(state, headers)
    }
}

impl FromRequestParts<AppState> for WebSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = cookies::get(&parts.headers, state.web.session_cookie()).ok_or_else(|| see_other("/login"))?;
        let ctx = crate::extract::request_context(parts);
        match state.twostep.authenticate_from(&Token::presented(&token), &ctx).await {
            Ok(me) => {
                // An enrolment-only session reaches nothing but factor set-up.
                if me.session.kind == SessionKind::Enrollment && !policy::enrollment_may_reach(parts.uri.path()) {
                    return Err(see_other(policy::REQUIRED_PATH));
                }
                let mandate = policy::banner(state, &me).await?;
                let csrf = csrf::session_token(state, &me);
                Ok(Self { me, csrf, mandate })
            }
            Err(e) => Err(error::session(&e, &state.web)),
        }
    }
}

/// A form with nothing but its CSRF token (a button).
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// Form bodies that carry a CSRF token.
pub trait CsrfField {
    fn csrf(&self) -> &str;
}

macro_rules! csrf_field {
    ($($t:ty),*) => {$(
        impl $crate::web::CsrfField for $t {
            fn csrf(&self) -> &str { &self.csrf }
        }
    )*};
}
pub(crate) use csrf_field;

csrf_field!(CsrfForm);

/// A signed-in browser's form whose CSRF token and origin checked out
/// (§2.11); anything else is refused before the handler runs.
pub struct SignedForm<T>(pub WebSession, pub T);

impl<T: DeserializeOwned + CsrfField + Send> FromRequest<AppState> for SignedForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = WebSession::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let Form(form) =
            Form::<T>::from_request(Request::from_parts(parts, body), state).await.map_err(|_| bad_form())?;
        if !session.form_ok(state, &headers, form.csrf()) {
            return Err(forbidden());
        }
        Ok(Self(session, form))
    }
}

/// A form shown before sign-in, checked against the pre-session cookie.
pub struct PublicForm<T>(pub T);

impl<T: DeserializeOwned + CsrfField + Send> FromRequest<AppState> for PublicForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let Form(form) = Form::<T>::from_request(req, state).await.map_err(|_| bad_form())?;
        let cookie = cookies::get(&headers, state.web.presession_cookie());
        if !(csrf::presession_token_ok(state, cookie.as_deref(), form.csrf()) && csrf::origin_ok(state, &headers)) {
            return Err(forbidden());
        }
        Ok(Self(form))
    }
}

pub fn encode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap_or_default().trim_start_matches("v=").to_owned()
}

/// Adds a `Set-Cookie`.
/// Answers with the page `page` builds for a session the domain may just
/// have given a new id (SEC-52): the page's forms then carry the new
/// session's CSRF token, and the response sets the new cookie.
pub fn after_rotation(
    state: &AppState,
    mut session: WebSession,
    token: Option<&Token>,
    page: impl FnOnce(&WebSession) -> Response,
) -> Response {
    let Some(token) = token else { return page(&session) };
    session.me.session.id = token.hash();
    session.me.session.kind = SessionKind::Full;
    session.csrf = csrf::session_token(state, &session.me);
    with_cookie(page(&session), cookies::set(&state.web, state.web.session_cookie(), token.expose(), None))
}

pub fn with_cookie(mut res: Response, value: HeaderValue) -> Response {
    res.headers_mut().append(header::SET_COOKIE, value);
    res
}
