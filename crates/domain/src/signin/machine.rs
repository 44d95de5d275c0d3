//! The sign-in state machine's decisions, as pure functions of what the
//! services found: which step comes next and what a refusal is. `login`
//! and `verify_login` gather the facts (reading only what a decision
//! needs) and carry the decision out; the rules live, and are tested, here.
//!
//! ```text
//!   password ──wrong / throttled / disabled──▶ refused (one answer, §2.12)
//!      │ right
//!      ├─ no factor, policy requires one ──▶ enrolment-only session
//!      ├─ no factor ──────────────────────▶ full session
//!      ├─ remembered browser ─────────────▶ full session (password only)
//!      └─ otherwise ──▶ login token ──proof──▶ full session (token consumed)
//!                            └─5 wrong, expired──▶ refused
//! ```

use crate::accounts::store::AccountRecord;
use crate::error::{FactorError, LoginError};

/// The outcome of a guarded password check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PasswordCheck {
    Right,
    Wrong,
    Throttled { retry_after: i64 },
}

/// The password step's verdict.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PasswordVerdict {
    Passed,
    /// Refused without telling why; `audit` says what to log against the
    /// account, when there is one and the attempt came from where it may
    /// sign in from.
    Refused {
        audit: Option<&'static str>,
    },
    Throttled {
        retry_after: i64,
    },
}

/// Unknown e-mail, wrong password and disabled account are one refusal
/// (§2.12); only the audit log tells them apart.
pub(crate) fn judge_password(
    check: PasswordCheck,
    account: Option<&AccountRecord>,
    from_allowed_address: bool,
) -> PasswordVerdict {
    match (check, account) {
        (PasswordCheck::Throttled { retry_after }, _) => PasswordVerdict::Throttled { retry_after },
        (PasswordCheck::Right, Some(a)) if a.disabled_at.is_none() => PasswordVerdict::Passed,
        (_, Some(a)) if from_allowed_address => PasswordVerdict::Refused {
            audit: Some(if a.disabled_at.is_some() { "account disabled" } else { "wrong password" }),
        },
        _ => PasswordVerdict::Refused { audit: None },
    }
}

/// Where a right password leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AfterPassword {
    /// The policy requires a factor the account lacks: a session that may
    /// only set one up.
    Enrol,
    /// No second factor to ask for: a full session.
    SignedIn,
    /// A remembered browser skips the second factor, never the password.
    Remembered,
    /// The second step, against a login token.
    SecondStep,
}

/// `required` matters only without methods and `remembered` only with them:
/// callers read each only when it can change the answer.
pub(crate) fn after_password(has_methods: bool, required: bool, remembered: bool) -> AfterPassword {
    match (has_methods, required, remembered) {
        (false, true, _) => AfterPassword::Enrol,
        (false, false, _) => AfterPassword::SignedIn,
        (true, _, true) => AfterPassword::Remembered,
        (true, _, false) => AfterPassword::SecondStep,
    }
}

/// A second step's failed proof, as the caller is told.
pub(crate) fn second_step_refusal(e: FactorError) -> LoginError {
    match e {
        FactorError::Internal(i) => LoginError::Internal(i),
        FactorError::Throttled { retry_after } => LoginError::Throttled { retry_after },
        FactorError::FactorLocked => LoginError::FactorLocked,
        _ => LoginError::InvalidCode,
    }
}

/// Whether this wrong proof was the login token's last (§2.6): `failures`
/// counts this try.
pub(crate) fn token_exhausted(failures: i64, max: i64) -> bool {
    failures == max
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::email::Email;
    use crate::ids::AccountId;
    use crate::time::Timestamp;

    fn account(disabled: bool) -> AccountRecord {
        AccountRecord {
            id: AccountId::from_stored("a"),
            email: Email::from_stored("a@example.com"),
            password_hash: String::new(),
            created_at: Timestamp::from_secs(0),
            disabled_at: disabled.then(|| Timestamp::from_secs(1)),
            last_sign_in_at: None,
            email_verified_at: None,
            admin_since: None,
        }
    }

    #[test]
    fn sec12_unknown_wrong_and_disabled_are_one_refusal_told_apart_only_in_the_audit() {
        let (ok, off) = (account(false), account(true));
        assert_eq!(judge_password(PasswordCheck::Right, Some(&ok), true), PasswordVerdict::Passed);
        assert_eq!(
            judge_password(PasswordCheck::Wrong, Some(&ok), true),
            PasswordVerdict::Refused { audit: Some("wrong password") }
        );
        // A right password on a disabled account is refused like a wrong one.
        assert_eq!(
            judge_password(PasswordCheck::Right, Some(&off), true),
            PasswordVerdict::Refused { audit: Some("account disabled") }
        );
        assert_eq!(judge_password(PasswordCheck::Right, None, true), PasswordVerdict::Refused { audit: None });
        // From outside the allow-list the attempt is audited where it is checked, not here.
        assert_eq!(judge_password(PasswordCheck::Wrong, Some(&ok), false), PasswordVerdict::Refused { audit: None });
    }

    #[test]
    fn a_throttled_password_is_refused_before_anything_else() {
        let ok = account(false);
        for a in [None, Some(&ok)] {
            assert_eq!(
                judge_password(PasswordCheck::Throttled { retry_after: 4 }, a, true),
                PasswordVerdict::Throttled { retry_after: 4 }
            );
        }
    }

    #[test]
    fn a_right_password_leads_to_enrolment_a_session_or_the_second_step() {
        assert_eq!(after_password(false, true, false), AfterPassword::Enrol);
        assert_eq!(after_password(false, false, false), AfterPassword::SignedIn);
        // Remembering a browser never stands in for enrolment.
        assert_eq!(after_password(false, true, true), AfterPassword::Enrol);
        assert_eq!(after_password(true, false, true), AfterPassword::Remembered);
        assert_eq!(after_password(true, true, false), AfterPassword::SecondStep);
        assert_eq!(after_password(true, false, false), AfterPassword::SecondStep);
    }

    #[test]
    fn a_refused_proof_tells_only_throttling_and_locks_apart() {
        assert!(matches!(
            second_step_refusal(FactorError::Throttled { retry_after: 2 }),
            LoginError::Throttled { retry_after: 2 }
        ));
        assert!(matches!(second_step_refusal(FactorError::FactorLocked), LoginError::FactorLocked));
        assert!(matches!(second_step_refusal(FactorError::InvalidCode), LoginError::InvalidCode));
        assert!(matches!(second_step_refusal(FactorError::NotFound), LoginError::InvalidCode));
    }

    #[test]
    fn the_fifth_wrong_code_is_the_login_tokens_last() {
        assert!(!token_exhausted(4, 5));
        assert!(token_exhausted(5, 5));
    }
}
