//! What the sign-in service asks of the other areas: the factors (through
//! the registry), the account's policy and remembered browsers.
//! `Twostep` answers over the whole domain; the unit tests give a fake.

use async_trait::async_trait;

use crate::abuse::throttle::TokenTry;
use crate::accounts::store::AccountRecord;
use crate::audit::RequestContext;
use crate::error::{FactorError, StoreError};
use crate::factors::store::ProofWrites;
use crate::factors::{Binding, Challenge, ChallengeError, LoginTry, Method, Proof};
use crate::ids::AccountId;
use crate::service::Twostep;

#[async_trait]
pub(crate) trait SignInPorts: Send + Sync {
    /// The account's second-step methods, strongest (or preferred) first,
    /// locked ones left out; empty when it has no second factor.
    async fn methods_of(&self, account: &AccountId) -> Result<Vec<Method>, StoreError>;
    /// Sends a code or raises a push for `method`.
    async fn begin_challenge(
        &self,
        account: &AccountId,
        method: Method,
        bound: Binding<'_>,
        place: Option<String>,
        ctx: &RequestContext,
    ) -> Result<Challenge, ChallengeError>;
    /// Checks a proof under the factor's throttles, counting the login
    /// token's `token` try with them in one atomic step. A right proof's
    /// writes (`Proven::writes`) are left to the caller.
    async fn prove(
        &self,
        account: &AccountId,
        method: Method,
        proof: Proof<'_>,
        bound: Binding<'_>,
        token: TokenTry<'_>,
        ctx: &RequestContext,
    ) -> Result<LoginTry, FactorError>;
    /// A right proof lost to a racing request that spent its step first.
    async fn proof_spent_first(&self, account: &AccountId, writes: &ProofWrites, ctx: &RequestContext);
    /// Whether `ip` may use the account (its IP allow-list, SEC-61). Asked
    /// for unknown e-mails too, so they cost the same reads.
    async fn address_allowed(&self, account: Option<&AccountId>, ip: &str) -> Result<bool, StoreError>;
    /// An organisation or the operator requires a second factor.
    async fn two_factor_required(&self, account: &AccountId) -> Result<bool, StoreError>;
    /// `token` is a live remembered browser of the account.
    async fn browser_remembered(&self, account: &AccountId, token: Option<&str>) -> Result<bool, StoreError>;
    /// A password step from outside the allow-list was refused: audit it
    /// and tell the owner (at most hourly).
    async fn refused_outside(&self, account: &AccountRecord, right_password: bool, ctx: &RequestContext);
    /// The operator's coming mandate, told once to an account without 2FA.
    async fn mandate_notice(&self, account: &AccountRecord, ctx: &RequestContext);
}

#[async_trait]
impl SignInPorts for Twostep {
    async fn methods_of(&self, account: &AccountId) -> Result<Vec<Method>, StoreError> {
        Twostep::methods_of(self, account).await
    }

    async fn begin_challenge(
        &self,
        account: &AccountId,
        method: Method,
        bound: Binding<'_>,
        place: Option<String>,
        ctx: &RequestContext,
    ) -> Result<Challenge, ChallengeError> {
        Twostep::begin_challenge(self, account, method, bound, place, ctx).await
    }

    async fn prove(
        &self,
        account: &AccountId,
        method: Method,
        proof: Proof<'_>,
        bound: Binding<'_>,
        token: TokenTry<'_>,
        ctx: &RequestContext,
    ) -> Result<LoginTry, FactorError> {
        Ok(self.check_factor(account, method, proof, bound, Some(token), ctx).await?.into())
    }

    async fn proof_spent_first(&self, account: &AccountId, writes: &ProofWrites, ctx: &RequestContext) {
        Twostep::proof_spent_first(self, account, writes, ctx).await;
    }

    async fn address_allowed(&self, account: Option<&AccountId>, ip: &str) -> Result<bool, StoreError> {
        let nobody = AccountId::from_stored(String::new());
        Twostep::address_allowed(self, account.unwrap_or(&nobody), ip).await
    }

    async fn two_factor_required(&self, account: &AccountId) -> Result<bool, StoreError> {
        Twostep::two_factor_required(self, account).await
    }

    async fn browser_remembered(&self, account: &AccountId, token: Option<&str>) -> Result<bool, StoreError> {
        Twostep::browser_remembered(self, account, token).await
    }

    async fn refused_outside(&self, account: &AccountRecord, right_password: bool, ctx: &RequestContext) {
        self.allowlists.refused_outside(account, right_password, ctx).await;
    }

    async fn mandate_notice(&self, account: &AccountRecord, ctx: &RequestContext) {
        self.notify_mandate_once(account, ctx).await;
    }
}
