//! The browser's side: the authorization endpoint, the consent page and
//! RP-initiated logout. A person without a session goes through the
//! sign-in pages and comes back (`pending_return`); one whose session
//! lacks the second factor a client demands proves it on the re-auth page.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use twostep_domain::oidc::OidcError;
use twostep_domain::oidc::flow::{AuthParams, AuthRequest, Decision, Refused};
use twostep_domain::oidc::rules::has_scope;
use twostep_domain::sessions::store::SignedIn;
use twostep_domain::token::Token;

use super::pages::{Consent, OidcErrorPage};
use super::{AUTHORIZE_PATH, return_cookie};
use crate::extract::Ctx;
use crate::web::{SignedForm, encode, render, see_other, with_cookie};
use crate::{AppState, cookies, csrf};

/// How long the authorization request waits in its cookie for a sign-in.
const RETURN_SECS: i64 = 900;

async fn signed_in(s: &AppState, headers: &HeaderMap, ctx: &twostep_domain::audit::RequestContext) -> Option<SignedIn> {
    let token = cookies::get(headers, s.web.session_cookie())?;
    s.twostep.authenticate_from(&Token::presented(&token), ctx).await.ok()
}

fn error_page(message: &str) -> Response {
    render(StatusCode::BAD_REQUEST, &OidcErrorPage { nav: None, message: message.to_owned() })
}

/// Sends the browser on to the client. Right after one of our forms, a
/// redirect to another origin would fall under our `form-action 'self'`,
/// so a page that moves on by itself is answered instead.
fn to_client(headers: &HeaderMap, url: &str) -> Response {
    let from_our_page = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("same-origin");
    let mut res = if from_our_page {
        let href = url.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
        axum::response::Html(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta http-equiv=\"refresh\" content=\"0;url={href}\"><title>Continue</title>\
             <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main class=\"narrow\">\
             <p><a href=\"{href}\">Continue to the app</a></p></main></body></html>"
        ))
        .into_response()
    } else {
        (StatusCode::FOUND, [(header::LOCATION, url.to_owned())]).into_response()
    };
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    res
}

/// The request again, without what a fresh sign-in has just satisfied
/// (`prompt=login`, `max_age`), so coming back does not ask again.
fn return_path(query: &str) -> String {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let kept: Vec<_> =
        pairs.into_iter().filter(|(k, v)| !(k == "max_age" || (k == "prompt" && v != "consent"))).collect();
    format!("{AUTHORIZE_PATH}?{}", serde_urlencoded::to_string(kept).unwrap_or_default())
}

/// The sign-in page, its e-mail field filled from `login_hint` when the
/// hint is an address (OIDC Core §3.1.2.1); anything else is ignored.
fn login_path(req: &AuthRequest) -> String {
    match req.login_hint.as_deref().map(str::trim) {
        Some(hint) if hint.len() <= 254 && hint.contains('@') && !hint.contains(char::is_whitespace) => {
            format!("/login?email={}", encode(hint))
        }
        _ => "/login".to_owned(),
    }
}

pub async fn authorize(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let query = q.unwrap_or_default();
    let Ok(params) = serde_urlencoded::from_str::<AuthParams>(&query) else {
        return error_page("The app sent a request that cannot be read.");
    };
    let req = match s.oidc.check_request(&params).await {
        Ok(r) => r,
        Err(Refused::Page(message)) => {
            let e = OidcError::InvalidRequest(message.clone());
            s.oidc.audit_refusal(&s.twostep, None, params.client_id.as_deref().unwrap_or_default(), &e, &ctx).await;
            return error_page(&message);
        }
        Err(Refused::Redirect { redirect_uri, state, error }) => {
            let client = params.client_id.as_deref().unwrap_or_default();
            let url = s.oidc.refuse(&s.twostep, None, client, &redirect_uri, state.as_deref(), &error, &ctx).await;
            return to_client(&headers, &url);
        }
    };
    let me = signed_in(&s, &headers, &ctx).await;
    proceed(&s, &ctx, &headers, &query, &req, me.as_ref(), None).await
}

/// Acts on the decision for a checked request; `consented` overrides the
/// stored consent right after the consent form.
async fn proceed(
    s: &AppState,
    ctx: &twostep_domain::audit::RequestContext,
    headers: &HeaderMap,
    query: &str,
    req: &AuthRequest,
    me: Option<&SignedIn>,
    consented: Option<String>,
) -> Response {
    let facts = match me {
        Some(me) => match s.oidc.facts(&s.twostep, me).await {
            Ok(f) => Some(f),
            Err(e) => return super::json_error(StatusCode::INTERNAL_SERVER_ERROR, &OidcError::Store(e)),
        },
        None => None,
    };
    let consented = match (&consented, &facts) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(f)) => match s.oidc.consented(&f.account_id, &req.client.id).await {
            Ok(c) => c,
            Err(e) => return super::json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        },
        (None, None) => None,
    };
    let remember = |res: Response| {
        let value = data_encoding::BASE64URL_NOPAD.encode(return_path(query).as_bytes());
        with_cookie(res, cookies::set(&s.web, return_cookie(s), &value, Some(RETURN_SECS)))
    };
    let account = facts.as_ref().map(|f| f.account_id.clone());
    match s.oidc.decide(req, facts.as_ref(), consented.as_deref()) {
        Decision::Login => remember(see_other(&login_path(req))),
        Decision::StepUp => see_other(&format!("/reauth?next={}", encode(&return_path(query)))),
        Decision::Enrol => remember(see_other("/security?notice=app_requires_2fa")),
        Decision::Consent => match me {
            Some(me) => consent_page(s, me, req, query),
            None => remember(see_other(&login_path(req))),
        },
        Decision::Issue => {
            let Some(f) = facts else { return remember(see_other(&login_path(req))) };
            match s.oidc.issue_code(&s.twostep, req, &f, ctx).await {
                Ok(url) => with_cookie(to_client(headers, &url), cookies::clear(&s.web, return_cookie(s))),
                Err(e) => super::json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
            }
        }
        Decision::Refuse(e) => {
            let url = s
                .oidc
                .refuse(&s.twostep, account.as_ref(), &req.client.id, &req.redirect_uri, req.state.as_deref(), &e, ctx)
                .await;
            with_cookie(to_client(headers, &url), cookies::clear(&s.web, return_cookie(s)))
        }
    }
}

fn consent_page(s: &AppState, me: &SignedIn, req: &AuthRequest, query: &str) -> Response {
    let params: Vec<(String, String)> = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != "csrf" && k != "decision")
        .collect();
    let host =
        url::Url::parse(&req.redirect_uri).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
    let csrf = csrf::session_token(s, me);
    let nav = crate::web::Nav {
        email: me.account.email.to_string(),
        csrf: csrf.clone(),
        mandate: None,
        admin: me.account.admin_since.is_some(),
    };
    render(
        StatusCode::OK,
        &Consent {
            nav: Some(nav),
            csrf,
            client_name: req.client.name.clone(),
            account_email: me.account.email.to_string(),
            email: has_scope(&req.scope, "email"),
            groups: has_scope(&req.scope, "groups"),
            offline: has_scope(&req.scope, "offline_access"),
            redirect_host: host,
            params,
        },
    )
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(flatten)]
    params: std::collections::HashMap<String, String>,
}

crate::web::csrf_field!(ConsentForm);

pub async fn consent(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    SignedForm(session, f): SignedForm<ConsentForm>,
) -> Response {
    let query = serde_urlencoded::to_string(&f.params).unwrap_or_default();
    let Ok(params) = serde_urlencoded::from_str::<AuthParams>(&query) else {
        return error_page("The consent form could not be read.");
    };
    let mut req = match s.oidc.check_request(&params).await {
        Ok(r) => r,
        Err(Refused::Page(message)) => return error_page(&message),
        Err(Refused::Redirect { redirect_uri, state, error }) => {
            let url = s
                .oidc
                .refuse(
                    &s.twostep,
                    None,
                    &params.client_id.unwrap_or_default(),
                    &redirect_uri,
                    state.as_deref(),
                    &error,
                    &ctx,
                )
                .await;
            return to_client(&headers, &url);
        }
    };
    let me = &session.me;
    if f.decision != "allow" {
        let e = OidcError::AccessDenied("the person declined".into());
        let url = s
            .oidc
            .refuse(&s.twostep, Some(&me.account.id), &req.client.id, &req.redirect_uri, req.state.as_deref(), &e, &ctx)
            .await;
        return to_client(&headers, &url);
    }
    if let Err(e) = s.oidc.consent(&me.account.id, &req).await {
        return super::json_error(StatusCode::INTERNAL_SERVER_ERROR, &e);
    }
    req.prompt_consent = false;
    let scope = req.scope.clone();
    proceed(&s, &ctx, &headers, &query, &req, Some(me), Some(scope)).await
}

#[derive(Default, Deserialize)]
pub struct LogoutParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
}

pub async fn logout(State(s): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let p = serde_urlencoded::from_str::<LogoutParams>(&q.unwrap_or_default()).unwrap_or_default();
    end_session(&s, &ctx, &headers, p).await
}

pub async fn logout_post(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let p = serde_urlencoded::from_bytes::<LogoutParams>(&body).unwrap_or_default();
    end_session(&s, &ctx, &headers, p).await
}

/// OpenID Connect RP-Initiated Logout 1.0. The browser's session ends
/// when the hint names its account; anyone else is asked to sign out with
/// the usual button. The browser goes back only to a URI the client
/// registered for it.
async fn end_session(
    s: &AppState,
    ctx: &twostep_domain::audit::RequestContext,
    headers: &HeaderMap,
    p: LogoutParams,
) -> Response {
    let hint = match p.id_token_hint.as_deref().filter(|h| h.len() <= 8192) {
        Some(h) => match s.oidc.logout_hint(h).await {
            Ok(Some(found)) => Some(found),
            Ok(None) => return error_page("The app sent a sign-out request twostep did not issue."),
            Err(e) => return super::json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        },
        None => None,
    };
    let client = match (&hint, p.client_id.as_deref()) {
        (Some((c, _)), Some(id)) if c.id != id => return error_page("The sign-out request names two different apps."),
        (Some((c, _)), _) => Some(c.clone()),
        (None, Some(id)) => s.oidc.client_by_id(id).await.ok().flatten(),
        (None, None) => None,
    };
    let back = match (&p.post_logout_redirect_uri, &client) {
        (None, _) => None,
        (Some(uri), Some(c)) if c.post_logout_redirect_uris.iter().any(|r| r == uri) => {
            let Ok(mut url) = url::Url::parse(uri) else {
                return error_page("The app's sign-out address cannot be read.");
            };
            if let Some(state) = &p.state {
                url.query_pairs_mut().append_pair("state", state);
            }
            Some(String::from(url))
        }
        (Some(_), _) => return error_page("The app asked to return you to an address it has not registered."),
    };
    let me = signed_in(s, headers, ctx).await;
    if let Some(me) = &me {
        let hinted = hint.as_ref().is_some_and(|(_, account)| *account == me.account.id);
        if !hinted {
            // Without proof the app is asking for this person, a link could
            // sign anyone out: they confirm with the usual sign-out button.
            let csrf = csrf::session_token(s, me);
            let nav = crate::web::Nav {
                email: me.account.email.to_string(),
                csrf: csrf.clone(),
                mandate: None,
                admin: me.account.admin_since.is_some(),
            };
            // A sign-out an app asked for without proving whose.
            let page = crate::web::Confirm {
                nav: Some(nav),
                csrf,
                heading: "Sign out of twostep?".into(),
                text: "An app asked to sign you out of twostep.".into(),
                action: "/logout".into(),
                button: "Sign out",
                danger: false,
                cancel: "/security".into(),
            };
            return render(StatusCode::OK, &page);
        }
        if let Err(e) = s.twostep.sign_out(me, ctx).await {
            tracing::error!(error = %e, "sign-out failed");
        }
    }
    let res = match back {
        Some(url) => to_client(headers, &url),
        None => see_other("/login?signed_out=1"),
    };
    let res = with_cookie(res, cookies::clear(&s.web, s.web.session_cookie()));
    crate::authz::clear_cookies(s, res)
}
