//! The Security page, recovery codes, and turning 2FA off.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use twostep_domain::audit::LogQuery;
use twostep_domain::error::FactorError;
use twostep_domain::factors::Method;
use twostep_domain::factors::phone::PHONE_KIND;
use twostep_domain::factors::push::PUSH_KIND;
use twostep_domain::factors::recovery::LOW_WATER;
use twostep_domain::factors::recovery::code::RecoveryCode;
use twostep_domain::factors::store::AuthenticatorRecord;
use twostep_domain::factors::webauthn::{KeyKind, WEBAUTHN_KIND};
use twostep_domain::sessions::store::SessionKind;

use super::error::{self, internal, reauth_first};
use super::pages::{
    AllowRow, AuthenticatorRow, BrowserRow, CodeRow, Confirm, FirstMethods, KeyRow, LogRow, PushRow, RecoveryCodes,
    Security, SessionRow, human_time,
};
use super::security_log;
use super::{CsrfForm, SignedForm, WebSession, render, see_other};
use crate::AppState;
use crate::extract::Ctx;

#[derive(Deserialize)]
pub struct SecurityQuery {
    recovery_used: Option<usize>,
    notice: Option<String>,
    /// The "I have saved my codes" step after new codes.
    saved: Option<u8>,
}

pub async fn page(
    State(s): State<AppState>,
    headers: HeaderMap,
    session: WebSession,
    Query(q): Query<SecurityQuery>,
) -> Response {
    // A set-up that an app's sign-in asked for (OpenID Connect, or a
    // protected app's portal) ends with the saved codes: back to the app.
    if q.saved.is_some() && session.me.session.kind != SessionKind::Enrollment {
        let next = crate::authz::after_sign_in(&s, &headers, "");
        if !next.is_empty() {
            return see_other(&next);
        }
    }
    let notice = match (q.recovery_used, q.notice.as_deref()) {
        (Some(n), _) => Some(format!("You signed in with a recovery code. {n} recovery codes are left.")),
        (None, Some(key)) => notice_text(key).map(str::to_owned),
        (None, None) => None,
    };
    render_page(&s, &session, StatusCode::OK, notice, EmailPanel::default()).await
}

/// The flash messages other pages redirect here with (`?notice=`).
fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "enabled" => "Two-factor authentication is on.",
        "added" => "Authenticator app added.",
        "totp_already_added" => {
            "That authenticator app is already set up. To see your recovery codes again, use Reveal codes."
        }
        "removed" => "Authenticator removed.",
        "disabled" => "Two-factor authentication is off.",
        "password_changed" => "Password changed. Your other sessions were signed out.",
        "session_revoked" => "That device was signed out.",
        "others_revoked" => "All your other sessions were signed out.",
        "browser_forgotten" => "That browser will be asked for a code again.",
        "phone_added" => "Your phone number is verified. Sign-in codes can now be sent to it.",
        "phone_removed" => "Phone number removed.",
        "verification_sent" => "We sent you a verification e-mail. Open its link, or enter its code below.",
        "email_verified" => "Your e-mail address is verified.",
        "allowlist_saved" => "IP allow-list saved.",
        "push_renamed" => "Companion device renamed.",
        "key_added" => "Security key added. Sign-in now asks for it first.",
        "passkey_added" => "Passkey created. Choose “Sign in with a passkey” on the sign-in page.",
        "key_renamed" => "Security key renamed.",
        "push_removed" => "Companion device removed. It can no longer approve sign-ins.",
        "first_method_saved" => "Saved: sign-in asks for that first.",
        "app_requires_2fa" => {
            "The app you are signing in to requires two-factor authentication. Set up a method below; \
             once your recovery codes are saved, you go back to the app."
        }
        _ => return None,
    })
}

/// The unverified-address panel's state after one of its forms.
#[derive(Default)]
pub struct EmailPanel {
    pub error: Option<String>,
    /// Seconds before another verification e-mail may be asked for.
    pub wait: i64,
}

pub async fn render_page(
    s: &AppState,
    session: &WebSession,
    status: StatusCode,
    notice: Option<String>,
    email: EmailPanel,
) -> Response {
    let account = &session.me.account;
    let (authenticators, remaining) =
        match (s.twostep.authenticators(&account.id).await, s.twostep.recovery_codes_remaining(&account.id).await) {
            (Ok(a), Ok(r)) => (a, r),
            (Err(e), _) | (_, Err(e)) => return internal(&e),
        };
    let enabled = !authenticators.is_empty();
    let (sessions, browsers) =
        match (s.twostep.sessions_of(&session.me).await, s.twostep.remembered_browsers(&account.id).await) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) => return internal(&e),
            (_, Err(e)) => return internal(&e),
        };
    let phone = match s.twostep.phone_of(&account.id).await {
        Ok(p) => p.map(|p| p.phone.masked()),
        Err(e) => return internal(&e),
    };
    let push_devices = match s.twostep.push_devices(&account.id).await {
        Ok(list) => list
            .iter()
            .map(|d| PushRow {
                id: d.authenticator.id.to_string(),
                name: d.authenticator.name.clone(),
                created: human_time(d.authenticator.created_at),
                last_seen: d.last_seen_at.map_or_else(|| "never".to_owned(), human_time),
                web_push: d.webpush_sealed.is_some(),
            })
            .collect(),
        Err(e) => return internal(&e),
    };
    let first = match first_methods(s, &account.id).await {
        Ok(f) => f,
        Err(e) => return internal(&e),
    };
    let latest = LogQuery { size: security_log::LATEST, ..LogQuery::default() };
    let log = match s.twostep.readable_security_log(&session.me, latest).await {
        Ok(page) => page.entries.into_iter().map(LogRow::from).collect(),
        Err(e) => return internal(&e),
    };
    let allowlist = match s.twostep.allowlist(&account.id).await {
        Ok(list) => list.iter().map(AllowRow::from).collect(),
        Err(e) => return internal(&e),
    };
    let sessions = sessions
        .into_iter()
        .map(|v| SessionRow {
            id: v.id,
            device: v.device,
            ip: v.ip,
            last_seen: human_time(v.last_seen_at),
            current: v.current,
        })
        .collect();
    let browsers = browsers.into_iter().map(browser_row).collect();
    let kept = match kept_sentence(s, session, authenticators.len()).await {
        Ok(k) => k,
        Err(e) => return internal(&e),
    };
    let warning = (enabled && remaining <= LOW_WATER)
        .then(|| format!("Only {remaining} recovery codes are left. Regenerate them so you cannot be locked out."));
    let keys = match key_rows(s, &authenticators).await {
        Ok(k) => k,
        Err(e) => return internal(&e),
    };
    let rows = app_rows(&authenticators);
    render(
        status,
        &Security {
            nav: session.nav(),
            csrf: session.csrf.clone(),
            sessions,
            browsers,
            email: account.email.to_string(),
            enabled,
            authenticators: rows,
            keys,
            push_devices,
            recovery_remaining: remaining,
            notice,
            warning,
            phone_available: s.twostep.settings().phone_enabled || phone.is_some(),
            phone,
            email_verified: account.email_verified_at.is_some(),
            email_error: email.error,
            email_wait: email.wait,
            allowlist,
            first,
            kept,
            log,
        },
    )
}

/// Phones, companion devices and keys have their own sections; the table lists the apps.
fn app_rows(authenticators: &[AuthenticatorRecord]) -> Vec<AuthenticatorRow> {
    authenticators
        .iter()
        .filter(|a| a.kind != PHONE_KIND && a.kind != PUSH_KIND && a.kind != WEBAUTHN_KIND)
        .map(|a| AuthenticatorRow {
            id: a.id.to_string(),
            name: a.name.clone(),
            created: human_time(a.created_at),
            last_used: a.last_used_at.map_or_else(|| "never".to_owned(), human_time),
        })
        .collect()
}

/// The account's keys and passkeys, with what each credential says of itself.
async fn key_rows(s: &AppState, authenticators: &[AuthenticatorRecord]) -> Result<Vec<KeyRow>, FactorError> {
    let Some(first) = authenticators.iter().find(|a| a.kind == WEBAUTHN_KIND) else { return Ok(Vec::new()) };
    let credentials = s.twostep.webauthn_credentials(&first.account_id).await?;
    Ok(authenticators
        .iter()
        .filter(|a| a.kind == WEBAUTHN_KIND)
        .map(|a| {
            let c = credentials.iter().find(|c| c.authenticator_id == a.id);
            let passkey = c.is_some_and(|c| c.kind == KeyKind::Passkey.as_str());
            KeyRow {
                id: a.id.to_string(),
                name: a.name.clone(),
                kind: if passkey { "Passkey" } else { "Security key" },
                synced: c.is_some_and(|c| c.backup_state),
                created: human_time(a.created_at),
                last_used: a.last_used_at.map_or_else(|| "never".to_owned(), human_time),
            }
        })
        .collect())
}

pub fn show_codes(
    session: &WebSession,
    codes: &[RecoveryCode],
    heading: &'static str,
    intro: &'static str,
) -> Response {
    let rows = codes.iter().map(|c| CodeRow { code: c.display_grouped(), used: false }).collect();
    render(
        StatusCode::OK,
        &RecoveryCodes {
            nav: session.nav(),
            csrf: session.csrf.clone(),
            heading,
            intro,
            codes: rows,
            done_label: "I have saved my codes",
            confirm_saved: true,
        },
    )
}

/// Only a button (re-auth first): revealing is audited and mailed, so a
/// link from elsewhere must not do it (SEC-55).
pub async fn reveal_codes_page(State(s): State<AppState>, session: WebSession) -> Response {
    confirm_page(
        &s,
        session,
        "/security/recovery-codes",
        Confirm {
            nav: None,
            csrf: String::new(),
            heading: "Your recovery codes".into(),
            text: "Showing your recovery codes is recorded in your security log, and we e-mail you that it happened."
                .into(),
            action: "/security/recovery-codes".into(),
            button: "Show my codes",
            danger: false,
            cancel: "/security".into(),
        },
    )
    .await
}

/// As [`reveal_codes_page`], for the text file.
pub async fn download_codes_page(State(s): State<AppState>, session: WebSession) -> Response {
    confirm_page(
        &s,
        session,
        "/security/recovery-codes.txt",
        Confirm {
            nav: None,
            csrf: String::new(),
            heading: "Download your recovery codes".into(),
            text:
                "Downloading your recovery codes is recorded in your security log, and we e-mail you that it happened."
                    .into(),
            action: "/security/recovery-codes.txt".into(),
            button: "Download my codes",
            danger: false,
            cancel: "/security".into(),
        },
    )
    .await
}

pub async fn reveal_codes(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.reveal_recovery_codes(&session.me, &ctx).await {
        Ok(codes) => {
            let rows = codes.iter().map(|c| CodeRow { code: c.code.display_grouped(), used: c.used }).collect();
            render(
                StatusCode::OK,
                &RecoveryCodes {
                    nav: session.nav(),
                    csrf: session.csrf.clone(),
                    heading: "Your recovery codes",
                    intro: "Each code signs you in once if you cannot use your authenticator app. Used codes are crossed out.",
                    codes: rows,
                    done_label: "Back to Security",
                    confirm_saved: false,
                },
            )
        }
        Err(e) => error::factor(&e, "/security/recovery-codes"),
    }
}

pub async fn download_codes(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.reveal_recovery_codes(&session.me, &ctx).await {
        Ok(codes) => {
            let mut text = format!(
                "twostep recovery codes for {}\n\nEach code works once. Keep this file somewhere safe.\n\n",
                session.me.account.email
            );
            for c in &codes {
                text.push_str(&c.code.display_grouped());
                text.push_str(if c.used { "  (used)\n" } else { "\n" });
            }
            (
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::CONTENT_DISPOSITION, "attachment; filename=\"twostep-recovery-codes.txt\""),
                ],
                text,
            )
                .into_response()
        }
        Err(e) => error::factor(&e, "/security/recovery-codes"),
    }
}

pub async fn regenerate_page(State(s): State<AppState>, session: WebSession) -> Response {
    confirm_page(
        &s,
        session,
        "/security/recovery-codes/regenerate",
        Confirm {
            nav: None,
            csrf: String::new(),
            heading: "Regenerate recovery codes".into(),
            text: "You will get 10 new recovery codes. Your current codes will stop working at once.".into(),
            action: "/security/recovery-codes/regenerate".into(),
            button: "Regenerate codes",
            danger: false,
            cancel: "/security".into(),
        },
    )
    .await
}

pub async fn regenerate(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.regenerate_recovery_codes(&session.me, &ctx).await {
        Ok(codes) => show_codes(
            &session,
            &codes,
            "Your new recovery codes",
            "Your old codes no longer work. Save these now: download, copy or print them.",
        ),
        Err(e) => error::factor(&e, "/security/recovery-codes/regenerate"),
    }
}

pub async fn disable_page(State(s): State<AppState>, session: WebSession) -> Response {
    if let Some(kept) = kept_by_policy(&s, &session, true).await {
        return kept;
    }
    confirm_page(
        &s,
        session,
        "/security/two-factor/disable",
        Confirm {
            nav: None,
            csrf: String::new(),
            heading: "Disable two-factor authentication".into(),
            text:
                "All your authenticators and recovery codes will be removed, and your password alone will sign you in."
                    .into(),
            action: "/security/two-factor/disable".into(),
            button: "Disable two-factor authentication",
            danger: true,
            cancel: "/security".into(),
        },
    )
    .await
}

pub async fn disable(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, _f): SignedForm<CsrfForm>,
) -> Response {
    match s.twostep.disable_two_factor(&session.me, &ctx).await {
        Ok(()) => see_other("/security?notice=disabled"),
        Err(e) => error::factor(&e, "/security/two-factor/disable"),
    }
}

/// A confirmation page for a sensitive action. Re-auth is asked for first,
/// so the user confirms once they are cleared and lands back here.
fn browser_row(b: twostep_domain::accounts::store::RememberedBrowser) -> BrowserRow {
    BrowserRow {
        device: twostep_domain::abuse::device::describe(&b.user_agent),
        id: b.id,
        ip: b.ip,
        until: human_time(b.expires_at),
    }
}

/// Said on the Security page before anyone tries (issue 20, item 5): who
/// requires 2FA, so it cannot be turned off, and whether that keeps the
/// only factor too.
async fn kept_sentence(
    s: &AppState,
    session: &WebSession,
    factors: usize,
) -> Result<Option<String>, twostep_domain::error::StoreError> {
    if factors == 0 {
        return Ok(None);
    }
    let Some(by) = s.twostep.two_factor_requirement(&session.me.account.id).await? else { return Ok(None) };
    let only = if factors == 1 {
        ", and your only second factor cannot be removed: add another one first to replace it"
    } else {
        ""
    };
    Ok(Some(format!("{by}, so it cannot be turned off{only}.")))
}

/// Before a removal is asked for: when it would take the account's last
/// second factor (or, `whole`, all of them) while a rule requires 2FA, the
/// page says so, naming who requires it, instead of asking (issue 20,
/// item 5); the domain refuses the change itself all the same.
pub async fn kept_by_policy(s: &AppState, session: &WebSession, whole: bool) -> Option<Response> {
    let account = &session.me.account.id;
    if !whole {
        match s.twostep.authenticators(account).await {
            Ok(list) if list.len() > 1 => return None,
            Ok(_) => {}
            Err(e) => return Some(internal(&e)),
        }
    }
    match s.twostep.two_factor_requirement(account).await {
        Ok(Some(by)) => Some(error::factor(&FactorError::RequiredByPolicy { by }, "/security")),
        Ok(None) => None,
        Err(e) => Some(internal(&e)),
    }
}

pub async fn confirm_page(s: &AppState, session: WebSession, here: &str, mut page: Confirm) -> Response {
    match s.twostep.reauth_needs(&session.me).await {
        Ok((false, false)) => {
            page.nav = session.nav();
            page.csrf = session.csrf.clone();
            render(StatusCode::OK, &page)
        }
        Ok(_) => reauth_first(here),
        Err(e) => internal(&e),
    }
}

/// The choices of "Asked first at sign-in": none unless there are two.
async fn first_methods(
    s: &AppState,
    account: &twostep_domain::ids::AccountId,
) -> Result<FirstMethods, twostep_domain::error::StoreError> {
    let (methods, preferred) = s.twostep.methods_and_preference(account).await?;
    // A recovery code is a way back in, never the first thing asked.
    let first: Vec<_> = methods.into_iter().filter(|m| *m != Method::UNLOCKING).collect();
    if first.len() < 2 {
        return Ok(FirstMethods::default());
    }
    Ok(FirstMethods {
        options: first.iter().map(|m| (m.as_str(), m.info().choice, Some(*m) == preferred)).collect(),
        chosen: preferred.is_some(),
    })
}

#[derive(Deserialize)]
pub struct FirstMethodForm {
    #[serde(default)]
    csrf: String,
    /// Empty: the strongest method held.
    #[serde(default)]
    method: String,
}
super::csrf_field!(FirstMethodForm);

/// "Asked first at sign-in": saves the choice and shows the page again.
pub async fn set_first_method(
    State(s): State<AppState>,
    SignedForm(session, f): SignedForm<FirstMethodForm>,
) -> Response {
    let method = if f.method.is_empty() { None } else { Method::parse(&f.method) };
    if !f.method.is_empty() && method.is_none() {
        return see_other("/security");
    }
    match s.twostep.set_preferred_method(&session.me, method).await {
        Ok(()) => see_other("/security?notice=first_method_saved#first-method-form"),
        // No longer held (removed in another tab): the page shows what is.
        Err(twostep_domain::error::FactorError::UnknownMethod) => see_other("/security"),
        Err(e) => internal(&e),
    }
}
