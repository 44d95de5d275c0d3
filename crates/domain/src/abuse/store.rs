//! What the throttles need from storage: counters decided and counted in
//! one atomic step.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::AccountId;

use crate::time::Timestamp;

#[async_trait]
pub trait ThrottleStore: Send + Sync {
    async fn counter(&self, scope: &str) -> Result<Option<crate::abuse::throttle::Counter>, StoreError>;
    /// Several counters in one statement, by scope; absent ones are left out.
    async fn counters(&self, scopes: &[String]) -> Result<Vec<(String, crate::abuse::throttle::Counter)>, StoreError>;
    /// Adds one failure to each of several scopes in one atomic upsert (a
    /// window older than `window_secs` starts over at one); the new
    /// counts in the order of `scopes` (which must not repeat a scope).
    async fn record_failures(
        &self,
        scopes: &[String],
        now: Timestamp,
        window_secs: i64,
    ) -> Result<Vec<i64>, StoreError>;
    /// Judges and counts one attempt against several scopes as one atomic
    /// step on every instance: the counters are locked (an absent one
    /// reads as no failures), `judge` sees them in the order of `scopes`,
    /// and only when it answers `Allow` is each counted (a window older than
    /// its `window_secs` starts over at one; a scope listed twice is counted
    /// once). A refused attempt changes nothing. With `token`, the login
    /// token's try is counted in the same step (after the throttles admit
    /// it, while the token is live and below its `max_failures`); a token
    /// that is not rolls the whole attempt back (`TokenTried::Gone`).
    async fn admit(
        &self,
        scopes: &[(String, i64)],
        token: Option<crate::abuse::throttle::TokenTry<'_>>,
        now: Timestamp,
        judge: &(
             dyn for<'c> Fn(&'c [crate::abuse::throttle::Counter]) -> crate::abuse::throttle::Verdict + Send + Sync
         ),
    ) -> Result<crate::abuse::throttle::Admission, StoreError>;
    /// Counts one use of a capped, windowed allowance (invitations, sign-up
    /// attempts) in one atomic statement: the check against `cap` is in the
    /// upsert's `WHERE`, so concurrent callers on any instance can never
    /// together pass it. `Ok(None)` when taken; `Ok(Some(retry_after))`
    /// when the cap is reached in the current window.
    async fn take_allowance(
        &self,
        scope: &str,
        now: Timestamp,
        window_secs: i64,
        cap: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// Takes one counted attempt back (never below zero).
    async fn refund(&self, scope: &str) -> Result<(), StoreError>;
    /// Deletes several counters in one statement.
    async fn reset_counters(&self, scopes: &[String]) -> Result<(), StoreError>;
    /// Clears every counter of an account (admin unlock).
    async fn reset_counters_of(&self, account: &AccountId) -> Result<(), StoreError>;
}
