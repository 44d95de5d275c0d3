//! E-mails to the account holder: security notices and password-reset
//! links (`security.md` §2.7). A notice says what happened, when, from
//! which address and client, and what to do if it was not them; it never
//! carries a code or secret. Mail goes through the outbox, so no request
//! waits for the mail server. Notices go only to a verified address: an
//! unverified one may be a typo that would tell a stranger about the account.
//!
//! The notices here are the general ones; a factor's own (a used recovery
//! code, a denied push) are built in its module as `Notice::Factor`, so a
//! new factor adds its mail without a variant here.

use crate::audit::RequestContext;
use crate::ids::AccountId;
use crate::notify::store::{Channel, Outbound};
use crate::service::Twostep;

/// What to tell the account holder.
#[derive(Clone, Debug)]
pub enum Notice {
    FactorLocked,
    PasswordLocked,
    PasswordChanged,
    PasswordReset,
    /// The reset link itself; the only mail that carries a secret, by design.
    ResetLink {
        /// Whether the account has a second factor the reset leaves in place.
        two_factor: bool,
        url: String,
    },
    AuthenticatorAdded {
        name: String,
    },
    AuthenticatorRemoved,
    TwoFactorDisabled,
    TwoFactorEnabled {
        method: String,
    },
    /// A sign-in from an address and client not seen on this account before.
    NewSignIn {
        device: String,
    },
    /// A sign-in from an address outside the account's IP allow-list was
    /// refused; `right_password` says whether the password was correct.
    SignInOutsideAllowlist {
        right_password: bool,
    },
    /// A session was used from an address outside the allow-list and ended.
    SessionOutsideAllowlist,
    /// The IP allow-list was changed; `entries` is its new length.
    AllowlistChanged {
        entries: usize,
    },
    /// An operator removed every second factor (`twostep user reset-2fa`,
    /// the admin pages or API).
    AdminReset,
    /// An owner turned on "Require two-factor" in an organisation this
    /// account belongs to without 2FA; sent once per member and organisation.
    OrgRequiresTwoFactor {
        org: String,
    },
    /// The operator makes 2FA mandatory at `from`; sent once per account.
    TwoFactorMandate {
        from: crate::time::Timestamp,
    },
    /// A factor's own notice, worded in the factor's module (`Notice::totp_replay`
    /// and the like), so a factor adds its notices without a variant here.
    Factor {
        subject: &'static str,
        body: String,
    },
}

impl Notice {
    pub(crate) fn subject(&self) -> &'static str {
        match self {
            Self::FactorLocked => "Your two-factor sign-in is locked",
            Self::PasswordLocked => "Password sign-in to your account is locked",
            Self::PasswordChanged => "Your password was changed",
            Self::PasswordReset => "Your password was reset",
            Self::ResetLink { .. } => "Reset your password",
            Self::AuthenticatorAdded { .. } => "An authenticator was added to your account",
            Self::AuthenticatorRemoved => "An authenticator was removed from your account",
            Self::TwoFactorDisabled => "Two-factor authentication was turned off",
            Self::TwoFactorEnabled { .. } => "Two-factor authentication was turned on",
            Self::NewSignIn { .. } => "New sign-in to your account",
            Self::SignInOutsideAllowlist { .. } => "A sign-in from an unlisted address was refused",
            Self::SessionOutsideAllowlist => "A session was used from an unlisted address and ended",
            Self::AllowlistChanged { .. } => "The IP allow-list of your account was changed",
            Self::AdminReset => "Your two-factor authentication was reset by an administrator",
            Self::TwoFactorMandate { .. } => "Two-factor authentication will become mandatory",
            Self::OrgRequiresTwoFactor { .. } => "Your organisation now requires two-factor authentication",
            Self::Factor { subject, .. } => subject,
        }
    }

    pub(crate) fn body(&self) -> String {
        let text = match self {
            Self::AdminReset => {
                "An administrator removed every second factor and recovery code from your account and signed \
                 out all its sessions and remembered browsers. Your password still works: sign in and set up \
                 two-factor authentication again on the Security page. If you did not ask for this, contact \
                 your administrator and change your password."
            }
            Self::FactorLocked => {
                "Someone entered too many wrong two-factor codes for your account, so code sign-in is locked. \
                 Sign in with one of your recovery codes to unlock it. If this was not you, your password is known \
                 to someone else: change it."
            }
            Self::PasswordLocked => {
                "Too many wrong passwords were tried for your account, so password sign-in is locked. Reset your \
                 password to unlock it."
            }
            Self::PasswordChanged => {
                "The password of your account was changed and your other sessions were signed out. If this was \
                 not you, reset your password now."
            }
            Self::PasswordReset => {
                "The password of your account was reset with an e-mailed link and every session was signed out. \
                 If this was not you, reset it again and check your second factors."
            }
            Self::ResetLink { url, two_factor } => {
                let after = if *two_factor {
                    " Your second factor stays as it is: you will still need it to sign in."
                } else {
                    ""
                };
                return format!(
                    "Someone asked to reset the password of your account. To choose a new password, open this \
                     link within 30 minutes:\n\n{url}\n\nThe link works once. If you did not ask for it, ignore \
                     this e-mail: your password stays as it is.{after}"
                );
            }
            Self::AuthenticatorAdded { name } => {
                return format!(
                    "The authenticator \"{name}\" was added to your account and can now be used to sign in. If \
                     this was not you, sign in, remove it and change your password."
                );
            }
            Self::AuthenticatorRemoved => {
                "An authenticator was removed from your account. If this was not you, sign in, check your \
                 authenticators and change your password."
            }
            Self::TwoFactorDisabled => {
                "Two-factor authentication was turned off: your password alone now signs you in. If this was not \
                 you, sign in, turn it back on and change your password."
            }
            Self::TwoFactorEnabled { method } => {
                return format!(
                    "Two-factor authentication was turned on for your account with {method}. Signing in now takes \
                     your password and a second step. Keep your recovery codes somewhere safe. If this was not you, \
                     sign in, check your security settings and change your password."
                );
            }
            Self::NewSignIn { device } => {
                return format!(
                    "Your account was signed in to from {device}, which we have not seen before. If this was you, \
                     there is nothing to do. If not, change your password and end the session on the Security page."
                );
            }
            Self::SignInOutsideAllowlist { right_password: true } => {
                "Someone signed in to your account with the correct password from an address that is not on your \
                 IP allow-list, so the sign-in was refused. If this was not you, your password is known to someone \
                 else: change it and turn on two-factor authentication."
            }
            Self::SignInOutsideAllowlist { right_password: false } => {
                "Someone tried to sign in to your account from an address that is not on your IP allow-list, with a \
                 wrong password. The attempt was refused. If this keeps happening, consider a longer password and \
                 two-factor authentication."
            }
            Self::SessionOutsideAllowlist => {
                "A signed-in session of your account was used from an address that is not on your IP allow-list, so \
                 it was signed out. If you did not just move to another network, someone may have copied the \
                 session: sign in, check your signed-in devices and change your password."
            }
            Self::AllowlistChanged { entries: 0 } => {
                "The IP allow-list of your account was cleared: your account can now be signed in to from any \
                 address. If this was not you, sign in, check your security settings and change your password."
            }
            Self::AllowlistChanged { entries } => {
                return format!(
                    "The IP allow-list of your account was changed; it now has {entries} entries, and sign-in works \
                     only from those addresses. If this was not you, sign in from a listed address, check the list \
                     on the Security page and change your password."
                );
            }
            Self::TwoFactorMandate { from } => return mandate_body(*from),
            Self::Factor { body, .. } => return body.clone(),
            Self::OrgRequiresTwoFactor { org } => {
                return format!(
                    "An owner of the organisation \"{org}\" now requires two-factor authentication of every member, \
                     and your account does not have it yet. Sign in and set it up on the Security page: until you \
                     do, you can set it up or leave the organisation, and nothing else."
                );
            }
        };
        text.to_owned()
    }
}

fn mandate_body(from: crate::time::Timestamp) -> String {
    let date = from.rfc3339();
    let date = date.get(..10).unwrap_or(&date);
    format!(
        "From {date} (UTC), signing in to this service takes a second step besides your password: a code from an \
         authenticator app or sent to your phone. Your account does not have two-factor authentication yet. Sign \
         in and open the Security page to set it up now; from that date on you will be asked to set it up before \
         you can do anything else."
    )
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

impl Twostep {
    /// Mails a notice to the account's address (see `Notices::notify`).
    pub(crate) async fn notify(&self, account: &AccountId, notice: Notice, ctx: &RequestContext) {
        self.notices.notify(account, notice, ctx).await;
    }
}

/// An e-mail with a plain-text and an HTML part; `context` is the small
/// print under the body.
pub(crate) fn mail(to: &str, subject: &str, body: &str, context: &str, code: Option<String>) -> Outbound {
    let text = format!("{body}\n\n{context}\n\n— twostep\n");
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><p>{}</p><p style=\"color:#555\">{}</p>\
         <p>— twostep</p></body></html>",
        escape_html(body).replace("\n\n", "</p><p>"),
        escape_html(context).replace('\n', "<br>")
    );
    Outbound {
        id: String::new(),
        channel: Channel::Email,
        to: to.to_owned(),
        subject: subject.to_owned(),
        text,
        html,
        code,
        expires_at: crate::time::Timestamp::default(),
    }
}
