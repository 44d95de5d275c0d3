//! Companion devices (push) on the Security page: adding one from a QR
//! pairing link (re-auth first), renaming and removing them. The device's
//! side is the companion page (`companion.rs`).

use super::error::{self, internal, not_found_page};
use super::pages::{Confirm, PushPairing};
use super::rename::{self, RenameForm, Renamed};
use super::security::confirm_page;
use super::{CsrfForm, SignedForm, WebSession, encode, render, see_other};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

const NEW: &str = "/security/push/new";

fn remove_path(id: &str) -> String {
    format!("/security/push/{}/remove", encode(id))
}

/// Each visit makes a new single-use link (like the app's QR code), after
/// re-auth; the previous one stops working.
/// Only a button (re-auth first): a pairing code is a capability, made on
/// a POST with the form's token, never by a link from elsewhere (SEC-55).
pub async fn new_pairing_page(State(s): State<AppState>, session: WebSession) -> Response {
    confirm_page(
        &s,
        session,
        NEW,
        Confirm {
            nav: None,
            csrf: String::new(),
            heading: "Add a companion device".into(),
            text: "You will get a QR code and a link, valid for a few minutes, to open on the phone or tablet that should approve your sign-ins.".into(),
            action: NEW.into(),
            button: "Show the pairing code",
            danger: false,
            cancel: "/security".into(),
        },
    )
    .await
}

pub async fn new_pairing(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    let pairing = match s.twostep.start_push_pairing(&session.me, &ctx).await {
        Ok(p) => p,
        Err(e) => return error::pairing(&e, NEW, session.nav()),
    };
    let link = super::companion::pairing_url(&s.twostep.settings().public_url, pairing.code.expose());
    let qr_svg = match twostep_domain::factors::totp::otpauth::qr_svg(&link) {
        Ok(svg) => svg,
        Err(e) => return internal(&e),
    };
    render(StatusCode::OK, &PushPairing { nav: session.nav(), qr_svg, link, minutes: (pairing.expires_in + 59) / 60 })
}

/// The account's device with this id, if it is one.
async fn own_device(s: &AppState, session: &WebSession, id: &str) -> Result<Option<String>, Response> {
    match s.twostep.push_devices(&session.me.account.id).await {
        Ok(list) => Ok(list.into_iter().find(|d| d.authenticator.id.as_str() == id).map(|d| d.authenticator.name)),
        Err(e) => Err(internal(&e)),
    }
}

const DEVICE: Renamed =
    Renamed { heading: "Rename companion device", base: "/security/push", back: "/security#push-devices" };

pub async fn rename_page(State(s): State<AppState>, session: WebSession, Path(id): Path<String>) -> Response {
    let found = own_device(&s, &session, &id).await;
    rename::page(&session, &DEVICE, &id, found)
}

pub async fn rename(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    SignedForm(session, f): SignedForm<RenameForm>,
) -> Response {
    match s.twostep.rename_push_device(&session.me, &id, &f.name, &ctx).await {
        Ok(_) => see_other("/security?notice=push_renamed"),
        Err(e) => error::push_rename(e)
            .or_page(|r| rename::view(&session, r.status, &DEVICE, &id, rename::typed(&f.name), Some(r.message))),
    }
}

pub async fn remove_page(State(s): State<AppState>, session: WebSession, Path(id): Path<String>) -> Response {
    match own_device(&s, &session, &id).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found_page(),
        Err(res) => return res,
    }
    if let Some(kept) = super::security::kept_by_policy(&s, &session, false).await {
        return kept;
    }
    let here = remove_path(&id);
    confirm_page(
        &s,
        session,
        &here.clone(),
        Confirm {
            nav: None,
            csrf: String::new(),
            heading: "Remove companion device".into(),
            text: "This device will no longer approve sign-ins. If it is your last second factor, two-factor authentication turns off.".into(),
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
    match s.twostep.remove_push_device(&session.me, &id, &ctx).await {
        Ok(()) => see_other("/security?notice=push_removed"),
        Err(e) => error::device_removal(&e, &remove_path(&id)),
    }
}
