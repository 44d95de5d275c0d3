//! Security keys and passkeys on the Security page: naming one, the
//! browser's registration ceremony (app.js runs `navigator.credentials.create()`
//! with the options this page carries and posts the answer back), and
//! renaming. Removal is the authenticators' own (`totp::remove`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use twostep_domain::error::FactorError;
use twostep_domain::factors::webauthn::{KeyKind, WEBAUTHN_KIND};

use super::error::{self, BAD_NAME, internal, not_found_page, reauth_first};
use super::pages::{KeyNew, KeyRegistration};
use super::rename::{self, RenameForm, Renamed};
use super::security::show_codes;
use super::{SignedForm, WebSession, after_rotation, encode, render, see_other};
use crate::AppState;
use crate::extract::Ctx;

fn kind_of(s: Option<&str>) -> KeyKind {
    s.and_then(KeyKind::parse).unwrap_or(KeyKind::SecurityKey)
}

fn new_path(kind: KeyKind) -> String {
    format!("/security/keys/new?kind={}", kind.as_str())
}

fn name_page(session: &WebSession, status: StatusCode, kind: KeyKind, name: String, error: Option<String>) -> Response {
    render(
        status,
        &KeyNew {
            nav: session.nav(),
            csrf: session.csrf.clone(),
            kind: kind.as_str(),
            name,
            error,
            registration: None,
        },
    )
}

#[derive(Deserialize)]
pub struct KindQuery {
    kind: Option<String>,
}

/// Asks for a name. Re-auth comes first, so the ceremony is not started
/// only to be refused.
pub async fn new_page(State(s): State<AppState>, session: WebSession, Query(q): Query<KindQuery>) -> Response {
    let kind = kind_of(q.kind.as_deref());
    match s.twostep.reauth_needs(&session.me).await {
        Ok((false, false)) => name_page(&session, StatusCode::OK, kind, String::new(), None),
        Ok(_) => reauth_first(&new_path(kind)),
        Err(e) => internal(&e),
    }
}

#[derive(Deserialize)]
pub struct NewForm {
    #[serde(default)]
    csrf: String,
    kind: Option<String>,
    #[serde(default)]
    name: String,
}

/// Starts the ceremony: a POST, since it makes a single-use challenge (SEC-55).
pub async fn start(State(s): State<AppState>, Ctx(ctx): Ctx, SignedForm(session, f): SignedForm<NewForm>) -> Response {
    let kind = kind_of(f.kind.as_deref());
    let name = Some(f.name.as_str()).filter(|n| !n.trim().is_empty());
    match s.twostep.start_webauthn_registration(&session.me, kind, name, &ctx).await {
        Ok(r) => {
            let shown = name.map_or_else(|| kind.default_name().to_owned(), |n| n.trim().to_owned());
            render(
                StatusCode::OK,
                &KeyNew {
                    nav: session.nav(),
                    csrf: session.csrf.clone(),
                    kind: kind.as_str(),
                    name: shown,
                    error: None,
                    registration: Some(KeyRegistration { id: r.id, options: r.options.to_string() }),
                },
            )
        }
        Err(FactorError::InvalidName) => {
            let typed = f.name.chars().take(200).collect();
            name_page(&session, StatusCode::BAD_REQUEST, kind, typed, Some(BAD_NAME.to_owned()))
        }
        Err(e) => error::factor(&e, &new_path(kind)),
    }
}

#[derive(Deserialize)]
pub struct FinishForm {
    #[serde(default)]
    csrf: String,
    kind: Option<String>,
    #[serde(default)]
    registration_id: String,
    #[serde(default)]
    credential: String,
}

pub async fn finish(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, f): SignedForm<FinishForm>,
) -> Response {
    let kind = kind_of(f.kind.as_deref());
    let again = |status, message: &str| name_page(&session, status, kind, String::new(), Some(message.to_owned()));
    // Without script (or with a cancelled ceremony) the field is empty.
    let Ok(credential) = serde_json::from_str::<serde_json::Value>(&f.credential) else {
        return again(StatusCode::BAD_REQUEST, "Your browser gave no answer from the key. Try again.");
    };
    match s.twostep.finish_webauthn_registration(&session.me, &f.registration_id, &credential, &ctx).await {
        Ok(c) => after_rotation(&s, session, c.session_token.as_ref(), |session| match &c.recovery_codes {
            Some(codes) => show_codes(
                session,
                codes,
                "Two-factor authentication is on",
                "Save these recovery codes now. Each one signs you in once if you lose your key. Download, copy or print them.",
            ),
            None if kind == KeyKind::Passkey => see_other("/security?notice=passkey_added"),
            None => see_other("/security?notice=key_added"),
        }),
        Err(FactorError::EnrollmentGone) => {
            again(StatusCode::GONE, "That took more than 5 minutes, or was already used. Start again.")
        }
        Err(FactorError::InvalidCredential) => again(
            StatusCode::BAD_REQUEST,
            if kind == KeyKind::Passkey {
                "That passkey wasn't accepted: it must be kept on the device or in a password manager and unlocked with a fingerprint, face or PIN. Try again."
            } else {
                "That key's answer wasn't accepted. Try again."
            },
        ),
        Err(FactorError::CredentialTaken) => again(StatusCode::CONFLICT, "That key is already registered."),
        // The operator's or an organisation's rule (`[webauthn]`): the domain's words say which.
        Err(e @ (FactorError::SyncedKeyRefused { .. } | FactorError::AttestationRefused)) => {
            again(StatusCode::BAD_REQUEST, &error::sentence(&e.to_string()))
        }
        Err(e) => error::factor(&e, &new_path(kind)),
    }
}

/// The account's key with this id, if it is one.
async fn own_key(s: &AppState, session: &WebSession, id: &str) -> Result<Option<String>, Response> {
    match s.twostep.authenticators(&session.me.account.id).await {
        Ok(list) => Ok(list.into_iter().find(|a| a.kind == WEBAUTHN_KIND && a.id.as_str() == id).map(|a| a.name)),
        Err(e) => Err(internal(&e)),
    }
}

const KEY: Renamed = Renamed { heading: "Rename security key", base: "/security/keys", back: "/security#keys" };

pub async fn rename_page(State(s): State<AppState>, session: WebSession, Path(id): Path<String>) -> Response {
    let found = own_key(&s, &session, &id).await;
    rename::page(&session, &KEY, &id, found)
}

pub async fn rename(
    State(s): State<AppState>,
    Path(id): Path<String>,
    SignedForm(session, f): SignedForm<RenameForm>,
) -> Response {
    match own_key(&s, &session, &id).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found_page(),
        Err(res) => return res,
    }
    match s.twostep.rename_authenticator(&session.me, &id, &f.name).await {
        Ok(_) => see_other("/security?notice=key_renamed"),
        Err(FactorError::InvalidName) => rename::view(
            &session,
            StatusCode::BAD_REQUEST,
            &KEY,
            &id,
            rename::typed(&f.name),
            Some(BAD_NAME.to_owned()),
        ),
        Err(e) => error::factor(&e, &format!("/security/keys/{}/rename", encode(&id))),
    }
}

super::csrf_field!(NewForm, FinishForm);
