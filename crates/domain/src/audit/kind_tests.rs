//! The kinds' names are a stored contract; these tests hold it.

use std::collections::HashSet;

use super::*;

/// Every name the audit table may hold from this version, as stored before
/// the kinds moved into their factors' modules. A name here never changes:
/// rows already written would stop reading as what they were.
const STORED: [&str; 60] = [
    "account_created",
    "account_disabled",
    "account_enabled",
    "sign_in_password",
    "sign_in_second_factor",
    "sign_in_succeeded",
    "sign_out",
    "reauth",
    "totp_enrollment_started",
    "authenticator_added",
    "authenticator_removed",
    "totp_replay",
    "webauthn_sign_count_regression",
    "recovery_code_used",
    "recovery_codes_revealed",
    "recovery_codes_regenerated",
    "two_factor_disabled",
    "login_token_exhausted",
    "throttled",
    "factor_locked",
    "factor_unlocked",
    "password_locked",
    "password_reset_requested",
    "password_reset",
    "password_changed",
    "session_revoked",
    "browser_remembered",
    "browser_forgotten",
    "code_sent",
    "code_send_throttled",
    "phone_verification_started",
    "phone_added",
    "phone_removed",
    "email_verified",
    "new_device_sign_in",
    "org_created",
    "org_member_removed",
    "org_role_changed",
    "org_invitation_sent",
    "org_invitation_accepted",
    "org_invitation_declined",
    "org_invitation_revoked",
    "policy_changed",
    "sign_in_outside_allowlist",
    "session_outside_allowlist",
    "allowlist_changed",
    "admin_granted",
    "admin_revoked",
    "two_factor_reset",
    "mandate_notice",
    "push_pairing_started",
    "push_device_added",
    "authenticator_renamed",
    "push_sent",
    "push_approved",
    "push_denied",
    "oidc_code_issued",
    "oidc_token_issued",
    "oidc_refused",
    "oidc_grant_revoked",
];

#[test]
fn every_kind_has_its_own_name() {
    let mut seen = HashSet::new();
    for kind in all() {
        assert!(seen.insert(kind.as_str()), "{kind:?} is registered twice or shares a name");
    }
}

#[test]
fn every_kind_parses_back_from_its_name() {
    for kind in all() {
        assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
    }
    assert_eq!(AuditKind::parse("some_future_event"), None);
    assert_eq!(AuditKind::parse(""), None);
}

#[test]
fn the_stored_names_are_exactly_the_contract() {
    let registered: HashSet<&str> = all().map(AuditKind::as_str).collect();
    let stored: HashSet<&str> = STORED.into_iter().collect();
    assert_eq!(stored.len(), STORED.len(), "the contract lists a name twice");
    let missing: Vec<_> = stored.difference(&registered).collect();
    let new: Vec<_> = registered.difference(&stored).collect();
    assert!(missing.is_empty(), "stored names no longer registered: {missing:?}");
    assert!(new.is_empty(), "names not in the contract (add them to STORED once shipped): {new:?}");
}

#[test]
fn the_names_the_code_uses_are_the_stored_ones() {
    // Spot checks through the constants, so a renamed constant or a
    // mistyped name in a factor's module cannot slip past.
    assert_eq!(AuditKind::SignInSucceeded.as_str(), "sign_in_succeeded");
    assert_eq!(AuditKind::PushDeviceRenamed.as_str(), "authenticator_renamed");
    assert_eq!(AuditKind::TotpReplay.as_str(), "totp_replay");
    assert_eq!(AuditKind::WebauthnSignCountRegression.as_str(), "webauthn_sign_count_regression");
    assert_eq!(AuditKind::CodeSendThrottled.as_str(), "code_send_throttled");
    assert_eq!(AuditKind::RecoveryCodesRevealed.as_str(), "recovery_codes_revealed");
    assert_eq!(AuditKind::PhoneAdded.as_str(), "phone_added");
    assert_ne!(AuditKind::PushApproved, AuditKind::PushDenied);
}

#[test]
fn a_row_that_joins_a_sign_in_is_one_a_second_step_writes() {
    let joins: HashSet<&str> = all().filter(|k| k.info().sign_in.joins).map(AuditKind::as_str).collect();
    let expected: HashSet<&str> = [
        "sign_in_second_factor",
        "sign_in_succeeded",
        "login_token_exhausted",
        "throttled",
        "factor_locked",
        "factor_unlocked",
        "code_sent",
        "code_send_throttled",
        "push_sent",
        "push_approved",
        "push_denied",
        "recovery_code_used",
        "totp_replay",
        "webauthn_sign_count_regression",
        "new_device_sign_in",
        "browser_remembered",
        "sign_in_outside_allowlist",
    ]
    .into_iter()
    .collect();
    assert_eq!(joins, expected);
}
