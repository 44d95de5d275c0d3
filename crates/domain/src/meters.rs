//! The operator's counters (issue 19): what the rules decided, counted where
//! they decide it, through the `metrics` facade. Without an installed
//! recorder (the command line, the tests' in-process servers) every call is
//! a no-op; `twostep serve` with `metrics_listen` installs one.
//!
//! Every label value is a `&'static str` taken from a fixed set (an enum
//! here, a `Method`'s or `Channel`'s name, a throttle `Scope`'s kind, a
//! provider's name): none can carry an account id, an e-mail, a phone
//! number, an address or a token, and the number of series stays bounded
//! whatever clients send.

use crate::factors::Method;

/// Every metric the domain emits, with its help text, for the exporter to
/// describe once it is installed.
pub const DESCRIPTIONS: &[(&str, &str)] = &[
    (SIGN_INS, "Sign-in requests by how they ended and the method they used"),
    (SECOND_FACTOR_CHECKS, "Second-factor proofs checked, at sign-in and re-auth, by method and result"),
    (THROTTLE_REFUSALS, "Attempts refused by a throttle or cap, by the kind of scope that refused"),
    (LOCKS, "Counters that reached the lock (100 failures), by the kind of scope"),
    (SENDS, "Outbox delivery tries by channel, provider and result"),
    (PUSH_CHALLENGES, "Push challenges by outcome"),
];

const SIGN_INS: &str = "twostep_sign_ins_total";
const SECOND_FACTOR_CHECKS: &str = "twostep_second_factor_checks_total";
const THROTTLE_REFUSALS: &str = "twostep_throttle_refusals_total";
const LOCKS: &str = "twostep_locks_total";
const SENDS: &str = "twostep_sends_total";
const PUSH_CHALLENGES: &str = "twostep_push_challenges_total";

/// How one sign-in request (`login` or `verify_login`) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignInResult {
    /// A full session.
    Success,
    /// The password was right; a second factor is asked for next.
    SecondFactorRequired,
    /// The password was right; the session may only set up a factor.
    EnrollmentRequired,
    /// Wrong password, unknown e-mail or disabled account (one answer to
    /// the client, §2.12, and one here: the split is in the audit log).
    BadPassword,
    /// A wrong, used or unapproved second-factor proof.
    BadCode,
    /// Refused unevaluated while a counter backs off.
    Throttled,
    /// Refused because the method is locked.
    Locked,
    /// The login token was spent, expired or worn out by wrong codes.
    Expired,
    /// From outside the account's IP allow-list (SEC-61).
    IpNotAllowed,
}

impl SignInResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::SecondFactorRequired => "second_factor_required",
            Self::EnrollmentRequired => "enrollment_required",
            Self::BadPassword => "bad_password",
            Self::BadCode => "bad_code",
            Self::Throttled => "throttled",
            Self::Locked => "locked",
            Self::Expired => "expired",
            Self::IpNotAllowed => "ip_not_allowed",
        }
    }
}

/// What a sign-in was proven with: the password alone, the password on a
/// remembered browser, or a second factor's method.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SignInMethod {
    Password,
    RememberedBrowser,
    Factor(Method),
}

impl SignInMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::RememberedBrowser => "remembered_browser",
            Self::Factor(m) => m.as_str(),
        }
    }
}

pub(crate) fn sign_in(result: SignInResult, method: SignInMethod) {
    metrics::counter!(SIGN_INS, "result" => result.as_str(), "method" => method.as_str()).increment(1);
}

/// How one second-factor proof fared in `prove_second_factor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CheckResult {
    Success,
    BadCode,
    Throttled,
    Locked,
}

impl CheckResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::BadCode => "bad_code",
            Self::Throttled => "throttled",
            Self::Locked => "locked",
        }
    }
}

pub(crate) fn second_factor_check(method: Method, result: CheckResult) {
    metrics::counter!(SECOND_FACTOR_CHECKS, "method" => method.as_str(), "result" => result.as_str()).increment(1);
}

/// Refusals by caps that are not a throttle `Scope` (whose kinds come from
/// `Scope::kind`).
pub(crate) mod cap {
    /// §2.9's push fatigue caps.
    pub const PUSH_FATIGUE: &str = "push_fatigue";
    /// Cooldown and send caps on sent codes (§2.8).
    pub const CODE_SEND: &str = "code_send";
    /// Sign-ups per source address or per e-mail (SEC-36).
    pub const SIGNUP: &str = "signup";
    /// Password-reset mails per address (SEC-36).
    pub const RESET_MAIL: &str = "reset_mail";
    /// Organisation invitations per owner and hour.
    pub const INVITATION: &str = "invitation";
    /// Passkey sign-ins begun per source address and minute.
    pub const PASSKEY_START: &str = "passkey_start";
}

/// One attempt refused by the throttle scope or cap of kind `scope`.
pub(crate) fn throttle_refusal(scope: &'static str) {
    metrics::counter!(THROTTLE_REFUSALS, "scope" => scope).increment(1);
}

/// A lockable counter of kind `scope` reached the lock.
pub(crate) fn lock(scope: &'static str) {
    metrics::counter!(LOCKS, "scope" => scope).increment(1);
}

/// How one delivery try ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendResult {
    Sent,
    /// A transient failure; the message will be tried again.
    Retry,
    /// The provider refused for good, or retries ran out.
    Failed,
    /// The message expired before it could go (not tried).
    Expired,
    /// No provider for its channel (not tried).
    NoProvider,
    /// The payload could not be opened (not tried).
    Unreadable,
}

impl SendResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Retry => "retry",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::NoProvider => "no_provider",
            Self::Unreadable => "unreadable",
        }
    }
}

pub(crate) fn send(channel: crate::notify::store::Channel, provider: &'static str, result: SendResult) {
    metrics::counter!(SENDS, "channel" => channel.as_str(), "provider" => provider, "result" => result.as_str())
        .increment(1);
}

/// What happened to a push challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PushOutcome {
    /// Raised and sent to the account's devices.
    Raised,
    /// Not raised: the fatigue caps or the throttle refused it.
    Refused,
    Approved,
    Denied,
    /// Approved with the wrong number, so denied (§2.9).
    WrongNumber,
    /// Answered after it had expired.
    Expired,
    /// An approval turned into a session or a re-auth.
    Used,
}

impl PushOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Refused => "refused",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::WrongNumber => "wrong_number",
            Self::Expired => "expired",
            Self::Used => "used",
        }
    }
}

pub(crate) fn push_challenge(outcome: PushOutcome) {
    metrics::counter!(PUSH_CHALLENGES, "outcome" => outcome.as_str()).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_label_values_are_prometheus_safe_snake_case() {
        let safe = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        for (name, help) in DESCRIPTIONS {
            assert!(safe(name) && name.starts_with("twostep_") && name.ends_with("_total"), "{name}");
            assert!(!help.is_empty());
        }
        let results = [
            SignInResult::Success,
            SignInResult::SecondFactorRequired,
            SignInResult::EnrollmentRequired,
            SignInResult::BadPassword,
            SignInResult::BadCode,
            SignInResult::Throttled,
            SignInResult::Locked,
            SignInResult::Expired,
            SignInResult::IpNotAllowed,
        ];
        let mut values: Vec<&str> = results.map(SignInResult::as_str).to_vec();
        values.extend([SignInMethod::Password.as_str(), SignInMethod::RememberedBrowser.as_str()]);
        values.extend(crate::factors::registry::METHODS.iter().map(|m| SignInMethod::Factor(*m).as_str()));
        values.extend(
            [CheckResult::Success, CheckResult::BadCode, CheckResult::Throttled, CheckResult::Locked]
                .map(CheckResult::as_str),
        );
        values.extend([cap::PUSH_FATIGUE, cap::CODE_SEND, cap::SIGNUP, cap::RESET_MAIL, cap::INVITATION]);
        values.extend(
            [
                SendResult::Sent,
                SendResult::Retry,
                SendResult::Failed,
                SendResult::Expired,
                SendResult::NoProvider,
                SendResult::Unreadable,
            ]
            .map(SendResult::as_str),
        );
        values.extend(
            [
                PushOutcome::Raised,
                PushOutcome::Refused,
                PushOutcome::Approved,
                PushOutcome::Denied,
                PushOutcome::WrongNumber,
                PushOutcome::Expired,
                PushOutcome::Used,
            ]
            .map(PushOutcome::as_str),
        );
        for v in values {
            assert!(safe(v), "{v:?}");
        }
    }
}
