//! What the provider needs to know about a signed-in browser, read through
//! `Twostep`'s public operations: how and when the person proved who they
//! are, which organisations they belong to, and whether a rule demands two
//! factors of them.

use crate::audit::AuditKind;
use crate::ids::AccountId;
use crate::service::Twostep;
use crate::sessions::store::{SessionKind, SignedIn};
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(clippy::struct_excessive_bools, reason = "independent facts, each read by one rule")]
pub struct SessionFacts {
    pub account_id: AccountId,
    /// The session's stored id: the grant is bound to it.
    pub session_id: String,
    /// An enrolment-only session: policy demands a factor the account lacks.
    pub enrolling: bool,
    /// When the person last proved the password here (OIDC `auth_time`).
    pub auth_time: Timestamp,
    pub password: bool,
    /// The method (by its sign-in name) that proved the second factor, when
    /// one was proven in this session.
    pub second_factor: Option<String>,
    /// (id, name) of each organisation the account belongs to.
    pub orgs: Vec<(String, String)>,
    /// An organisation of the account or the operator requires 2FA.
    pub policy_requires_two_factor: bool,
    /// The account has a second factor it could prove (for step-up).
    pub has_two_factor: bool,
}

impl SessionFacts {
    pub fn groups(&self) -> String {
        self.orgs.iter().map(|(_, n)| n.replace(' ', "_")).collect::<Vec<_>>().join(" ")
    }
}

/// The method a second-factor proof at `at` used, from the account's own
/// security log: a sign-in or re-auth entry records it as `method NAME`.
/// A passkey sign-in is recorded as `passkey; two factors`.
fn method_proven(log: &[crate::audit::AuditEntry], since: Timestamp, at: Timestamp) -> Option<String> {
    log.iter()
        .filter(|e| e.success && [AuditKind::SignInSucceeded, AuditKind::Reauth].iter().any(|k| e.kind == k.as_str()))
        .filter(|e| e.at >= since && e.at.secs() <= at.secs() + 5)
        .find_map(|e| {
            if e.details.starts_with("passkey") {
                return Some(super::rules::PASSKEY.to_owned());
            }
            e.details.strip_prefix("method ").map(|m| m.split([';', ' ']).next().unwrap_or(m).to_owned())
        })
}

impl super::Oidc {
    pub async fn facts(&self, twostep: &Twostep, me: &SignedIn) -> Result<SessionFacts, crate::error::StoreError> {
        let s = &me.session;
        let second_factor = match s.second_factor_at {
            Some(at) => {
                // Newest first; a proof is never older than its session.
                let log: Vec<_> =
                    twostep.security_log(me, 50, None).await.unwrap_or_default().into_iter().map(|(e, _)| e).collect();
                Some(method_proven(&log, s.created_at, at).unwrap_or_else(|| "otp".to_owned()))
            }
            None => None,
        };
        let orgs = twostep
            .orgs()
            .orgs_of(me)
            .await
            .map(|v| v.into_iter().map(|(o, _)| (o.id, o.name)).collect())
            .unwrap_or_default();
        let has_two_factor = !twostep.methods_of(&me.account.id).await?.is_empty();
        Ok(SessionFacts {
            account_id: me.account.id.clone(),
            session_id: me.session.id.as_str().to_owned(),
            enrolling: s.kind == SessionKind::Enrollment,
            auth_time: s.password_at.unwrap_or(s.created_at),
            // A passkey session holds both proofs but no password was typed.
            password: s.password_at.is_some() && second_factor.as_deref() != Some(super::rules::PASSKEY),
            second_factor,
            orgs,
            policy_requires_two_factor: twostep.two_factor_required(&me.account.id).await?,
            has_two_factor,
        })
    }
}
