//! Adding and removing authenticator apps in the browser.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use twostep_domain::error::FactorError;
use twostep_domain::factors::totp::TotpEnrollment;
use twostep_domain::factors::totp::otpauth::group_for_typing;

use super::error::{self, Reply};
use super::pages::{Confirm, TotpSetup};
use super::security::{confirm_page, show_codes};
use super::{CsrfForm, SignedForm, WebSession, after_rotation, render, see_other};
use crate::AppState;
use crate::extract::Ctx;

fn setup_page(session: &WebSession, e: &TotpEnrollment, name: String, error: Option<String>) -> Response {
    let status = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    render(
        status,
        &TotpSetup {
            nav: session.nav(),
            csrf: session.csrf.clone(),
            enrollment_id: e.id.to_string(),
            qr_svg: e.qr_svg.clone(),
            secret_grouped: group_for_typing(&e.secret_base32),
            secret: e.secret_base32.clone(),
            otpauth_uri: e.otpauth_uri.clone(),
            name,
            error,
        },
    )
}

/// Only a button: starting an enrolment replaces the pending one, so a GET
/// (a link on another site, a prefetch) must not (SEC-55).
pub async fn new_enrollment_page(session: WebSession) -> Response {
    render(
        StatusCode::OK,
        &Confirm {
            nav: session.nav(),
            csrf: session.csrf.clone(),
            heading: "Set up an authenticator app".into(),
            text: "You will scan a QR code with an authenticator app (Google Authenticator, 1Password, Aegis…) and enter the code it shows. Starting again replaces a set-up you did not finish.".into(),
            action: "/security/totp/new".into(),
            button: "Start set-up",
            danger: false,
            cancel: "/security".into(),
        },
    )
}

/// Every start makes a new secret and QR code (seed 002).
pub async fn new_enrollment(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.start_totp_enrollment(&session.me, &ctx).await {
        Ok(e) => setup_page(&session, &e, String::new(), None),
        Err(e) => error::factor(&e, "/security/totp/new"),
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enrollment_id: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
}

pub async fn confirm(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, f): SignedForm<ConfirmForm>,
) -> Response {
    let name = Some(f.name.as_str()).filter(|n| !n.trim().is_empty());
    match s.twostep.confirm_totp(&session.me, &f.enrollment_id, &f.code, name, &ctx).await {
        Ok(c) => after_rotation(&s, session, c.session_token.as_ref(), |session| match &c.recovery_codes {
            Some(codes) => show_codes(
                session,
                codes,
                "Two-factor authentication is on",
                "Save these recovery codes now. Each one signs you in once if you lose your phone. Download, copy or print them.",
            ),
            None => see_other("/security?notice=added"),
        }),
        // Gone because it just succeeded (the codes page reloaded, sending
        // its form again): the app is set up, no new set-up is wanted.
        Err(FactorError::EnrollmentGone) if has_app(&s, &session).await => {
            see_other("/security?notice=totp_already_added")
        }
        Err(e) => match error::totp_confirm(e, "/security/totp/new") {
            Reply::Inline(r) => match s.twostep.pending_enrollment(&session.me, &f.enrollment_id).await {
                Ok(e) => setup_page(&session, &e, f.name, Some(r.message)),
                Err(_) => see_other("/security/totp/new"),
            },
            Reply::Page(res) => res,
        },
    }
}

/// Whether an authenticator app was added within a set-up's lifetime: the
/// confirm that made it is what the browser is sending again.
async fn has_app(s: &AppState, session: &WebSession) -> bool {
    let since = s.twostep.now().plus_secs(-s.twostep.settings().enrollment_secs);
    s.twostep.authenticators(&session.me.account.id).await.is_ok_and(|list| {
        list.iter().any(|a| a.kind == twostep_domain::factors::totp::TOTP_KIND && a.created_at >= since)
    })
}

pub async fn qr_png(State(s): State<AppState>, session: WebSession, Path(id): Path<String>) -> Response {
    match s.twostep.enrollment_qr_png(&session.me, &id).await {
        Ok(png) => ([(header::CONTENT_TYPE, "image/png")], png).into_response(),
        Err(_) => error::not_found_page(),
    }
}

pub async fn remove_page(State(s): State<AppState>, session: WebSession, Path(id): Path<String>) -> Response {
    if let Some(kept) = super::security::kept_by_policy(&s, &session, false).await {
        return kept;
    }
    let here = format!("/security/authenticators/{}/remove", super::encode(&id));
    confirm_page(
        &s,
        session,
        &here.clone(),
        Confirm {
            nav: None,
            csrf: String::new(),
            heading: "Remove authenticator".into(),
            text: "This authenticator will no longer sign you in. If it is your last one, two-factor authentication turns off.".into(),
            action: here,
            button: "Remove",
            danger: true,
            cancel: "/security".into(),
        },
    )
    .await
}

pub async fn remove(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.remove_authenticator(&session.me, &id, &ctx).await {
        Ok(()) => see_other("/security?notice=removed"),
        Err(e) => error::factor(&e, &format!("/security/authenticators/{}/remove", super::encode(&id))),
    }
}

super::csrf_field!(ConfirmForm);
