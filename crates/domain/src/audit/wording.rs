//! The plain words for one audit event as its owner reads it: what
//! happened, for a failure what to do, whether it needs their attention and
//! which of the log's filters it belongs to. The slugs are the stored
//! `AuditKind::as_str` values, so rows written by older versions (or kinds
//! this version no longer writes) still read as something.

/// The log's filters: a small fixed set, so a link cannot ask for anything
/// else. `Warnings` is not a kind of event but a property of one (see
/// `Readable::attention`), so an entry may be both a sign-in and a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    SignIns,
    Changes,
    Devices,
    Warnings,
}

impl Category {
    pub const ALL: [Category; 4] = [Self::SignIns, Self::Changes, Self::Devices, Self::Warnings];

    /// The query value (`?kind=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIns => "sign-ins",
            Self::Changes => "changes",
            Self::Devices => "devices",
            Self::Warnings => "warnings",
        }
    }

    /// A filter by its query value; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::SignIns => "Sign-ins",
            Self::Changes => "Security changes",
            Self::Devices => "Devices and sessions",
            Self::Warnings => "Needs attention",
        }
    }
}

/// How one event reads on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Words {
    pub title: String,
    /// What to do about it, for failures and warnings.
    pub advice: Option<&'static str>,
    pub attention: bool,
    pub category: Category,
}

const NOT_YOU_PASSWORD: &str = "If this wasn't you, change your password now and check your authenticators.";
const NOT_YOU_CHANGE: &str =
    "If you didn't do this, change your password now and check your authenticators and recovery codes.";

/// How a method (the API name in "method totp") reads in a sentence.
pub fn method_words(method: &str) -> &'static str {
    match method {
        "totp" => "an authenticator app",
        "sms" => "a code sent by text message",
        "voice" => "a code read out by phone call",
        "email" => "a code sent by e-mail",
        "push" => "a push approval",
        "webauthn" => "a security key or passkey",
        "passkey" => "a passkey",
        "recovery_code" => "a recovery code",
        "password" => "your password",
        _ => "a second factor",
    }
}

/// "method totp" (as sign-in and re-auth record it) → "totp".
pub fn method_of(details: &str) -> Option<&str> {
    details.split(';').find_map(|part| part.trim().strip_prefix("method ")).map(str::trim)
}

fn w(title: impl Into<String>, category: Category) -> Words {
    Words { title: title.into(), advice: None, attention: false, category }
}

impl Words {
    fn advice(mut self, advice: &'static str) -> Self {
        self.advice = Some(advice);
        self
    }

    fn attention(mut self) -> Self {
        self.attention = true;
        self
    }
}

/// The words for one event that is not part of a sign-in. `device` names
/// the factor the row points at (a companion device, an app), when known.
#[expect(clippy::too_many_lines, reason = "one arm per audit kind reads best as one table")]
pub fn single(kind: &str, success: bool, details: &str, device: Option<&str>) -> Words {
    use Category::{Changes, Devices, SignIns};
    let on = |what: &str| device.map_or_else(|| what.to_owned(), |d| format!("{what} on {d}"));
    match (kind, success) {
        ("account_created", _) => w("Account created", Changes),
        ("account_disabled", _) => w("Account disabled by an administrator", Changes).attention(),
        ("account_enabled", _) => w("Account enabled again by an administrator", Changes),
        ("sign_out", _) => w("Signed out", SignIns),
        ("reauth", true) => {
            let how = method_of(details).map_or("your password", method_words);
            w(format!("Confirmed it was you with {how}"), SignIns)
        }
        ("reauth", false) => w("Confirming it was you failed: wrong password or code", SignIns)
            .advice("If this wasn't you, someone has this session: sign out everywhere else and change your password."),
        // A key's set-up is recorded under the same kinds, its details saying so.
        ("totp_enrollment_started", _) if details.starts_with("webauthn") => {
            w("Started adding a security key or passkey", Changes)
        }
        ("totp_enrollment_started", _) => w("Started setting up an authenticator app", Changes),
        ("authenticator_added", _) if details.contains("two-factor turned on") => {
            let with =
                if details.starts_with("webauthn") { "a security key or passkey" } else { "an authenticator app" };
            w(format!("Two-factor authentication turned on with {with}"), Changes)
        }
        ("authenticator_added", _) if details.starts_with("webauthn") => w("Security key or passkey added", Changes),
        ("authenticator_added", _) => w("Authenticator app added", Changes),
        ("authenticator_removed", _) if details.contains("two-factor turned off") => {
            w("Last second factor removed: two-factor authentication is off", Changes).advice(NOT_YOU_CHANGE)
        }
        ("authenticator_removed", _) => w(
            device.map_or_else(|| "Second factor removed".to_owned(), |d| format!("Second factor removed: {d}")),
            Changes,
        ),
        ("totp_replay", _) => w("An authenticator code was used twice and refused", SignIns)
            .advice("Codes work once. If you didn't type it twice, someone may have seen it: change your password.")
            .attention(),
        ("webauthn_sign_count_regression", success) => w(
            if success {
                "A security key's signature count went backwards; the sign-in was let through"
            } else {
                "A security key's signature count went backwards; refused"
            },
            SignIns,
        )
        .advice("The key may have been copied. If you don't recognise this, remove the key and change your password.")
        .attention(),
        ("recovery_code_used", _) => {
            w("A recovery code was used", SignIns).advice("Each code works once; regenerate them when few are left.")
        }
        ("recovery_codes_revealed", _) => w("Recovery codes were shown", Changes).advice(NOT_YOU_CHANGE).attention(),
        ("recovery_codes_regenerated", _) => w("New recovery codes made; the old ones stopped working", Changes),
        ("two_factor_disabled", _) => w("Two-factor authentication turned off", Changes).advice(NOT_YOU_CHANGE),
        ("login_token_exhausted", _) => {
            w("A sign-in was stopped after too many wrong codes", SignIns).advice(NOT_YOU_PASSWORD).attention()
        }
        ("throttled", _) => w("Too many tries: further attempts had to wait", SignIns)
            .advice("Wait a moment and try again. If this wasn't you, someone is guessing."),
        ("factor_locked", _) => w("Codes locked after too many wrong ones", SignIns)
            .advice("Sign in with a recovery code to unlock them. If this wasn't you, change your password now.")
            .attention(),
        ("factor_unlocked", _) => w("Codes unlocked", Changes),
        ("password_locked", _) => w("Password sign-in locked after too many wrong passwords", SignIns)
            .advice("Reset your password by e-mail to unlock it now, or wait.")
            .attention(),
        ("password_reset_requested", _) => w("Password reset link requested", Changes)
            .advice("If you didn't ask for it, ignore the e-mail: the password stays as it is."),
        ("password_reset", _) => w("Password reset by e-mailed link", Changes).advice(NOT_YOU_CHANGE),
        ("password_changed", _) => w("Password changed", Changes).advice(NOT_YOU_CHANGE),
        ("session_revoked", _) if details.ends_with("other sessions") => w("Signed out everywhere else", Devices),
        ("session_revoked", _) => w("Another device was signed out", Devices),
        ("browser_remembered", _) => w("This browser was remembered: it skips the code for 30 days", Devices),
        ("browser_forgotten", _) => w("A remembered browser was forgotten", Devices),
        ("code_sent", _) => w("A sign-in code was sent", SignIns),
        ("code_send_throttled", _) => w("A code was not sent: asked for too often", SignIns)
            .advice("Wait a minute before asking for another code."),
        ("phone_verification_started", _) => w("Started adding a phone number", Changes),
        ("phone_added", true) => w("Phone number added", Changes),
        ("phone_added", false) => w("Adding a phone number failed: wrong or expired code", Changes)
            .advice("Ask for a new code and type it within 10 minutes."),
        ("phone_removed", _) => w("Phone number removed", Changes),
        ("email_verified", true) => w("E-mail address verified", Changes),
        ("email_verified", false) => w("Verifying the e-mail address failed: wrong or expired code", Changes)
            .advice("Ask for a new verification e-mail."),
        ("new_device_sign_in", _) => {
            w(format!("Signed in from a new device: {details}"), SignIns).advice(NOT_YOU_PASSWORD).attention()
        }
        ("org_created", _) => w("Organisation created", Changes),
        ("org_member_removed", _) => w("Organisation membership changed: a member was removed", Changes),
        ("org_role_changed", _) => w("Organisation role changed", Changes),
        ("org_invitation_sent", _) => w("Organisation invitation sent", Changes),
        ("org_invitation_accepted", _) => w("Organisation invitation accepted", Changes),
        ("org_invitation_declined", _) => w("Organisation invitation declined", Changes),
        ("org_invitation_revoked", _) => w("Organisation invitation withdrawn", Changes),
        ("policy_changed", _) => w("Organisation two-factor rule changed", Changes),
        ("sign_in_outside_allowlist", _) => {
            w("Sign-in refused: the address is not on your IP allow-list", SignIns).advice(NOT_YOU_PASSWORD).attention()
        }
        ("session_outside_allowlist", _) => {
            w("A session was ended: it was used from outside your IP allow-list", Devices).attention()
        }
        ("allowlist_changed", _) => w("IP allow-list changed", Changes),
        ("admin_granted", _) => w("Made an administrator", Changes),
        ("admin_revoked", _) => w("No longer an administrator", Changes),
        ("two_factor_reset", _) => w("Two-factor authentication reset by an administrator", Changes)
            .advice("Set up a second factor again. If you didn't ask for this, tell your administrator.")
            .attention(),
        ("mandate_notice", _) => w("Told that two-factor authentication will be required", SignIns)
            .advice("Set up a second factor before the date to keep signing in."),
        ("push_pairing_started", _) => w("Started pairing a companion device", Devices),
        ("push_device_added", _) => w(format!("Companion device paired: {details}"), Devices),
        ("authenticator_renamed", _) => w(format!("Companion device renamed to {details}"), Devices),
        ("push_sent", _) => w("A sign-in request was sent to your companion devices", SignIns),
        ("push_approved", _) => w(on("A sign-in request was approved"), SignIns),
        ("push_denied", _) => w(on("A sign-in request was denied"), SignIns)
            .advice("If you denied it because it wasn't you, change your password now: whoever asked knows it.")
            .attention(),
        ("sign_in_password", true) => w("Password entered; a second factor was asked for", SignIns),
        ("sign_in_password", false) => w("Sign-in failed: wrong password", SignIns)
            .advice("If this wasn't you, nobody got in; choose a strong password you use nowhere else."),
        ("sign_in_second_factor", _) => w("Sign-in failed: wrong code", SignIns).advice(NOT_YOU_PASSWORD),
        ("sign_in_succeeded", _) => w("Signed in", SignIns),
        (other, ok) => {
            let words = other.replace('_', " ");
            let mut first = words.chars();
            let title: String = first.next().map(|c| c.to_uppercase().chain(first).collect()).unwrap_or_default();
            let entry = w(title, Changes);
            if ok { entry } else { entry.advice("It did not succeed.") }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKind;

    #[test]
    fn categories_round_trip_and_nothing_else_parses() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
        }
        assert_eq!(Category::parse("everything"), None);
        assert_eq!(Category::parse(""), None);
    }

    #[test]
    fn the_methods_read_as_words() {
        assert_eq!(method_of("method totp"), Some("totp"));
        assert_eq!(method_of("password; remembered browser"), None);
        assert_eq!(method_words("totp"), "an authenticator app");
        assert_eq!(method_words("webauthn"), "a security key or passkey");
        assert_eq!(method_words("fax"), "a second factor");
    }

    #[test]
    fn a_keys_set_up_is_not_called_an_app() {
        assert_eq!(
            single("totp_enrollment_started", true, "webauthn", None).title,
            "Started adding a security key or passkey"
        );
        assert_eq!(
            single("authenticator_added", true, "webauthn; two-factor turned on", None).title,
            "Two-factor authentication turned on with a security key or passkey"
        );
        assert_eq!(single("authenticator_added", true, "webauthn", None).title, "Security key or passkey added");
        assert_eq!(
            single("authenticator_added", true, "totp; two-factor turned on", None).title,
            "Two-factor authentication turned on with an authenticator app"
        );
    }

    /// Every kind the domain writes reads as a sentence, not a slug.
    #[test]
    fn no_kind_reads_as_its_slug() {
        for kind in ALL_KINDS {
            for ok in [true, false] {
                let words = single(kind.as_str(), ok, "", None);
                assert!(!words.title.contains('_'), "{kind:?}: {}", words.title);
                assert!(words.title.chars().next().is_some_and(char::is_uppercase), "{kind:?}: {}", words.title);
            }
        }
    }

    #[test]
    fn what_needs_attention_is_marked_with_what_to_do() {
        let denied = single("push_denied", false, "denied: not me", Some("Pixel 8"));
        assert_eq!(denied.title, "A sign-in request was denied on Pixel 8");
        for kind in [
            "push_denied",
            "factor_locked",
            "password_locked",
            "new_device_sign_in",
            "sign_in_outside_allowlist",
            "recovery_codes_revealed",
            "two_factor_reset",
        ] {
            let words = single(kind, false, "", None);
            assert!(words.attention, "{kind} needs attention");
            assert!(words.advice.is_some(), "{kind} says what to do");
        }
        for kind in ["account_created", "sign_out", "password_changed", "authenticator_added"] {
            assert!(!single(kind, true, "", None).attention, "{kind} is routine");
        }
    }

    #[test]
    fn an_unknown_kind_still_reads() {
        assert_eq!(single("some_future_event", true, "", None).title, "Some future event");
    }

    const ALL_KINDS: [AuditKind; 56] = [
        AuditKind::AccountCreated,
        AuditKind::AccountDisabled,
        AuditKind::AccountEnabled,
        AuditKind::SignInPassword,
        AuditKind::SignInSecondFactor,
        AuditKind::SignInSucceeded,
        AuditKind::SignOut,
        AuditKind::Reauth,
        AuditKind::TotpEnrollmentStarted,
        AuditKind::AuthenticatorAdded,
        AuditKind::AuthenticatorRemoved,
        AuditKind::TotpReplay,
        AuditKind::WebauthnSignCountRegression,
        AuditKind::RecoveryCodeUsed,
        AuditKind::RecoveryCodesRevealed,
        AuditKind::RecoveryCodesRegenerated,
        AuditKind::TwoFactorDisabled,
        AuditKind::LoginTokenExhausted,
        AuditKind::Throttled,
        AuditKind::FactorLocked,
        AuditKind::FactorUnlocked,
        AuditKind::PasswordLocked,
        AuditKind::PasswordResetRequested,
        AuditKind::PasswordReset,
        AuditKind::PasswordChanged,
        AuditKind::SessionRevoked,
        AuditKind::BrowserRemembered,
        AuditKind::BrowserForgotten,
        AuditKind::CodeSent,
        AuditKind::CodeSendThrottled,
        AuditKind::PhoneVerificationStarted,
        AuditKind::PhoneAdded,
        AuditKind::PhoneRemoved,
        AuditKind::EmailVerified,
        AuditKind::NewDeviceSignIn,
        AuditKind::OrgCreated,
        AuditKind::OrgMemberRemoved,
        AuditKind::OrgRoleChanged,
        AuditKind::OrgInvitationSent,
        AuditKind::OrgInvitationAccepted,
        AuditKind::OrgInvitationDeclined,
        AuditKind::OrgInvitationRevoked,
        AuditKind::PolicyChanged,
        AuditKind::SignInOutsideAllowlist,
        AuditKind::SessionOutsideAllowlist,
        AuditKind::AllowlistChanged,
        AuditKind::AdminGranted,
        AuditKind::AdminRevoked,
        AuditKind::TwoFactorReset,
        AuditKind::MandateNotice,
        AuditKind::PushPairingStarted,
        AuditKind::PushDeviceAdded,
        AuditKind::PushDeviceRenamed,
        AuditKind::PushSent,
        AuditKind::PushApproved,
        AuditKind::PushDenied,
    ];
}
