//! The general audit kinds: accounts, sign-in, sessions, second factors as
//! a whole, organisations, the allow-list, administration and OpenID
//! Connect. Each factor's own kinds are in its module.

use super::AuditEntry;
use super::kind::{AuditKind, AuditKindInfo as K, Sentence, Steps};
use super::wording::Category::{Changes, Devices, SignIns};
use super::wording::{NOT_YOU_CHANGE, NOT_YOU_PASSWORD, method_of, method_words, unknown};

/// The general kinds, for `AuditKind::parse`; the factors' are in
/// `factors::registry::AUDIT_KINDS`.
pub static GENERAL: &[AuditKind] = &[
    AuditKind::AccountCreated,
    AuditKind::AccountDisabled,
    AuditKind::AccountEnabled,
    AuditKind::SignInPassword,
    AuditKind::SignInSecondFactor,
    AuditKind::SignInSucceeded,
    AuditKind::SignOut,
    AuditKind::Reauth,
    AuditKind::AuthenticatorAdded,
    AuditKind::AuthenticatorRemoved,
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
    AuditKind::OidcCodeIssued,
    AuditKind::OidcTokenIssued,
    AuditKind::OidcRefused,
    AuditKind::OidcGrantRevoked,
];

fn wrong_codes(steps: &Steps<'_>) -> Vec<String> {
    let n = steps.rows.len();
    vec![if n == 1 { "1 wrong code".to_owned() } else { format!("{n} wrong codes") }]
}

#[allow(non_upper_case_globals)]
impl AuditKind {
    pub const AccountCreated: AuditKind = AuditKind::of(&K::new("account_created", Changes, "Account created"));
    pub const AccountDisabled: AuditKind =
        AuditKind::of(&K::new("account_disabled", Changes, "Account disabled by an administrator").attention());
    pub const AccountEnabled: AuditKind =
        AuditKind::of(&K::new("account_enabled", Changes, "Account enabled again by an administrator"));

    pub const SignInPassword: AuditKind = AuditKind::of(&K::reworded("sign_in_password", SignIns, |s| {
        if s.success {
            Sentence::new("Password entered; a second factor was asked for")
        } else {
            Sentence::new("Sign-in failed: wrong password")
                .advice("If this wasn't you, nobody got in; choose a strong password you use nowhere else.")
        }
    }));
    pub const SignInSecondFactor: AuditKind = AuditKind::of(
        &K::new("sign_in_second_factor", SignIns, "Sign-in failed: wrong code")
            .advice(NOT_YOU_PASSWORD)
            .joins_sign_in()
            .note(10, wrong_codes)
            .stops(40, "the code was wrong", true),
    );
    pub const SignInSucceeded: AuditKind =
        AuditKind::of(&K::new("sign_in_succeeded", SignIns, "Signed in").joins_sign_in());
    pub const SignOut: AuditKind = AuditKind::of(&K::new("sign_out", SignIns, "Signed out"));
    pub const Reauth: AuditKind = AuditKind::of(&K::reworded("reauth", SignIns, |s| {
        if s.success {
            let how = method_of(s.details).map_or("your password", method_words);
            Sentence::new(format!("Confirmed it was you with {how}"))
        } else {
            Sentence::new("Confirming it was you failed: wrong password or code").advice(
                "If this wasn't you, someone has this session: sign out everywhere else and change your password.",
            )
        }
    }));
    pub const LoginTokenExhausted: AuditKind = AuditKind::of(
        &K::new("login_token_exhausted", SignIns, "A sign-in was stopped after too many wrong codes")
            .advice(NOT_YOU_PASSWORD)
            .attention()
            .joins_sign_in()
            .stops(10, "stopped after too many wrong codes", false),
    );
    pub const Throttled: AuditKind = AuditKind::of(
        &K::new("throttled", SignIns, "Too many tries: further attempts had to wait")
            .advice("Wait a moment and try again. If this wasn't you, someone is guessing.")
            .joins_sign_in()
            .note(40, |_| vec!["Some tries had to wait: too many in a row".to_owned()]),
    );
    pub const PasswordLocked: AuditKind = AuditKind::of(
        &K::new("password_locked", SignIns, "Password sign-in locked after too many wrong passwords")
            .advice("Reset your password by e-mail to unlock it now, or wait.")
            .attention()
            .note(60, |_| vec!["Password sign-in locked after too many wrong passwords".to_owned()]),
    );
    pub const NewDeviceSignIn: AuditKind = AuditKind::of(
        &K::reworded("new_device_sign_in", SignIns, |s| {
            Sentence::new(format!("Signed in from a new device: {}", s.details)).advice(NOT_YOU_PASSWORD)
        })
        .attention()
        .joins_sign_in()
        .note(100, |steps| vec![format!("First sign-in from {}", steps.browser)]),
    );
    pub const SignInOutsideAllowlist: AuditKind = AuditKind::of(
        &K::new("sign_in_outside_allowlist", SignIns, "Sign-in refused: the address is not on your IP allow-list")
            .advice(NOT_YOU_PASSWORD)
            .attention()
            .joins_sign_in(),
    );
    pub const MandateNotice: AuditKind = AuditKind::of(
        &K::new("mandate_notice", SignIns, "Told that two-factor authentication will be required")
            .advice("Set up a second factor before the date to keep signing in."),
    );

    // A second factor, whichever it is: the details start with the kind
    // added ("webauthn; two-factor turned on"), which its factor names.
    pub const AuthenticatorAdded: AuditKind = AuditKind::of(&K::reworded("authenticator_added", Changes, |s| {
        let kind = s.details.split(';').next().and_then(|slug| crate::factors::kind(slug.trim()));
        // Rows written before the details named the kind were all the app's.
        let (label, with) = kind.map_or(("Authenticator app", "an authenticator app"), |k| (k.label, k.in_sentence));
        if s.details.contains("two-factor turned on") {
            Sentence::new(format!("Two-factor authentication turned on with {with}"))
        } else {
            Sentence::new(format!("{} added", super::wording::capitalized(label)))
        }
    }));
    pub const AuthenticatorRemoved: AuditKind = AuditKind::of(&K::reworded("authenticator_removed", Changes, |s| {
        if s.details.contains("two-factor turned off") {
            Sentence::new("Last second factor removed: two-factor authentication is off").advice(NOT_YOU_CHANGE)
        } else {
            Sentence::new(
                s.device.map_or_else(|| "Second factor removed".to_owned(), |d| format!("Second factor removed: {d}")),
            )
        }
    }));
    pub const TwoFactorDisabled: AuditKind = AuditKind::of(
        &K::new("two_factor_disabled", Changes, "Two-factor authentication turned off").advice(NOT_YOU_CHANGE),
    );
    pub const FactorLocked: AuditKind = AuditKind::of(
        &K::new("factor_locked", SignIns, "Codes locked after too many wrong ones")
            .advice("Sign in with a recovery code to unlock them. If this wasn't you, change your password now.")
            .attention()
            .joins_sign_in()
            .note(50, |_| vec!["Codes locked after too many wrong ones: a recovery code unlocks them".to_owned()])
            .stops(30, "codes are locked", false),
    );
    pub const FactorUnlocked: AuditKind =
        AuditKind::of(&K::new("factor_unlocked", Changes, "Codes unlocked").joins_sign_in());

    pub const PasswordResetRequested: AuditKind = AuditKind::of(
        &K::new("password_reset_requested", Changes, "Password reset link requested")
            .advice("If you didn't ask for it, ignore the e-mail: the password stays as it is."),
    );
    pub const PasswordReset: AuditKind =
        AuditKind::of(&K::new("password_reset", Changes, "Password reset by e-mailed link").advice(NOT_YOU_CHANGE));
    pub const PasswordChanged: AuditKind =
        AuditKind::of(&K::new("password_changed", Changes, "Password changed").advice(NOT_YOU_CHANGE));
    pub const EmailVerified: AuditKind = AuditKind::of(&K::reworded("email_verified", Changes, |s| {
        if s.success {
            Sentence::new("E-mail address verified")
        } else {
            Sentence::new("Verifying the e-mail address failed: wrong or expired code")
                .advice("Ask for a new verification e-mail.")
        }
    }));

    pub const SessionRevoked: AuditKind = AuditKind::of(&K::reworded("session_revoked", Devices, |s| {
        Sentence::new(if s.details.ends_with("other sessions") {
            "Signed out everywhere else"
        } else {
            "Another device was signed out"
        })
    }));
    pub const BrowserRemembered: AuditKind = AuditKind::of(
        &K::new("browser_remembered", Devices, "This browser was remembered: it skips the code for 30 days")
            .joins_sign_in()
            .note(80, |_| vec!["This browser was remembered for 30 days".to_owned()]),
    );
    pub const BrowserForgotten: AuditKind =
        AuditKind::of(&K::new("browser_forgotten", Devices, "A remembered browser was forgotten"));
    pub const SessionOutsideAllowlist: AuditKind = AuditKind::of(
        &K::new(
            "session_outside_allowlist",
            Devices,
            "A session was ended: it was used from outside your IP allow-list",
        )
        .attention(),
    );

    pub const OrgCreated: AuditKind = AuditKind::of(&K::new("org_created", Changes, "Organisation created"));
    pub const OrgMemberRemoved: AuditKind =
        AuditKind::of(&K::new("org_member_removed", Changes, "Organisation membership changed: a member was removed"));
    pub const OrgRoleChanged: AuditKind =
        AuditKind::of(&K::new("org_role_changed", Changes, "Organisation role changed"));
    pub const OrgInvitationSent: AuditKind =
        AuditKind::of(&K::new("org_invitation_sent", Changes, "Organisation invitation sent"));
    pub const OrgInvitationAccepted: AuditKind =
        AuditKind::of(&K::new("org_invitation_accepted", Changes, "Organisation invitation accepted"));
    pub const OrgInvitationDeclined: AuditKind =
        AuditKind::of(&K::new("org_invitation_declined", Changes, "Organisation invitation declined"));
    pub const OrgInvitationRevoked: AuditKind =
        AuditKind::of(&K::new("org_invitation_revoked", Changes, "Organisation invitation withdrawn"));
    pub const PolicyChanged: AuditKind =
        AuditKind::of(&K::new("policy_changed", Changes, "Organisation two-factor rule changed"));
    pub const AllowlistChanged: AuditKind =
        AuditKind::of(&K::new("allowlist_changed", Changes, "IP allow-list changed"));

    pub const AdminGranted: AuditKind = AuditKind::of(&K::new("admin_granted", Changes, "Made an administrator"));
    pub const AdminRevoked: AuditKind = AuditKind::of(&K::new("admin_revoked", Changes, "No longer an administrator"));
    pub const TwoFactorReset: AuditKind = AuditKind::of(
        &K::new("two_factor_reset", Changes, "Two-factor authentication reset by an administrator")
            .advice("Set up a second factor again. If you didn't ask for this, tell your administrator.")
            .attention(),
    );

    // The security log has no words of its own for what apps did yet: they
    // read as their names, as a kind this version does not know would.
    pub const OidcCodeIssued: AuditKind = AuditKind::of(&K::reworded("oidc_code_issued", Changes, unknown));
    pub const OidcTokenIssued: AuditKind = AuditKind::of(&K::reworded("oidc_token_issued", Changes, unknown));
    pub const OidcRefused: AuditKind = AuditKind::of(&K::reworded("oidc_refused", Changes, unknown));
    pub const OidcGrantRevoked: AuditKind = AuditKind::of(&K::reworded("oidc_grant_revoked", Changes, unknown));
}

/// Whether a row is the kind.
pub fn is(e: &AuditEntry, kind: AuditKind) -> bool {
    e.kind == kind.as_str()
}
