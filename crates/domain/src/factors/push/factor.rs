//! Push as a sign-in method: approve on a paired companion device, with
//! number matching (§2.9). Offered before any sent code.

use async_trait::async_trait;

use super::PUSH_KIND;
use crate::abuse::throttle::Scope;
use crate::audit::RequestContext;
use crate::error::FactorError;
use crate::factors::{
    Begin, Binding, Challenge, ChallengeError, Factor, Holdings, Method, MethodInfo, Proof, Proven, Proving,
};
use crate::ids::AccountId;
use crate::service::Twostep;

const PUSH_INFO: MethodInfo = MethodInfo {
    name: "push",
    // Asked first when held: one tap, and the number match resists
    // a relayed sign-in better than a typed code.
    rank: 5,
    proving: Proving::Approval,
    choice: "Approve on my phone (push)",
    prompt: "Approve the sign-in on your companion device",
    field_label: "The 6-digit code from your authenticator app",
    send_label: "",
    resend_label: "",
    refused: "That approval could not be used for this sign-in. Send another push.",
    amr: "pop",
};

pub const PUSH: Method = Method::of(&PUSH_INFO);

pub(crate) struct PushFactor;

#[async_trait]
impl Factor for PushFactor {
    fn methods(&self) -> &'static [Method] {
        &[PUSH]
    }

    fn held(&self, have: &Holdings<'_>) -> bool {
        have.has(PUSH_KIND)
    }

    /// It locks with the code factors: its only counter is `second_factor`.
    fn scopes(&self, account: &AccountId) -> Vec<Scope> {
        vec![Scope::SecondFactor(account.clone())]
    }

    async fn begin(&self, cx: &Twostep, _method: Method, req: Begin<'_>) -> Result<Challenge, ChallengeError> {
        let started = cx.raise_push(req.account, req.bound.id, req.place, req.ctx).await?;
        Ok(Challenge::Push(started))
    }

    /// Answered or expired challenges are kept a while for the device's
    /// history, then go.
    async fn sweep(&self, cx: &Twostep, now: crate::time::Timestamp) -> Result<(), crate::error::StoreError> {
        cx.store.purge_push(now.plus_secs(-super::KEEP_CHALLENGES_SECS)).await.map(|_| ())
    }

    /// The proof is the approved challenge's id, bound to the login token
    /// (sign-in) or the session (re-auth).
    async fn verify(
        &self,
        cx: &Twostep,
        account: &AccountId,
        proof: Proof<'_>,
        bound: Binding<'_>,
        _ctx: &RequestContext,
    ) -> Result<Option<Proven>, FactorError> {
        let Proof::Approval { challenge_id } = proof else { return Ok(None) };
        cx.use_push_approval(account, challenge_id, bound.id).await
    }
}
