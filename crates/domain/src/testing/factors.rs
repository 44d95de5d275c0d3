//! Which accounts hold a second factor: the one fact about factors that
//! organisations, administration and password resets ask. Only
//! `authenticators` and `delete_all_factors` answer.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::factors::store::{
    AuthenticatorRecord, ConfirmOutcome, EnrollmentRecord, FactorStore, FactorSummary, PhoneOutcome, ProofWrites,
    RecoveryCodeRecord,
};
use crate::ids::{AccountId, AuthenticatorId, EnrollmentId, RecoveryCodeId};
use crate::time::Timestamp;

#[derive(Default)]
pub struct Holders(Mutex<HashSet<String>>);

fn not_here() -> StoreError {
    StoreError::Backend("not kept by this fake".into())
}

impl Holders {
    /// Gives the account a second factor (or takes it away).
    pub fn set(&self, account: &AccountId, has: bool) {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if has {
            all.insert(account.as_str().to_owned());
        } else {
            all.remove(account.as_str());
        }
    }

    pub fn has(&self, account: &AccountId) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).contains(account.as_str())
    }
}

/// Only `authenticators` answers: one per account given a factor.
#[async_trait]
impl FactorStore for Holders {
    async fn authenticators(&self, account: &AccountId) -> Result<Vec<AuthenticatorRecord>, StoreError> {
        if !self.has(account) {
            return Ok(Vec::new());
        }
        Ok(vec![AuthenticatorRecord {
            id: AuthenticatorId::from_stored("auth1"),
            account_id: account.clone(),
            kind: "totp".into(),
            name: "app".into(),
            secret_sealed: Vec::new(),
            last_step: 0,
            created_at: Timestamp::from_secs(0),
            last_used_at: None,
        }])
    }
    async fn replace_enrollment(&self, _: &EnrollmentRecord) -> Result<(), StoreError> {
        Err(not_here())
    }
    async fn enrollment(&self, _: &EnrollmentId) -> Result<Option<EnrollmentRecord>, StoreError> {
        Err(not_here())
    }
    async fn confirm_enrollment(
        &self,
        _: &EnrollmentId,
        _: &AuthenticatorRecord,
        _: &[RecoveryCodeRecord],
    ) -> Result<ConfirmOutcome, StoreError> {
        Err(not_here())
    }
    async fn factor_summary(&self, _: &AccountId, _: &[String]) -> Result<FactorSummary, StoreError> {
        Err(not_here())
    }
    async fn set_preferred_method(&self, _: &AccountId, _: Option<&str>, _: Timestamp) -> Result<(), StoreError> {
        Err(not_here())
    }
    async fn commit_proof(&self, _: &ProofWrites, _: Timestamp) -> Result<bool, StoreError> {
        Err(not_here())
    }
    async fn delete_authenticator(&self, _: &AccountId, _: &AuthenticatorId) -> Result<Option<usize>, StoreError> {
        Err(not_here())
    }
    async fn add_phone(&self, _: &AuthenticatorRecord, _: &[RecoveryCodeRecord]) -> Result<PhoneOutcome, StoreError> {
        Err(not_here())
    }
    async fn delete_all_factors(&self, account: &AccountId) -> Result<(), StoreError> {
        self.set(account, false);
        Ok(())
    }
    async fn recovery_codes(&self, _: &AccountId) -> Result<Vec<RecoveryCodeRecord>, StoreError> {
        Err(not_here())
    }
    async fn replace_recovery_codes(&self, _: &AccountId, _: &[RecoveryCodeRecord]) -> Result<(), StoreError> {
        Err(not_here())
    }
    async fn use_recovery_code(&self, _: &RecoveryCodeId, _: Timestamp) -> Result<bool, StoreError> {
        Err(not_here())
    }
}
