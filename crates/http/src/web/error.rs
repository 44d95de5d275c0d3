//! The one place a domain error becomes what a page says: its status, its
//! sentence, and whether it leads away from the form (to re-auth, a message
//! page, the start of the sign-in). A handler still picks which form to
//! show a refusal on; the wording and the status come from here, so the
//! same refusal reads the same on every page. (`crate::error` is the JSON
//! API's counterpart.)

use std::fmt::Display;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use twostep_domain::error::{AccountError, CredentialError, FactorError, LoginError, SessionError};
use twostep_domain::factors::Method;
use twostep_domain::factors::push::PushError;
use twostep_domain::factors::sent_code::SendError;
use twostep_domain::policy::allowlist::AllowlistError;

use super::pages::{Message, Nav};
use super::{encode, render, see_other, with_cookie};
use crate::{WebConfig, cookies};

mod orgs;
pub use orgs::{admin, invitation, invitation_closed, org};

/// Every factor lock-out, whichever form met it, says this.
pub const LOCKED: &str = "Code sign-in is locked after too many wrong codes. Use one of your recovery codes.";
/// Authenticator, phone and companion device names.
pub const BAD_NAME: &str = "Names are 1 to 64 characters.";
/// A password-reset link that cannot be used, on its page or its form.
pub const BAD_RESET_LINK: &str = "This link is invalid, already used or expired.";
use twostep_domain::factors::sent_code::SENT_CODE_REFUSED as SENT_CODE_WRONG;
const NO_DEVICE: &str = "No companion device is set up for this account any more. Choose another way.";

/// A refusal said on the form the request came from.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
    /// Seconds before asking again makes sense (throttles): the countdown
    /// on a send button, and `Retry-After`.
    pub wait: i64,
    /// Codes are locked: the form should ask for a recovery code instead.
    pub recovery: bool,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), wait: 0, recovery: false }
    }

    fn throttled(status: StatusCode, message: String, retry_after: i64) -> Self {
        Self { wait: retry_after.max(0), ..Self::new(status, message) }
    }

    fn locked(status: StatusCode) -> Self {
        Self { recovery: true, ..Self::new(status, LOCKED) }
    }

    /// The method the form should ask for next: a recovery code once codes are locked.
    pub fn method(&self, asked: Method) -> Method {
        if self.recovery { Method::UNLOCKING } else { asked }
    }

    /// Adds `Retry-After` to the re-rendered form when this is a throttle.
    pub fn retry_after(&self, mut res: Response) -> Response {
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(self.wait.max(1)));
        }
        res
    }
}

/// What a refused domain call shows.
#[derive(Debug)]
pub enum Reply {
    /// Said on the form (the handler's choice of page).
    Inline(Refusal),
    /// A page of its own: re-auth, a message, a redirect, a 500.
    Page(Response),
}

impl Reply {
    /// The refusal on the form `form` renders, or the page it leads to.
    pub fn or_page(self, form: impl FnOnce(Refusal) -> Response) -> Response {
        match self {
            Self::Inline(r) => form(r),
            Self::Page(p) => p,
        }
    }
}

fn inline(status: StatusCode, message: impl Into<String>) -> Reply {
    Reply::Inline(Refusal::new(status, message))
}

/// "12 seconds", "3 minutes".
pub fn wait_text(secs: i64) -> String {
    match secs {
        ..=1 => "1 second".to_owned(),
        2..90 => format!("{secs} seconds"),
        _ => format!("{} minutes", (secs + 59) / 60),
    }
}

/// Domain messages are sentence fragments; pages show sentences:
/// "not a valid phone number" → "Not a valid phone number."
pub fn sentence(s: &str) -> String {
    let mut chars = s.chars();
    let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.is_empty() && !out.ends_with('.') {
        out.push('.');
    }
    out
}

// ---- Pages of their own ----

pub fn internal(e: &dyn Display) -> Response {
    tracing::error!(error = %e, "page failed");
    render(
        StatusCode::INTERNAL_SERVER_ERROR,
        &Message::new(None, "Something went wrong", "Something went wrong on our side. Please try again."),
    )
}

pub fn not_found_page() -> Response {
    render(StatusCode::NOT_FOUND, &Message::new(None, "Page not found", "There is nothing at this address."))
}

/// A form whose CSRF token or origin did not check out.
pub fn forbidden() -> Response {
    render(
        StatusCode::FORBIDDEN,
        &Message::new(
            None,
            "Request refused",
            "This form was stale or came from another site. Go back, reload the page and try again.",
        ),
    )
}

pub fn bad_form() -> Response {
    render(
        StatusCode::BAD_REQUEST,
        &Message::new(None, "Request refused", "The form could not be read. Reload the page and try again."),
    )
}

/// Confirm it's you first, then come back to `back_to`.
pub fn reauth_first(back_to: &str) -> Response {
    see_other(&format!("/reauth?next={}", encode(back_to)))
}

/// The second step's login token is spent or expired: sign in again.
pub fn sign_in_expired(web: &WebConfig) -> Response {
    with_cookie(see_other("/login?expired=1"), cookies::clear(web, web.login_cookie()))
}

/// A session cookie that no longer signs anyone in.
pub fn session(e: &SessionError, web: &WebConfig) -> Response {
    let res = match e {
        SessionError::Unauthenticated => see_other("/login"),
        // The session was used from outside the account's IP allow-list and has ended.
        SessionError::IpNotAllowed => render(
            StatusCode::FORBIDDEN,
            &Message::new(
                None,
                "Not from this address",
                "Your account's IP allow-list does not include the address you are using now, so you were signed out. Sign in again from a listed address.",
            ),
        ),
        SessionError::Internal(_) => return internal(e),
    };
    with_cookie(res, cookies::clear(web, web.session_cookie()))
}

pub fn bad_email_link(status: StatusCode) -> Response {
    render(
        status,
        &Message::new(
            None,
            "This link does not work",
            "The link is incomplete, expired or was replaced by a newer one. Sign in and ask for a new verification e-mail on the Security page.",
        )
        .with_link("/security", "Go to Security"),
    )
}

/// Phone numbers are off when no SMS provider is configured (outside dev mode).
pub fn phone_unavailable(nav: Option<Nav>) -> Response {
    render(
        StatusCode::NOT_FOUND,
        &Message::new(
            nav,
            "Phone numbers are not available",
            "This server cannot send text messages or make calls. Use an authenticator app instead.",
        )
        .with_link("/security", "Back to Security"),
    )
}

pub fn org_not_found(nav: Option<Nav>) -> Response {
    render(
        StatusCode::NOT_FOUND,
        &Message::new(nav, "Organisation not found", "There is no such organisation, or you are not a member of it.")
            .with_link("/orgs", "Your organisations"),
    )
}

// ---- Sign-up and sign-in ----

pub fn sign_up(e: AccountError) -> Reply {
    match e {
        AccountError::InvalidEmail(e) => inline(StatusCode::BAD_REQUEST, e.to_string()),
        AccountError::WeakPassword(e) => inline(StatusCode::BAD_REQUEST, e.to_string()),
        AccountError::EmailTaken => {
            inline(StatusCode::BAD_REQUEST, "An account with this e-mail address already exists. Sign in instead.")
        }
        AccountError::Throttled { retry_after } => Reply::Inline(Refusal::throttled(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many sign-ups from here. Try again in {}.", wait_text(retry_after)),
            retry_after,
        )),
        e @ (AccountError::NotFound | AccountError::Internal(_)) => Reply::Page(internal(&e)),
    }
}

/// The password step. The same words for an unknown address, a wrong
/// password and an address outside the allow-list (SEC-14, SEC-61).
pub fn password_step(e: LoginError) -> Reply {
    match e {
        LoginError::InvalidCredentials | LoginError::InvalidCode | LoginError::WrongCode { .. } => {
            inline(StatusCode::UNAUTHORIZED, "Incorrect email or password.")
        }
        LoginError::Throttled { retry_after } => Reply::Inline(Refusal::throttled(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many attempts. Try again in {}.", wait_text(retry_after)),
            retry_after,
        )),
        LoginError::FactorLocked => Reply::Page(internal(&"factor lock at the password step")),
        e @ LoginError::Internal(_) => Reply::Page(internal(&e)),
    }
}

/// A passkey sign-in (no password): every refusal reads the same, as the
/// domain gives one answer for all of them.
pub fn passkey_step(e: LoginError) -> Reply {
    match e {
        LoginError::InvalidCredentials | LoginError::InvalidCode | LoginError::WrongCode { .. } => inline(
            StatusCode::UNAUTHORIZED,
            "That passkey wasn't accepted. Try again, or sign in with your e-mail address and password.",
        ),
        LoginError::FactorLocked => inline(
            StatusCode::FORBIDDEN,
            "Too many failed tries: passkeys are locked for this account. Sign in with your password and a recovery code.",
        ),
        e => password_step(e),
    }
}

/// The second step, proving `method`. A wrong code on a spent login token
/// is the handler's to tell apart (it starts the sign-in again).
pub fn code_step(e: LoginError, method: Method) -> Reply {
    match e {
        LoginError::InvalidCode | LoginError::InvalidCredentials => {
            // Each method's factor words its own refusal.
            inline(StatusCode::UNAUTHORIZED, method.info().refused)
        }
        // Said while it can still help: the last two tries.
        LoginError::WrongCode { tries_left } => {
            let refused = method.info().refused;
            inline(
                StatusCode::UNAUTHORIZED,
                match tries_left {
                    1 => format!("{refused} 1 try left, then sign-in starts over."),
                    2 => format!("{refused} 2 tries left, then sign-in starts over."),
                    _ => refused.to_owned(),
                },
            )
        }
        LoginError::Throttled { retry_after } => Reply::Inline(Refusal::throttled(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many wrong codes. Try again in {}.", wait_text(retry_after)),
            retry_after,
        )),
        LoginError::FactorLocked => Reply::Inline(Refusal::locked(StatusCode::FORBIDDEN)),
        e @ LoginError::Internal(_) => Reply::Page(internal(&e)),
    }
}

/// "Confirm it's you" refused its proofs.
pub fn reauth(e: FactorError) -> Reply {
    match e {
        FactorError::InvalidPassword | FactorError::InvalidCode | FactorError::NothingToProve => {
            inline(StatusCode::UNAUTHORIZED, "That didn't match. Check your password and code and try again.")
        }
        FactorError::Throttled { retry_after } => Reply::Inline(Refusal::throttled(
            StatusCode::UNAUTHORIZED,
            format!("Too many attempts. Try again in {}.", wait_text(retry_after)),
            retry_after,
        )),
        FactorError::FactorLocked => Reply::Inline(Refusal::locked(StatusCode::UNAUTHORIZED)),
        e => Reply::Page(internal(&e)),
    }
}

// ---- Sending codes ----

/// The form a code was asked for from.
#[derive(Clone, Copy)]
pub enum SendForm<'a> {
    /// The second step of signing in.
    SignIn(&'a WebConfig),
    Reauth,
    /// Adding a phone number (`here`); `nav` for the page saying phones are off.
    Phone {
        here: &'a str,
        nav: Option<&'a Nav>,
    },
    /// The Security page's "Resend verification e-mail".
    EmailVerification,
}

/// A refused send; `cooldown` tells a resend asked too soon from a cap.
pub fn send(e: SendError, form: SendForm<'_>, cooldown: i64) -> Reply {
    let refusal = match e {
        SendError::Throttled { retry_after } => {
            let message = if retry_after <= cooldown {
                format!("We sent a code moments ago. Wait {} before asking for a new one.", wait_text(retry_after))
            } else {
                format!("Too many codes were sent. Wait {} before asking for a new one.", wait_text(retry_after))
            };
            return Reply::Inline(Refusal::throttled(StatusCode::TOO_MANY_REQUESTS, message, retry_after));
        }
        SendError::SentForEarlier { retry_after } => {
            let message = format!(
                "A code went out moments ago for an earlier sign-in, and only a code sent for this one works here. \
                 Wait {} before asking for a new one.",
                wait_text(retry_after)
            );
            return Reply::Inline(Refusal::throttled(StatusCode::TOO_MANY_REQUESTS, message, retry_after));
        }
        e @ SendError::Internal(_) => return Reply::Page(internal(&e)),
        SendError::LoginExpired => {
            return Reply::Page(match form {
                SendForm::SignIn(web) => sign_in_expired(web),
                _ => internal(&e),
            });
        }
        SendError::ReauthRequired => {
            return Reply::Page(match form {
                SendForm::Phone { here, .. } => reauth_first(here),
                _ => reauth_first("/security"),
            });
        }
        SendError::MethodUnavailable if matches!(form, SendForm::Phone { .. }) => {
            let nav = if let SendForm::Phone { nav, .. } = form { nav.cloned() } else { None };
            return Reply::Page(phone_unavailable(nav));
        }
        SendError::FactorLocked => Refusal::locked(StatusCode::FORBIDDEN),
        SendError::InvalidPhone(why) => Refusal::new(StatusCode::BAD_REQUEST, sentence(&why)),
        SendError::MethodUnavailable => {
            Refusal::new(StatusCode::BAD_REQUEST, "Codes cannot be sent that way for this account. Choose another way.")
        }
    };
    Reply::Inline(match form {
        SendForm::Phone { .. } => Refusal {
            status: StatusCode::BAD_REQUEST,
            message: format!("{} Check the country and the number.", refusal.message),
            ..refusal
        },
        SendForm::EmailVerification => {
            Refusal::new(StatusCode::BAD_REQUEST, "A verification e-mail cannot be sent now. Try again later.")
        }
        SendForm::SignIn(_) | SendForm::Reauth => refusal,
    })
}

// ---- Factors ----

/// Where a factor error leads a browser that was not on a form it can
/// show again: re-auth, the Security page, or an error page.
pub fn factor(e: &FactorError, back_to: &str) -> Response {
    match e {
        FactorError::ReauthRequired => reauth_first(back_to),
        FactorError::TwoFactorNotEnabled | FactorError::NotFound => see_other("/security"),
        FactorError::RequiredByPolicy { by } => render(
            StatusCode::FORBIDDEN,
            &Message::owned(
                None,
                "Two-factor authentication is required",
                format!("{by}, so your last second factor cannot be removed. Add another one first if you want to replace it."),
            )
            .with_link("/security", "Back to Security"),
        ),
        FactorError::Refused { message, .. } => render(
            StatusCode::BAD_REQUEST,
            &Message::owned(None, "That was not accepted", sentence(message)).with_link("/security", "Back to Security"),
        ),
        other => internal(other),
    }
}

/// Confirming a new authenticator app's first code.
pub fn totp_confirm(e: FactorError, back_to: &str) -> Reply {
    match e {
        FactorError::InvalidName => inline(StatusCode::UNAUTHORIZED, BAD_NAME),
        FactorError::InvalidCode => inline(
            StatusCode::UNAUTHORIZED,
            "That code didn't match. Check the app shows this account and enter its current code.",
        ),
        // Superseded or expired: start a fresh one.
        FactorError::EnrollmentGone => Reply::Page(see_other("/security/totp/new")),
        e => Reply::Page(factor(&e, back_to)),
    }
}

/// The code sent to a new phone number.
pub fn phone_confirm(e: FactorError, back_to: &str) -> Reply {
    match e {
        FactorError::InvalidCode => inline(StatusCode::UNAUTHORIZED, SENT_CODE_WRONG),
        e => Reply::Page(factor(&e, back_to)),
    }
}

/// The code of the verification e-mail, typed on the Security page.
pub fn email_code(e: FactorError) -> Reply {
    match e {
        e @ FactorError::Internal(_) => Reply::Page(internal(&e)),
        _ => inline(
            StatusCode::UNAUTHORIZED,
            "That code didn't work. Check you typed the code from the latest e-mail, or ask for a new one.",
        ),
    }
}

/// The verification e-mail's link: any refusal is the same dead link.
pub fn email_link(e: &FactorError) -> Response {
    match e {
        FactorError::Internal(_) => internal(e),
        _ => bad_email_link(StatusCode::BAD_REQUEST),
    }
}

/// Removing a companion device: one that is not the account's is not found.
pub fn device_removal(e: &FactorError, back_to: &str) -> Response {
    match e {
        FactorError::NotFound => not_found_page(),
        e => factor(e, back_to),
    }
}

// ---- Push ----

/// Raising or using a push at sign-in.
pub fn push_sign_in(e: PushError, web: &WebConfig) -> Reply {
    match e {
        PushError::LoginExpired => Reply::Page(sign_in_expired(web)),
        PushError::Throttled { retry_after } => Reply::Inline(Refusal::throttled(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many sign-in requests were sent to your device. Try again in {} or use another method.",
                wait_text(retry_after)
            ),
            retry_after,
        )),
        PushError::MethodUnavailable => inline(StatusCode::BAD_REQUEST, NO_DEVICE),
        PushError::FactorLocked => Reply::Inline(Refusal::locked(StatusCode::FORBIDDEN)),
        PushError::NotFound => {
            inline(StatusCode::BAD_REQUEST, "That sign-in request was not found. Send another push.")
        }
        e => Reply::Page(internal(&e)),
    }
}

/// Raising a push to confirm it's you.
pub fn push_reauth(e: PushError) -> Reply {
    match e {
        PushError::Throttled { retry_after } => Reply::Inline(Refusal::throttled(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many sign-in requests were sent to your device. Try again in {} or use a code.",
                wait_text(retry_after)
            ),
            retry_after,
        )),
        PushError::FactorLocked => Reply::Inline(Refusal::locked(StatusCode::FORBIDDEN)),
        PushError::MethodUnavailable => inline(StatusCode::BAD_REQUEST, NO_DEVICE),
        e @ PushError::Internal(_) => Reply::Page(internal(&e)),
        e => inline(StatusCode::BAD_REQUEST, sentence(&e.to_string())),
    }
}

/// Making a pairing link for a new companion device.
pub fn pairing(e: &PushError, back_to: &str, nav: Option<Nav>) -> Response {
    match e {
        PushError::ReauthRequired => reauth_first(back_to),
        PushError::TwoFactorNotEnabled => render(
            StatusCode::CONFLICT,
            &Message::new(
                nav,
                "Set up two-factor authentication first",
                "A companion device is an additional way to approve sign-ins. Set up an authenticator app first: it turns two-factor authentication on and gives you recovery codes, then come back to add your phone.",
            )
            .with_link("/security/totp/new", "Set up an authenticator app"),
        ),
        e => internal(e),
    }
}

/// Renaming a companion device.
pub fn push_rename(e: PushError) -> Reply {
    match e {
        PushError::InvalidName => inline(StatusCode::BAD_REQUEST, BAD_NAME),
        PushError::NotFound => Reply::Page(not_found_page()),
        e => Reply::Page(internal(&e)),
    }
}

// ---- Passwords ----

/// Changing or resetting the password.
pub fn credential(e: CredentialError, back_to: &str) -> Reply {
    match e {
        CredentialError::ReauthRequired => Reply::Page(reauth_first(back_to)),
        CredentialError::InvalidPassword => inline(StatusCode::BAD_REQUEST, "Your current password is not right."),
        CredentialError::WeakPassword(e) => inline(StatusCode::BAD_REQUEST, e.to_string()),
        CredentialError::Throttled { retry_after } => Reply::Inline(Refusal::throttled(
            StatusCode::BAD_REQUEST,
            format!("Too many attempts. Try again in {}.", wait_text(retry_after)),
            retry_after,
        )),
        CredentialError::InvalidResetLink => inline(StatusCode::BAD_REQUEST, BAD_RESET_LINK),
        e @ (CredentialError::NotFound | CredentialError::Internal(_)) => Reply::Page(internal(&e)),
    }
}

// ---- The IP allow-list ----

pub fn allowlist(e: AllowlistError, back_to: &str) -> Reply {
    match e {
        AllowlistError::ReauthRequired => Reply::Page(reauth_first(back_to)),
        AllowlistError::EnrollmentRequired => Reply::Page(see_other("/security")),
        e @ AllowlistError::Internal(_) => Reply::Page(internal(&e)),
        AllowlistError::WouldLockOut { current_ip } => inline(
            StatusCode::CONFLICT,
            format!(
                "Your current address {current_ip} is not in this list. Saving it signs you out at once, and you \
                 could then sign in only from a listed address. Tick the box below to save it anyway."
            ),
        ),
        e @ AllowlistError::RequiredByPolicy => inline(StatusCode::FORBIDDEN, sentence(&e.to_string())),
        e @ (AllowlistError::InvalidRange { .. }
        | AllowlistError::InvalidLabel { .. }
        | AllowlistError::TooManyEntries) => inline(StatusCode::BAD_REQUEST, sentence(&e.to_string())),
    }
}

#[cfg(test)]
mod tests;
