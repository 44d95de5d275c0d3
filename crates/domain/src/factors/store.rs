//! What second factors need from storage: authenticators, enrolments,
//! recovery codes and the summary sign-in reads in one go.

use async_trait::async_trait;

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::ids::{AccountId, AuthenticatorId, EnrollmentId, RecoveryCodeId};

use crate::time::Timestamp;

/// What a right proof still has to write once it is accepted: the replay
/// guard, the throttle counters it clears and the audit rows that go with
/// it. Written in one transaction, together with what the proof was for (a
/// sign-in writes its session in the same one), and not at all when the
/// replay guard refuses.
#[derive(Clone, Debug, Default)]
pub struct ProofWrites {
    /// An authenticator code's time step, spent so it works once (SEC-21).
    pub step: Option<StepSpend>,
    /// The throttle counters (`Scope::key`) the proof clears.
    pub reset: Vec<String>,
    pub audit: Vec<AuditEntry>,
}

/// The replay guard's write: `authenticator`'s `last_step` becomes `step`
/// only if it is below it.
#[derive(Clone, Debug)]
pub struct StepSpend {
    pub authenticator: AuthenticatorId,
    pub step: i64,
}

#[derive(Clone, Debug)]
pub struct EnrollmentRecord {
    pub id: EnrollmentId,
    pub account_id: AccountId,
    pub secret_sealed: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct AuthenticatorRecord {
    pub id: AuthenticatorId,
    pub account_id: AccountId,
    /// The factor kind's slug (`"totp"`).
    pub kind: String,
    pub name: String,
    pub secret_sealed: Vec<u8>,
    /// The highest TOTP time step accepted so far; codes at or below it are
    /// replays (§2.1).
    pub last_step: i64,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

#[derive(Clone, Debug)]
pub struct RecoveryCodeRecord {
    pub id: RecoveryCodeId,
    pub account_id: AccountId,
    /// HMAC-SHA-256 of the normalised code under the lookup key.
    pub lookup: Vec<u8>,
    /// The code, sealed, so "Reveal codes" can show it again.
    pub code_sealed: Vec<u8>,
    pub position: i64,
    pub created_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

/// Result of confirming an enrolment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// The enrolment was gone (superseded, expired, or confirmed by a racing request).
    Gone,
    /// Added; `first` when it turned 2FA on (the recovery codes were stored).
    Added { first: bool },
}

/// Result of storing a verified phone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhoneOutcome {
    /// It turned 2FA on (the recovery codes were stored).
    pub first: bool,
    /// It replaced an earlier number.
    pub replaced: bool,
}

/// What `/me` and the sign-in method list need to know about an account's
/// factors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FactorSummary {
    /// The kinds of its authenticators (`"totp"`, `"phone"`), sorted, without repeats.
    pub kinds: Vec<String>,
    pub unused_recovery_codes: usize,
    /// The method the account asks to be offered first, if it chose one.
    pub preferred: Option<String>,
    /// The counters asked for that exist, by scope.
    pub counters: Vec<(String, crate::abuse::throttle::Counter)>,
}

#[async_trait]
pub trait FactorStore: Send + Sync {
    /// Stores a new enrolment and deletes the account's earlier ones.
    async fn replace_enrollment(&self, enrollment: &EnrollmentRecord) -> Result<(), StoreError>;
    async fn enrollment(&self, id: &EnrollmentId) -> Result<Option<EnrollmentRecord>, StoreError>;
    /// In one transaction: deletes the enrolment (must still exist), adds the
    /// authenticator, and stores `codes` only if it is the account's first.
    async fn confirm_enrollment(
        &self,
        enrollment: &EnrollmentId,
        authenticator: &AuthenticatorRecord,
        codes: &[RecoveryCodeRecord],
    ) -> Result<ConfirmOutcome, StoreError>;
    async fn authenticators(&self, account: &AccountId) -> Result<Vec<AuthenticatorRecord>, StoreError>;
    /// The kinds of the account's authenticators, its unused recovery codes
    /// (counted, no secrets read) and the throttle counters of `scopes`
    /// (absent ones left out), in one statement.
    async fn factor_summary(&self, account: &AccountId, scopes: &[String]) -> Result<FactorSummary, StoreError>;
    /// Sets (or with `None` clears) the method asked first at sign-in.
    async fn set_preferred_method(
        &self,
        account: &AccountId,
        method: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Writes a right proof's `writes` in one transaction. The replay guard
    /// goes first, as one atomic statement: false, and nothing written, when
    /// its step is already spent (true for exactly one caller per step).
    async fn commit_proof(&self, writes: &ProofWrites, now: Timestamp) -> Result<bool, StoreError>;
    /// Removes one authenticator; when it was the last, the recovery codes
    /// go too. Returns `None` if not found, else how many remain.
    async fn delete_authenticator(
        &self,
        account: &AccountId,
        id: &AuthenticatorId,
    ) -> Result<Option<usize>, StoreError>;
    /// In one transaction: replaces the account's phone authenticator (if
    /// any) with `phone`, and stores `codes` only if it is the account's
    /// first factor.
    async fn add_phone(
        &self,
        phone: &AuthenticatorRecord,
        codes: &[RecoveryCodeRecord],
    ) -> Result<PhoneOutcome, StoreError>;
    /// Removes every factor, enrolment and recovery code of the account.
    async fn delete_all_factors(&self, account: &AccountId) -> Result<(), StoreError>;
    async fn recovery_codes(&self, account: &AccountId) -> Result<Vec<RecoveryCodeRecord>, StoreError>;
    /// Replaces the account's set in one transaction.
    async fn replace_recovery_codes(&self, account: &AccountId, codes: &[RecoveryCodeRecord])
    -> Result<(), StoreError>;
    /// Marks a code used if it was unused; true for exactly one caller.
    async fn use_recovery_code(&self, id: &RecoveryCodeId, now: Timestamp) -> Result<bool, StoreError>;
}
