//! Forward-auth for reverse proxies: nginx's `auth_request` asks
//! `/api/authz/auth-request`, Caddy's `forward_auth` and Traefik's
//! `ForwardAuth` ask `/api/authz/forward-auth` (the paths Authelia users
//! already have in their snippets). The domain decides (`forward_auth`);
//! this module reads the proxies' headers and speaks their protocols.
//!
//! nginx treats anything but 2xx, 401 and 403 from the sub-request as a 500,
//! so it is told "sign in" with a 401 carrying `Location`, which its
//! `error_page 401 =302` turns into a redirect. Caddy and Traefik pass our
//! answer to the browser as it is: a 302 (303 after a non-GET, so the
//! browser does not resend a form to the sign-in page).
//!
//! The sign-in portal and the protected apps are on different hosts, so the
//! session reaches the check in a second cookie, issued for the operator's
//! `access.cookie_domains` by `/login?rd=URL` (`portal_entry`), holding the
//! same session token: signing out ends access to every app at once.

use axum::Router;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use twostep_domain::audit::RequestContext;
use twostep_domain::policy::access::Target;
use twostep_domain::policy::forward_auth::{Passed, Verdict};
use twostep_domain::token::Token;

use crate::AppState;
use crate::cookies;
use crate::extract::{bearer, request_context};
use crate::web::encode;

pub const AUTH_REQUEST_PATH: &str = "/api/authz/auth-request";
pub const FORWARD_AUTH_PATH: &str = "/api/authz/forward-auth";

/// How long a return URL waits for the sign-in it started.
const RETURN_COOKIE_SECS: i64 = 15 * 60;

pub fn routes() -> Router<AppState> {
    // Any method: Traefik asks with the original request's.
    Router::new()
        .route(AUTH_REQUEST_PATH, any(|s: State<AppState>, p: Parts| check(s, p, Protocol::Nginx)))
        .route(FORWARD_AUTH_PATH, any(|s: State<AppState>, p: Parts| check(s, p, Protocol::Forwarded)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `X-Original-URL`, `X-Original-Method`; "sign in" is a 401.
    Nginx,
    /// `X-Forwarded-Proto`, `-Host`, `-Uri`, `-Method`; "sign in" is a redirect.
    Forwarded,
}

/// The forward-auth cookie: `Domain` set, so no `__Host-` prefix.
pub fn cookie_name(s: &AppState) -> &'static str {
    if s.web.secure_cookies { "__Secure-twostep_fa" } else { "twostep_fa" }
}

fn return_cookie(s: &AppState) -> &'static str {
    if s.web.secure_cookies { "__Host-twostep_return" } else { "twostep_return" }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The original request's URL and method, as the proxy reports them.
fn original(p: &Parts, proto: Protocol) -> Option<(String, String)> {
    let h = &p.headers;
    let forwarded = || {
        let scheme = header_str(h, "x-forwarded-proto")?;
        let host = header_str(h, "x-forwarded-host")?;
        let uri = header_str(h, "x-forwarded-uri").unwrap_or("/");
        uri.starts_with('/').then(|| format!("{scheme}://{host}{uri}"))
    };
    let url = match proto {
        Protocol::Nginx => header_str(h, "x-original-url").map(str::to_owned).or_else(forwarded)?,
        Protocol::Forwarded => forwarded()?,
    };
    let method = match proto {
        Protocol::Nginx => header_str(h, "x-original-method"),
        Protocol::Forwarded => header_str(h, "x-forwarded-method"),
    }
    .or_else(|| header_str(h, "x-forwarded-method"))
    .unwrap_or(p.method.as_str())
    .to_owned();
    Some((url, method))
}

/// The session token the proxy passed on: a script's bearer token, else
/// the forward-auth cookie.
fn presented(s: &AppState, h: &HeaderMap) -> Option<Token> {
    bearer(h).or_else(|| cookies::get(h, cookie_name(s)).map(|t| Token::presented(&t)))
}

/// XHR, or a client that does not take HTML: a redirect to a page is no
/// use to it.
fn is_api_client(h: &HeaderMap) -> bool {
    let xhr = header_str(h, "x-requested-with").is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"));
    let html = header_str(h, header::ACCEPT.as_str()).is_some_and(|v| v.to_ascii_lowercase().contains("text/html"));
    xhr || !html
}

async fn check(State(s): State<AppState>, p: Parts, proto: Protocol) -> Response {
    let Some((url, method)) = original(&p, proto) else {
        return answer(StatusCode::BAD_REQUEST, "the proxy sent no original URL (see the README's proxy snippets)");
    };
    let ctx = request_context(&p);
    let ip = twostep_domain::policy::allowlist::parse_ip(&ctx.ip);
    let Some(target) = Target::from_url(&url, &method, ip) else {
        return answer(StatusCode::BAD_REQUEST, "the original URL is not an absolute http(s) URL");
    };
    let verdict = match s.twostep.forward_auth(presented(&s, &p.headers).as_ref(), &target, &ctx).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "forward-auth check failed");
            return answer(StatusCode::INTERNAL_SERVER_ERROR, "something went wrong on our side");
        }
    };
    let origin = &s.web.public_origin;
    // Only for a redirect: a pass (the hot path) parses no second URL.
    let return_to = || s.twostep.settings().access.return_target(&url, !s.web.secure_cookies);
    let location = match verdict {
        Verdict::Pass(who) => return passed(who.as_ref()),
        Verdict::Forbidden => return answer(StatusCode::FORBIDDEN, "you may not reach this address"),
        Verdict::SignIn => match return_to() {
            Some(u) => format!("{origin}/login?rd={}", encode(&u)),
            None => format!("{origin}/login"),
        },
        // Re-auth proves the second factor, then `/login?rd=` re-issues
        // the cookie (re-auth gives the session a new token) and returns.
        Verdict::SecondFactor => {
            let back = return_to().map_or_else(|| "/security".to_owned(), |u| format!("/login?rd={}", encode(&u)));
            format!("{origin}/reauth?next={}", encode(&back))
        }
        // An enrolment-only session may set up an authenticator too.
        Verdict::Enrol => format!("{origin}/security/totp/new"),
    };
    if is_api_client(&p.headers) {
        return answer(StatusCode::UNAUTHORIZED, "sign in first");
    }
    let status = match proto {
        Protocol::Nginx => StatusCode::UNAUTHORIZED,
        Protocol::Forwarded if matches!(Method::from_bytes(method.as_bytes()), Ok(Method::GET | Method::HEAD)) => {
            StatusCode::FOUND
        }
        Protocol::Forwarded => StatusCode::SEE_OTHER,
    };
    let mut res = answer(status, "sign in first");
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// A short JSON body in the API's error shape (proxies show it rarely).
fn answer(status: StatusCode, message: &str) -> Response {
    let code = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FOUND | StatusCode::SEE_OTHER => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::BAD_REQUEST => "invalid_request",
        _ => "internal",
    };
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// 200 with the headers the proxy copies upstream. They are present (empty)
/// even when nobody signed in: Caddy 2.6's `copy_headers` otherwise sends
/// its own placeholder text upstream, and an empty copy replaces whatever a
/// client sent. Values that cannot be header values are left empty rather
/// than mangled.
fn passed(who: Option<&Passed>) -> Response {
    let mut res = StatusCode::OK.into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let (email, groups) = match who {
        Some(w) => (w.email.as_str(), w.groups.iter().map(String::as_str).filter(|g| !g.contains(',')).collect()),
        None => ("", Vec::new()),
    };
    for (name, value) in
        [("remote-user", email), ("remote-email", email), ("remote-name", email), ("remote-groups", &groups.join(","))]
    {
        let v = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
        res.headers_mut().insert(HeaderName::from_static(name), v);
    }
    res
}

/// What `/login?rd=URL` does before showing the sign-in page.
pub enum Entry {
    /// Already signed in: the forward-auth cookie is issued and the
    /// browser sent back.
    Back(Response),
    /// Not signed in: the return URL waits in a cookie for the sign-in.
    Remember(HeaderValue),
    /// No return URL, or one we will not send anyone to.
    None,
}

/// `/login?rd=URL`: the portal's door for the protected apps.
pub async fn portal_entry(s: &AppState, h: &HeaderMap, ctx: &RequestContext, rd: Option<&str>) -> Entry {
    let access = &s.twostep.settings().access;
    let Some(target) = rd.and_then(|rd| access.return_target(rd, !s.web.secure_cookies)) else {
        return Entry::None;
    };
    if let Some(token) = cookies::get(h, s.web.session_cookie())
        && s.twostep.authenticate_from(&Token::presented(&token), ctx).await.is_ok()
        && let Some(cookie) = fa_cookie(s, &target, &token)
    {
        let mut res = continue_page(&target);
        res.headers_mut().append(header::SET_COOKIE, cookie);
        res.headers_mut().append(header::SET_COOKIE, cookies::clear(&s.web, return_cookie(s)));
        return Entry::Back(res);
    }
    Entry::Remember(cookies::set(&s.web, return_cookie(s), &encode(&target), Some(RETURN_COOKIE_SECS)))
}

/// A page that moves on to the app at once. Not a redirect: right after
/// the sign-in form, the browser applies our `form-action 'self'` to the
/// whole redirect chain and would stop at the app's other origin; a meta
/// refresh is a fresh navigation.
fn continue_page(target: &str) -> Response {
    let url = target.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
    let host = url::Url::parse(target).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0;url={url}\"><title>Signed in</title>\
         <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main>\
         <p>Signed in. <a href=\"{url}\">Continue to {host}</a></p></main></body></html>"
    );
    let mut res = axum::response::Html(html).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The forward-auth cookie for the cookie domain `target` lies in.
fn fa_cookie(s: &AppState, target: &str, token: &str) -> Option<HeaderValue> {
    let host = url::Url::parse(target).ok()?.host_str()?.to_owned();
    let domain = s.twostep.settings().access.cookie_domain_for(&host)?.to_owned();
    let secure = if s.web.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={token}; Domain={domain}; Path=/; HttpOnly; SameSite=Lax{secure}",
        cookie_name(s)
    ))
    .ok()
}

/// Where a finished sign-in goes: back through `/login?rd=` when it began
/// at a protected app, else `default`.
pub fn after_sign_in(s: &AppState, h: &HeaderMap, default: &str) -> String {
    // A sign-in that an app began at the OpenID provider goes back there.
    if let Some(back) = crate::oidc::pending_return(s, h) {
        return back;
    }
    let access = &s.twostep.settings().access;
    cookies::get(h, return_cookie(s))
        .and_then(|v| serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={v}")).ok())
        .and_then(|mut v| v.pop())
        .and_then(|(_, rd)| access.return_target(&rd, !s.web.secure_cookies))
        .map_or_else(|| default.to_owned(), |rd| format!("/login?rd={}", encode(&rd)))
}

/// Sign-out clears the forward-auth cookie on every cookie domain (the
/// session it holds is gone already).
pub fn clear_cookies(s: &AppState, mut res: Response) -> Response {
    let secure = if s.web.secure_cookies { "; Secure" } else { "" };
    for domain in &s.twostep.settings().access.cookie_domains {
        let c = format!("{}=; Domain={domain}; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}", cookie_name(s));
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res.headers_mut().append(header::SET_COOKIE, cookies::clear(&s.web, return_cookie(s)));
    res
}
