//! The second step of signing in, as the browser holds it: the login token
//! in a cookie, and nothing else. Which methods the account offers is read
//! from the domain on every request (`login_methods`) and a pending code or
//! push is bound to the token there, so no client-held state shapes the
//! flow, and a factor locked since the password step drops out of the page.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use twostep_domain::audit::RequestContext;
use twostep_domain::factors::webauthn::WEBAUTHN;
use twostep_domain::factors::{Challenge, Method};

use super::codes;
use super::error::{internal, sign_in_expired};
use super::pages::{LoginVerify, SendButton};
use super::{render, see_other, with_cookie};
use crate::{AppState, cookies};

/// A sign-in waiting for its second factor.
pub struct Pending {
    pub login_token: String,
    /// The account's methods now, strongest first.
    pub methods: Vec<Method>,
}

/// The login token the browser holds, if any.
pub fn login_token(s: &AppState, headers: &HeaderMap) -> Option<String> {
    cookies::get(headers, s.web.login_cookie())
}

/// The sign-in in progress, or the response that starts it again (no
/// token, or one spent or expired).
pub async fn pending(s: &AppState, headers: &HeaderMap) -> Result<Pending, Response> {
    let Some(login_token) = login_token(s, headers) else { return Err(see_other("/login?expired=1")) };
    match s.twostep.login_methods(&login_token).await {
        Ok(Some(methods)) => Ok(Pending { login_token, methods }),
        Ok(None) => Err(sign_in_expired(&s.web)),
        Err(e) => Err(internal(&e)),
    }
}

/// Ends the second step's cookie once it succeeded.
pub fn finish(s: &AppState, res: Response) -> Response {
    with_cookie(res, cookies::clear(&s.web, s.web.login_cookie()))
}

/// The second step's page for `method`, with the account's other methods under it.
pub fn view(
    status: StatusCode,
    csrf: String,
    methods: &[Method],
    method: Method,
    error: Option<String>,
    send: Option<SendButton>,
    key_options: Option<String>,
) -> Response {
    let others = codes::others(methods, method, |m| format!("/login/verify?method={}", m.as_str()), "");
    let code_label = codes::code_label(method);
    let page = LoginVerify { nav: None, csrf, method: method.as_str(), code_label, error, send, others, key_options };
    render(status, &page)
}

/// A security key's ceremony for a page showing `method`: a new challenge
/// bound to the login token (the last one shown is the one that counts).
pub async fn key_options(s: &AppState, login_token: &str, method: Method, ctx: &RequestContext) -> Option<String> {
    if method != WEBAUTHN {
        return None;
    }
    match s.twostep.login_challenge(login_token, method, None, ctx).await {
        Ok(Challenge::WebAuthn { options }) => Some(options.to_string()),
        _ => None,
    }
}
