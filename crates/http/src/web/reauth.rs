//! "Confirm it's you": asks for whatever proof is missing, then returns to
//! the page the user was on. The session cookie gets a new id (§2.11).
//! Accounts whose second factor is a phone (or a verified e-mail address)
//! first ask for a code to be sent (`POST /reauth/challenge`); a push is
//! raised the same way and waited for on its own page.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use twostep_domain::audit::RequestContext;
use twostep_domain::factors::push::PushStarted;
use twostep_domain::factors::webauthn::WEBAUTHN;
use twostep_domain::factors::{Challenge, ChallengeError, Method};
use twostep_domain::signin::reauth::ReauthProofs;

use super::error::{self, Refusal, Reply, SendForm, internal};
use super::pages::{Reauth, ReauthPush};
use super::{SignedForm, WebSession, codes, encode, render, see_other, with_cookie};
use crate::extract::Ctx;
use crate::{AppState, cookies};

/// Where a `next` parameter may send the browser: a path on this site, as
/// the URL parser (the browser's rules, WHATWG) reads it, else `/security`.
/// Checking the text alone is not enough: parsers drop tabs and newlines
/// and read a backslash as `/`, so `/\t/evil.example` is `//evil.example`, another
/// host (an open redirect), and a raw newline cannot even be a header. So
/// anything with whitespace, control characters or a backslash is refused
/// outright, and the rest must resolve against our origin to our origin,
/// with no encoded `//` or backslash left for a later decoding to turn into one.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    const DEFAULT: &str = "/security";
    let Some(next) = next else { return DEFAULT.to_owned() };
    if !next.starts_with('/') || next.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return DEFAULT.to_owned();
    }
    let Ok(base) = url::Url::parse("http://twostep.invalid/") else { return DEFAULT.to_owned() };
    let Ok(url) = base.join(next) else { return DEFAULT.to_owned() };
    if url.origin() != base.origin() || !url.username().is_empty() || url.password().is_some() {
        return DEFAULT.to_owned();
    }
    let local = &url[url::Position::BeforePath..];
    let lower = local.to_ascii_lowercase();
    if local.starts_with("//") || lower.starts_with("/%2f") || lower.contains("%5c") {
        return DEFAULT.to_owned();
    }
    local.to_owned()
}

#[derive(Deserialize)]
pub struct ReauthQuery {
    next: Option<String>,
    method: Option<String>,
}

/// What a rendering of the page shows beyond the form itself.
struct Shown {
    /// The method asked for, if any; the account's first one otherwise.
    method: Option<String>,
    error: Option<String>,
    status: StatusCode,
    /// Where the last code went, masked, once one was sent.
    sent_to: Option<String>,
    /// Seconds before another code may be asked for.
    wait: i64,
}

impl Shown {
    fn method(method: Option<&str>) -> Self {
        Self { method: method.map(str::to_owned), error: None, status: StatusCode::OK, sent_to: None, wait: 0 }
    }

    /// The page again after `r`, for `method` (a recovery code once codes are locked).
    fn refused(method: Method, r: Refusal, sent_to: Option<&str>) -> Self {
        let sent_to = codes::masked_or_none(sent_to);
        let method = r.method(method).as_str().to_owned();
        Self { method: Some(method), error: Some(r.message), status: r.status, sent_to, wait: r.wait }
    }
}

async fn show(s: &AppState, session: &WebSession, ctx: &RequestContext, next: String, v: Shown) -> Response {
    let (need_password, need_code) = match s.twostep.reauth_needs(&session.me).await {
        Ok(n) => n,
        Err(e) => return internal(&e),
    };
    if !need_password && !need_code && v.error.is_none() {
        return see_other(&next);
    }
    // After a failed attempt both proofs are asked again: simpler to reason about.
    let (need_password, need_code) = if v.error.is_some() {
        let two_factor = s.twostep.authenticators(&session.me.account.id).await.map_or(true, |a| !a.is_empty());
        (true, two_factor)
    } else {
        (need_password, need_code)
    };
    let methods = if need_code {
        match s.twostep.methods_of(&session.me.account.id).await {
            Ok(m) => m,
            Err(e) => return internal(&e),
        }
    } else {
        Vec::new()
    };
    // The form takes a typed code; a push is offered among the others and
    // has its own waiting page (`challenge`).
    let typed: Vec<Method> = methods.iter().copied().filter(|m| !m.is_approval()).collect();
    let method = codes::pick(&typed, v.method.as_deref());
    let next_enc = encode(&next);
    let others =
        codes::others(&methods, method, |m| format!("/reauth?method={}&next={next_enc}", m.as_str()), " instead");
    let destination = if need_code && v.sent_to.is_none() && method.sends_code() {
        s.twostep.method_destination(&session.me.account.id, method).await
    } else {
        None
    };
    let send = if need_code { codes::send_button(method, v.sent_to, v.wait) } else { None };
    // A key's challenge, bound to this session: the last page shown counts.
    let key_options = if need_code && method == WEBAUTHN {
        match s.twostep.reauth_challenge(&session.me, method, ctx).await {
            Ok(Challenge::WebAuthn { options }) => Some(options.to_string()),
            _ => None,
        }
    } else {
        None
    };
    render(
        v.status,
        &Reauth {
            nav: session.nav(),
            csrf: session.csrf.clone(),
            next,
            need_password,
            need_code,
            method: method.as_str(),
            code_label: method.info().field_label,
            error: v.error,
            send,
            destination,
            others,
            key_options,
        },
    )
}

pub async fn page(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    session: WebSession,
    Query(q): Query<ReauthQuery>,
) -> Response {
    show(&s, &session, &ctx, safe_next(q.next.as_deref()), Shown::method(q.method.as_deref())).await
}

#[derive(Deserialize)]
pub struct ChallengeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    method: String,
    sent_to: Option<String>,
}

/// Sends a code by SMS, call or e-mail, or raises a push, to prove the
/// second factor.
pub async fn challenge(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, f): SignedForm<ChallengeForm>,
) -> Response {
    let next = safe_next(Some(&f.next));
    let Some(method) = Method::parse(&f.method).filter(|m| m.sends_code() || m.is_approval()) else {
        return see_other(&format!("/reauth?next={}", encode(&next)));
    };
    let cooldown = s.twostep.settings().resend_cooldown_secs;
    match s.twostep.reauth_challenge(&session.me, method, &ctx).await {
        Ok(Challenge::Sent(code)) => {
            let shown = Shown { sent_to: Some(code.sent_to), wait: cooldown, ..Shown::method(Some(method.as_str())) };
            show(&s, &session, &ctx, next, shown).await
        }
        Ok(Challenge::Push(started)) => push_page(&s, &session, next, started).await,
        // A key's ceremony runs on the form itself; back to it.
        Ok(Challenge::WebAuthn { .. }) => {
            see_other(&format!("/reauth?method={}&next={}", method.as_str(), encode(&next)))
        }
        // The code form again: a push is offered among its other ways.
        Err(ChallengeError::Push(e)) => match error::push_reauth(e) {
            Reply::Inline(r) => show(&s, &session, &ctx, next, Shown::refused(Method::STRONGEST, r, None)).await,
            Reply::Page(res) => res,
        },
        Err(ChallengeError::Send(e)) => match error::send(e, SendForm::Reauth, cooldown) {
            Reply::Inline(r) => show(&s, &session, &ctx, next, Shown::refused(method, r, f.sent_to.as_deref())).await,
            Reply::Page(res) => res,
        },
    }
}

/// "Approve on my phone instead": the push raised and bound to this
/// session is awaited; the approval is then the second-factor proof of `submit`.
async fn push_page(s: &AppState, session: &WebSession, next: String, p: PushStarted) -> Response {
    let need_password = match s.twostep.reauth_needs(&session.me).await {
        Ok((password, _)) => password,
        Err(e) => return internal(&e),
    };
    render(
        StatusCode::OK,
        &ReauthPush {
            nav: session.nav(),
            csrf: session.csrf.clone(),
            next_encoded: encode(&next),
            next,
            need_password,
            challenge_id: p.challenge_id,
            number: format!("{:02}", p.number),
            sent_to: p.sent_to,
            expires_in: p.expires_in,
        },
    )
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
    sent_to: Option<String>,
}

pub async fn submit(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, f): SignedForm<ReauthForm>,
) -> Response {
    let next = safe_next(Some(&f.next));
    // The domain checks the account has the method.
    let method = f.method.as_deref().and_then(Method::parse).unwrap_or(Method::STRONGEST);
    let second_factor = f.code.as_deref().filter(|c| !c.trim().is_empty()).map(|c| (method, method.proof(c)));
    let proofs = ReauthProofs { password: f.password.as_deref().filter(|p| !p.is_empty()), second_factor };
    match s.twostep.reauth(&session.me, proofs, &ctx).await {
        Ok(()) => match s.twostep.rotate_session(&session.me.session.id).await {
            Ok(token) => {
                with_cookie(see_other(&next), cookies::set(&s.web, s.web.session_cookie(), token.expose(), None))
            }
            Err(e) => internal(&e),
        },
        Err(e) => match error::reauth(e) {
            Reply::Inline(r) => {
                // A lock-out asks for a recovery code, with no destination to repeat.
                let sent_to = if r.recovery { None } else { f.sent_to.as_deref() };
                show(&s, &session, &ctx, next, Shown { wait: 0, ..Shown::refused(method, r, sent_to) }).await
            }
            Reply::Page(res) => res,
        },
    }
}

super::csrf_field!(ReauthForm, ChallengeForm);

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn safe_next_keeps_local_paths_and_sends_the_rest_to_security() {
        for (next, want) in [
            ("/security/push/new", "/security/push/new"),
            ("/orgs/abc?tab=members", "/orgs/abc?tab=members"),
            ("/admin/users/x/disable#top", "/admin/users/x/disable#top"),
            ("/a/../security", "/security"),
            ("/", "/"),
            // A path segment, not a user name: still this site.
            ("/@evil.example", "/@evil.example"),
        ] {
            assert_eq!(safe_next(Some(next)), want, "{next:?}");
        }
        for next in [
            "",
            "security",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "\t//evil.example",
            " //evil.example",
            "/ /evil.example",
            "/\n",
            "/\r\nSet-Cookie: a=b",
            "/\u{0}",
            "/\u{7f}",
            "/\u{85}x",
            "/\u{a0}/evil.example",
            "/%2f/evil.example",
            "/%2F%2Fevil.example",
            "/%5cevil.example",
            "/x/%5c/y",
            "https://evil.example/",
            "http://twostep.invalid/security",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(Some(next)), "/security", "{next:?}");
        }
        assert_eq!(safe_next(None), "/security");
    }
}
