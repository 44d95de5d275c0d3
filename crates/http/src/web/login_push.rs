//! Signing in with a push: "Approve on my phone" raises a challenge, the
//! page shows its number and waits (app.js long-polls
//! `GET /api/v1/login/challenge/{id}`); once approved it posts the normal
//! second step (`/login/verify`, method `push`, the challenge id as the
//! code). Without script the page's own "I approved it — continue" button
//! does the same.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use twostep_domain::factors::Method;
use twostep_domain::factors::push::{PUSH, PushError, PushStarted, PushState, PushStatusView};

use super::pages::LoginPush;
use super::signin;
use super::{error, render};
use crate::AppState;

/// A challenge id is 22 characters; anything much longer is not one.
const MAX_ID: usize = 64;

struct Shown {
    status: StatusCode,
    challenge_id: String,
    number: i64,
    sent_to: Option<String>,
    expires_in: i64,
    state: PushState,
    error: Option<String>,
}

fn page(csrf: String, methods: &[Method], v: Shown) -> Response {
    let state = match v.state {
        PushState::Pending | PushState::Approved => "pending",
        PushState::Denied => "denied",
        PushState::Expired => "expired",
        PushState::Used => "used",
    };
    let other = methods.iter().find(|m| !m.is_approval()).map(|m| m.as_str().to_owned());
    render(
        v.status,
        &LoginPush {
            nav: None,
            csrf,
            challenge_id: v.challenge_id,
            number: format!("{:02}", v.number),
            sent_to: v.sent_to,
            expires_in: v.expires_in,
            state,
            error: v.error,
            other,
        },
    )
}

/// "Approve on my phone" and "Send another push": the waiting page.
pub fn started(csrf: String, methods: &[Method], p: PushStarted) -> Response {
    page(
        csrf,
        methods,
        Shown {
            status: StatusCode::OK,
            challenge_id: p.challenge_id,
            number: p.number,
            sent_to: Some(p.sent_to),
            expires_in: p.expires_in,
            state: PushState::Pending,
            error: None,
        },
    )
}

/// A push that could not be raised.
pub fn refused(s: &AppState, e: PushError, csrf: String, methods: &[Method]) -> Response {
    error::push_sign_in(e, &s.web)
        .or_page(|r| signin::view(r.status, csrf, methods, r.method(PUSH), Some(r.message), None, None))
}

/// Before the second step with a push: the page to show instead when the
/// challenge is not (or no longer) approved; `None` to go on.
pub async fn not_approved(s: &AppState, id: &str, csrf: &str, methods: &[Method]) -> Option<Response> {
    let id = id.trim();
    let view = if id.is_empty() || id.len() > MAX_ID {
        Err(PushError::NotFound)
    } else {
        s.twostep.push_status(id, Duration::ZERO).await
    };
    let PushStatusView { state, number, expires_in } = match view {
        Ok(v) => v,
        Err(e) => {
            return Some(error::push_sign_in(e, &s.web).or_page(|r| {
                signin::view(r.status, csrf.to_owned(), methods, r.method(PUSH), Some(r.message), None, None)
            }));
        }
    };
    let (status, error) = match state {
        PushState::Approved => return None,
        PushState::Pending => {
            (StatusCode::CONFLICT, "Not approved yet. Approve the request on your device, then continue.")
        }
        PushState::Denied => (StatusCode::UNAUTHORIZED, "The request was denied on your device."),
        PushState::Expired => (StatusCode::GONE, "The request expired."),
        PushState::Used => (StatusCode::GONE, "This request was already used. Send another push to sign in."),
    };
    let shown = Shown {
        status,
        challenge_id: id.to_owned(),
        number,
        sent_to: None,
        expires_in,
        state,
        error: Some(error.to_owned()),
    };
    Some(page(csrf.to_owned(), methods, shown))
}
