//! E-mails to the account holder: security notices and password-reset
//! links (`security.md` §2.7). A notice says what happened, when, from
//! which address and client, and what to do if it was not them; it never
//! carries a code or secret. Mail goes through the outbox, so no request
//! waits for the mail server. Notices go only to a verified address: an
//! unverified one may be a typo that would tell a stranger about the account.

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
    RecoveryCodeUsed {
        remaining: usize,
    },
    RecoveryCodesRevealed,
    RecoveryCodesRegenerated,
    TotpReplay,
    /// A security key's sign count went backwards: it may have been copied.
    /// A key's sign count went backwards; `refused` when the operator's
    /// setting refused the sign-in, else it was let through and flagged.
    SecurityKeyCloned {
        refused: bool,
    },
    TwoFactorEnabled {
        method: String,
    },
    /// A number where there was none (2FA already on by another factor).
    PhoneAdded {
        masked: String,
    },
    PhoneChanged {
        masked: String,
    },
    PhoneRemoved,
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
    /// A push sign-in request was denied on a companion device; `not_me`
    /// when the person denying said they had not tried to sign in.
    PushDenied {
        device: String,
        not_me: bool,
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
            Self::RecoveryCodeUsed { .. } => "A recovery code was used to sign in",
            Self::RecoveryCodesRevealed => "Your recovery codes were viewed",
            Self::RecoveryCodesRegenerated => "New recovery codes were made",
            Self::TotpReplay => "A used sign-in code was tried again",
            Self::SecurityKeyCloned { refused: true } => "A security key that may have been copied was refused",
            Self::SecurityKeyCloned { refused: false } => "A security key that may have been copied was used",
            Self::TwoFactorEnabled { .. } => "Two-factor authentication was turned on",
            Self::PhoneAdded { .. } => "A phone number was added to your account",
            Self::PhoneChanged { .. } => "The phone number of your account was changed",
            Self::PhoneRemoved => "The phone number was removed from your account",
            Self::NewSignIn { .. } => "New sign-in to your account",
            Self::SignInOutsideAllowlist { .. } => "A sign-in from an unlisted address was refused",
            Self::SessionOutsideAllowlist => "A session was used from an unlisted address and ended",
            Self::AllowlistChanged { .. } => "The IP allow-list of your account was changed",
            Self::AdminReset => "Your two-factor authentication was reset by an administrator",
            Self::TwoFactorMandate { .. } => "Two-factor authentication will become mandatory",
            Self::OrgRequiresTwoFactor { .. } => "Your organisation now requires two-factor authentication",
            Self::PushDenied { not_me: true, .. } => "Someone else tried to sign in to your account",
            Self::PushDenied { .. } => "A sign-in request was denied on your device",
        }
    }

    #[expect(clippy::too_many_lines, reason = "one arm per notice, each its own text")]
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
            Self::PushDenied { device, not_me: true } => {
                return format!(
                    "A sign-in request for your account was denied on \"{device}\", saying it was not you. The \
                     person who asked knew your password: change it now, and check your sessions and \
                     authenticators on the Security page."
                );
            }
            Self::PushDenied { device, not_me: false } => {
                return format!(
                    "A sign-in request for your account was denied on \"{device}\". If you did not try to sign \
                     in, someone knows your password: change it."
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
            Self::RecoveryCodeUsed { remaining } => {
                return format!(
                    "A recovery code was used to sign in to your account; {remaining} codes are left. If this was \
                     not you, sign in, regenerate your recovery codes and change your password."
                );
            }
            Self::RecoveryCodesRevealed => {
                "Your recovery codes were shown on the Security page. If this was not you, regenerate them and \
                 change your password."
            }
            Self::RecoveryCodesRegenerated => {
                "A new set of recovery codes was made; the old ones no longer work. If this was not you, change \
                 your password."
            }
            Self::SecurityKeyCloned { refused: true } => {
                "A sign-in with one of your security keys was refused: the key's signature count went \
                 backwards, which happens when a copy of the key is used. If you have not restored or \
                 replaced the key, remove it on the Security page and change your password."
            }
            Self::SecurityKeyCloned { refused: false } => {
                "One of your security keys signed in, but its signature count went backwards, which happens \
                 when a copy of the key is used. If you have not restored or replaced the key, remove it on \
                 the Security page, change your password and check your sessions."
            }
            Self::TotpReplay => {
                "A code from your authenticator app that had already been used was entered again. Someone may \
                 have seen it over your shoulder or through a phishing page; if you did not just sign in twice, \
                 change your password."
            }
            Self::TwoFactorEnabled { method } => {
                return format!(
                    "Two-factor authentication was turned on for your account with {method}. Signing in now takes \
                     your password and a second step. Keep your recovery codes somewhere safe. If this was not you, \
                     sign in, check your security settings and change your password."
                );
            }
            Self::PhoneAdded { masked } => {
                return format!(
                    "The phone number {masked} was added to your account; codes by text message and voice call go \
                     there. If this was not you, someone may be taking over your account: sign in, remove the number \
                     and change your password."
                );
            }
            Self::PhoneChanged { masked } => {
                return format!(
                    "Your account's phone number is now {masked}; codes by text message and voice call go there. If \
                     this was not you, someone may be taking over your account: sign in, remove the number and \
                     change your password."
                );
            }
            Self::PhoneRemoved => {
                "The phone number was removed from your account: codes by text message and voice call no longer \
                 work. If this was not you, sign in and change your password."
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
