//! The security key as a sign-in method: the strongest, since a phishing
//! relay cannot replay its signature to us (the origin is signed).

use async_trait::async_trait;
use webauthn_rs::prelude::PublicKeyCredential;

use super::party::Checked;
use super::store::{CeremonyPurpose, CeremonyRecord};
use super::{CEREMONY_SECS, as_security_key, ceremony_id};
use crate::abuse::throttle::Scope;
use crate::audit::{AuditKind, AuditKindInfo, Category, RequestContext, Sentence};
use crate::error::FactorError;
use crate::factors::sent_code::SendError;
use crate::factors::sent_code::store::CodePurpose;
use crate::factors::{
    Begin, Binding, Challenge, ChallengeError, Factor, Kind, Method, MethodInfo, Proof, Proven, Proving,
};
use crate::ids::AccountId;
use crate::notify::notice::Notice;
use crate::service::Twostep;

pub const WEBAUTHN_KIND: &str = "webauthn";

const WEBAUTHN_INFO: MethodInfo = MethodInfo {
    in_sentence: "a security key or passkey",
    name: "webauthn",
    rank: 1,
    proving: Proving::Assertion,
    choice: "Use your security key",
    prompt: "Use your security key or passkey when your browser asks",
    field_label: "Your security key",
    send_label: "",
    resend_label: "",
    refused: "That security key wasn't accepted. Try again, or use another method.",
    amr: "hwk",
};

pub const WEBAUTHN: Method = Method::of(&WEBAUTHN_INFO);

pub(crate) struct WebauthnFactor;

fn purpose(p: CodePurpose) -> CeremonyPurpose {
    match p {
        CodePurpose::Reauth => CeremonyPurpose::Reauth,
        CodePurpose::Login | CodePurpose::PhoneVerify | CodePurpose::EmailVerify => CeremonyPurpose::Login,
    }
}

#[async_trait]
impl Factor for WebauthnFactor {
    fn methods(&self) -> &'static [Method] {
        &[WEBAUTHN]
    }

    fn kind(&self) -> Option<Kind> {
        Some(Kind { slug: WEBAUTHN_KIND, label: "security key or passkey", in_sentence: "a security key or passkey" })
    }

    /// Wrong assertions count like wrong codes (SEC-59), on the account's
    /// shared counter: a key has no guessable secret of its own to lock.
    fn scopes(&self, account: &AccountId) -> Vec<Scope> {
        vec![Scope::SecondFactor(account.clone())]
    }

    async fn begin(&self, cx: &Twostep, _method: Method, req: Begin<'_>) -> Result<Challenge, ChallengeError> {
        let keys: Vec<_> = cx
            .store
            .webauthn_credentials(req.account)
            .await
            .map_err(|_| SendError::MethodUnavailable)?
            .iter()
            .filter_map(|c| as_security_key(&c.credential))
            .collect();
        if keys.is_empty() {
            return Err(SendError::MethodUnavailable.into());
        }
        let rp = cx.relying_party().map_err(|_| SendError::MethodUnavailable)?;
        let (options, state) = rp.start_authentication(&keys).map_err(|_| SendError::MethodUnavailable)?;
        let now = cx.now();
        let ceremony = CeremonyRecord {
            id: ceremony_id(cx),
            account_id: Some(req.account.clone()),
            purpose: purpose(req.bound.purpose),
            binding: req.bound.id.to_owned(),
            kind: String::new(),
            name: String::new(),
            state,
            created_at: now,
            expires_at: now.plus_secs(CEREMONY_SECS),
        };
        cx.store.insert_ceremony(&ceremony).await.map_err(|_| SendError::MethodUnavailable)?;
        Ok(Challenge::WebAuthn { options })
    }

    /// Ceremonies are spent or dead after 5 minutes: nothing to keep.
    async fn sweep(&self, cx: &Twostep, now: crate::time::Timestamp) -> Result<(), crate::error::StoreError> {
        cx.store.purge_ceremonies(now).await.map(|_| ())
    }

    async fn verify(
        &self,
        cx: &Twostep,
        account: &AccountId,
        proof: Proof<'_>,
        bound: Binding<'_>,
        ctx: &RequestContext,
    ) -> Result<Option<Proven>, FactorError> {
        let Proof::Assertion { credential } = proof else { return Ok(None) };
        // Taken before anything else is read: whatever follows, this
        // challenge is spent (SEC-57).
        let now = cx.now();
        let Some(ceremony) = cx
            .store
            .take_bound_ceremony(purpose(bound.purpose), bound.id)
            .await?
            .filter(|c| c.account_id.as_ref() == Some(account) && now < c.expires_at)
        else {
            return Ok(None);
        };
        let Ok(response) = serde_json::from_str::<PublicKeyCredential>(credential) else { return Ok(None) };
        // The state lists only this account's keys: an assertion by any
        // other credential is refused by it (SEC-59).
        let result = match cx.relying_party()?.finish_authentication(&ceremony.state, &response)? {
            Checked::Good(r) => r,
            Checked::Regressed(r) => {
                if cx.sign_count_regressed(account, response.id.clone(), ctx).await {
                    return Ok(None);
                }
                r
            }
            Checked::Refused(e) => {
                tracing::info!(reason = %e, "webauthn assertion refused");
                return Ok(None);
            }
        };
        let stored = cx.store.webauthn_credentials(account).await?;
        let Some(mut record) =
            stored.into_iter().find(|c| c.credential_id.as_slice() == AsRef::<[u8]>::as_ref(result.cred_id()))
        else {
            return Ok(None);
        };
        let updated = as_security_key(&record.credential).and_then(|mut key| {
            key.update_credential(&result);
            serde_json::to_string(&key).ok()
        });
        record.after_use(updated, &result);
        cx.store.record_webauthn_use(&record, now).await?;
        Ok(Some(Proven::new(record.authenticator_id.to_string())))
    }
}

#[allow(non_upper_case_globals)]
impl AuditKind {
    /// A key signed with a count below the last one: flagged either way,
    /// refused only under the operator's setting.
    pub const WebauthnSignCountRegression: AuditKind = AuditKind::of(
        &AuditKindInfo::reworded("webauthn_sign_count_regression", Category::SignIns, |s| {
            Sentence::new(if s.success {
                "A security key's signature count went backwards; the sign-in was let through"
            } else {
                "A security key's signature count went backwards; refused"
            })
            .advice(
                "The key may have been copied. If you don't recognise this, remove the key and change your password.",
            )
        })
        .attention()
        .joins_sign_in()
        .note(90, |steps| {
            let mut notes = Vec::new();
            if steps.rows.iter().any(|r| !r.success) {
                notes.push("A security key that may have been copied was refused".to_owned());
            }
            if steps.rows.iter().any(|r| r.success) {
                notes.push("A security key that may have been copied was used".to_owned());
            }
            notes
        }),
    );
}

/// What the factor tells its owner by mail (see `Notice`).
impl Notice {
    /// A key's sign count went backwards; `refused` when the operator's
    /// setting refused the sign-in, else it was let through and flagged.
    pub(crate) fn security_key_cloned(refused: bool) -> Self {
        Notice::Factor {
            subject: if refused {
                "A security key that may have been copied was refused"
            } else {
                "A security key that may have been copied was used"
            },
            body: if refused {
                "A sign-in with one of your security keys was refused: the key's signature count went \
                 backwards, which happens when a copy of the key is used. If you have not restored or \
                 replaced the key, remove it on the Security page and change your password."
                    .to_owned()
            } else {
                "One of your security keys signed in, but its signature count went backwards, which happens \
                 when a copy of the key is used. If you have not restored or replaced the key, remove it on \
                 the Security page, change your password and check your sessions."
                    .to_owned()
            },
        }
    }
}
