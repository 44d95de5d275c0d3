//! The throttles as the services use them: each operation on `Twostep`
//! hands over to `Throttles`, the narrow service that holds only the
//! counters and the clock.

use crate::abuse::throttle::{Admission, Counter, Scope, Verdict};
use crate::ids::AccountId;
use crate::service::Twostep;

impl Twostep {
    /// See `Throttles::admit`.
    pub(crate) async fn throttle_admit(&self, scopes: &[Scope]) -> Result<Admission, crate::error::StoreError> {
        self.throttles.admit(scopes).await
    }

    /// See `Throttles::admit_with`.
    pub(crate) async fn throttle_admit_with(
        &self,
        scopes: &[Scope],
        token: Option<crate::abuse::throttle::TokenTry<'_>>,
    ) -> Result<Admission, crate::error::StoreError> {
        self.throttles.admit_with(scopes, token).await
    }

    /// The verdict for one scope without counting anything (push raises
    /// are capped by their own table).
    pub(crate) async fn throttle_check(&self, scope: &Scope) -> Result<Verdict, crate::error::StoreError> {
        self.throttles.check(scope).await
    }

    /// The verdicts for `scopes` from counters already read (absent: none).
    pub(crate) fn counted(&self, scopes: &[Scope], found: &[(String, Counter)]) -> Vec<Verdict> {
        self.throttles.counted(scopes, found)
    }

    /// Counts a failure in each scope (one statement); the new counts in order.
    pub(crate) async fn throttle_fail_all(&self, scopes: &[Scope]) -> Result<Vec<i64>, crate::error::StoreError> {
        self.throttles.fail_all(scopes).await
    }

    /// Clears the scopes' counters, in one statement.
    pub(crate) async fn throttle_reset(&self, scopes: &[Scope]) -> Result<(), crate::error::StoreError> {
        self.throttles.reset(scopes).await
    }

    /// Whether any of `scopes` is locked, read in one statement.
    pub(crate) async fn any_locked(&self, scopes: &[Scope]) -> Result<bool, crate::error::StoreError> {
        Ok(self.throttles.verdicts(scopes).await?.contains(&Verdict::Locked))
    }

    /// Whether a code factor is locked, by its own counter or by the
    /// account's `second_factor` counter.
    pub(crate) async fn factor_locked(
        &self,
        factor: &Scope,
        account: &AccountId,
    ) -> Result<bool, crate::error::StoreError> {
        self.throttles.factor_locked(factor, account).await
    }
}
