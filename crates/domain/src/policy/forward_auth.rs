//! The forward-auth check: "may this request through the operator's proxy
//! pass?", from the rules (`access`) and the caller's session.
//!
//! This is the hottest path an operator has: every request of every
//! protected app comes through it, a page load being a burst of them (the
//! page, its scripts, images and XHR). A rule that needs no session (bypass,
//! deny) is answered without touching the store. Otherwise the session, its
//! account and allow-list come from the instance's session cache
//! (`sessions::cache`: read in one statement at most every few seconds per
//! session, last-seen written at most once a minute), which every sign-out,
//! revocation or disabled account evicts on every instance at once; the
//! account's organisation names are kept for `CACHE_SECS` (see
//! `forward_cache`). Decisions are not audited: a row per request would turn
//! every page view of every app into a write; refusals are traced instead.

use crate::audit::RequestContext;
use crate::error::SessionError;
use crate::policy::access::{Identity, Policy, Target};
use crate::policy::forward_cache;
pub use crate::policy::forward_cache::CACHE_SECS;
use crate::service::Twostep;
use crate::sessions::store::SessionKind;
use crate::sessions::store::SignedIn;
use crate::token::Token;

/// Who passed, for the `Remote-*` headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passed {
    pub email: String,
    /// Names of the account's organisations.
    pub groups: Vec<String>,
}

/// The answer to one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through; `None` when a `bypass` rule passed it without a session.
    Pass(Option<Passed>),
    /// Nobody (live) is signed in, or a rule naming subjects must know who asks.
    SignIn,
    /// Signed in with the password only where the rule asks for two
    /// factors, and the account has a second factor to prove.
    SecondFactor,
    /// The rule asks for two factors the account has not set up, or the
    /// session is an enrolment-only one (policy requires 2FA first).
    Enrol,
    /// A `deny` rule, or a signed-in subject the rules leave to `deny`.
    Forbidden,
}

impl Twostep {
    /// Decides one request. `token` is the session token the proxy passed
    /// on (the forward-auth cookie or a bearer token), if any.
    pub async fn forward_auth(
        &self,
        token: Option<&Token>,
        target: &Target,
        ctx: &RequestContext,
    ) -> Result<Verdict, SessionError> {
        let access = &self.settings.access;
        let first = access.decide(target, None);
        if !first.needs_identity {
            match first.policy {
                Policy::Bypass => return Ok(Verdict::Pass(None)),
                Policy::Deny => {
                    tracing::info!(host = %target.host, path = %target.path, "forward-auth: denied by rule");
                    return Ok(Verdict::Forbidden);
                }
                Policy::OneFactor | Policy::TwoFactor => {}
            }
        }
        let Some(token) = token else { return Ok(Verdict::SignIn) };
        let Some((me, groups)) = self.checked_session(token, ctx).await? else { return Ok(Verdict::SignIn) };
        let email = me.account.email.as_str().to_owned();
        let decision = if first.needs_identity {
            access.decide(target, Some(Identity { email: &email, orgs: &groups }))
        } else {
            first
        };
        let passed = || Verdict::Pass(Some(Passed { email: email.clone(), groups: groups.clone() }));
        let verdict = match decision.policy {
            Policy::Bypass => passed(),
            Policy::Deny => Verdict::Forbidden,
            _ if me.session.kind == SessionKind::Enrollment => Verdict::Enrol,
            Policy::OneFactor => passed(),
            Policy::TwoFactor if me.session.second_factor_at.is_some() => passed(),
            Policy::TwoFactor => self.missing_second_factor(&me).await?,
        };
        if verdict == Verdict::Forbidden {
            tracing::info!(host = %target.host, path = %target.path, account = %me.account.id.as_str(), "forward-auth: denied");
        }
        Ok(verdict)
    }

    /// The live session behind `token` (from the session cache, which a
    /// sign-out or revocation on any instance evicts at once) and its
    /// organisation names (kept for `CACHE_SECS`); `None`: nobody.
    async fn checked_session(
        &self,
        token: &Token,
        ctx: &RequestContext,
    ) -> Result<Option<(SignedIn, Vec<String>)>, SessionError> {
        let (me, allowlist) = match self.authenticate_with_allowlist(token).await {
            Ok(found) => found,
            Err(SessionError::Unauthenticated | SessionError::IpNotAllowed) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !crate::policy::ip_range::allows(&allowlist, &ctx.ip) {
            // The full path ends the session, audits and notifies the owner.
            return match self.authenticate_from(token, ctx).await {
                Err(SessionError::Internal(e)) => Err(SessionError::Internal(e)),
                _ => Ok(None),
            };
        }
        let now = self.now();
        let groups = if let Some(groups) = forward_cache::groups(&me.account.id, now) {
            groups
        } else {
            let groups = self.org_names_of(&me.account.id).await?;
            forward_cache::keep(&me.account.id, now, groups.clone());
            groups
        };
        Ok(Some((me, groups)))
    }

    /// The names of the account's organisations (`Remote-Groups`, `org:` subjects).
    pub async fn org_names_of(&self, account: &crate::ids::AccountId) -> Result<Vec<String>, crate::error::StoreError> {
        Ok(self.store.orgs_of(account).await?.into_iter().map(|(org, _)| org.name).collect())
    }

    /// A full session without a second factor: prove one if the account
    /// has one, else set one up.
    async fn missing_second_factor(&self, me: &SignedIn) -> Result<Verdict, SessionError> {
        let has_authenticator = !self.store.authenticators(&me.account.id).await?.is_empty();
        Ok(if has_authenticator { Verdict::SecondFactor } else { Verdict::Enrol })
    }
}
