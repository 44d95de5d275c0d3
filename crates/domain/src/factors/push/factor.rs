//! Push as a sign-in method: approve on a paired companion device, with
//! number matching (§2.9). Offered before any sent code.

use async_trait::async_trait;

use super::PUSH_KIND;
use crate::abuse::throttle::Scope;
use crate::audit::{AuditEntry, AuditKind, AuditKindInfo, Category, Companion, RequestContext, Sentence};
use crate::error::FactorError;
use crate::factors::{
    Begin, Binding, Challenge, ChallengeError, Factor, Kind, Method, MethodInfo, Proof, Proven, Proving,
};
use crate::ids::AccountId;
use crate::notify::notice::Notice;
use crate::service::Twostep;

const PUSH_INFO: MethodInfo = MethodInfo {
    in_sentence: "a push approval",
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

    fn kind(&self) -> Option<Kind> {
        Some(Kind { slug: PUSH_KIND, label: "push device", in_sentence: "a push device" })
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

/// "… on Pixel 8", when the row names the companion.
fn on(what: &str, device: Option<&str>) -> String {
    device.map_or_else(|| what.to_owned(), |d| format!("{what} on {d}"))
}

#[allow(non_upper_case_globals)]
impl AuditKind {
    pub const PushPairingStarted: AuditKind = AuditKind::of(&AuditKindInfo::new(
        "push_pairing_started",
        Category::Devices,
        "Started pairing a companion device",
    ));
    pub const PushDeviceAdded: AuditKind = AuditKind::of(
        &AuditKindInfo::reworded("push_device_added", Category::Devices, |s| {
            Sentence::new(format!("Companion device paired: {}", s.details))
        })
        .names_factor(),
    );
    // Stored under a general name: companions were the first factor renamed.
    pub const PushDeviceRenamed: AuditKind = AuditKind::of(
        &AuditKindInfo::reworded("authenticator_renamed", Category::Devices, |s| {
            Sentence::new(format!("Companion device renamed to {}", s.details))
        })
        .names_factor(),
    );
    pub const PushSent: AuditKind = AuditKind::of(
        &AuditKindInfo::new("push_sent", Category::SignIns, "A sign-in request was sent to your companion devices")
            .joins_sign_in()
            .companion(Companion::Asks),
    );
    pub const PushApproved: AuditKind = AuditKind::of(
        &AuditKindInfo::reworded("push_approved", Category::SignIns, |s| {
            Sentence::new(on("A sign-in request was approved", s.device))
        })
        .joins_sign_in()
        .companion(Companion::Answers),
    );
    pub const PushDenied: AuditKind = AuditKind::of(
        &AuditKindInfo::reworded("push_denied", Category::SignIns, |s| {
            Sentence::new(on("A sign-in request was denied", s.device))
                .advice("If you denied it because it wasn't you, change your password now: whoever asked knows it.")
        })
        .attention()
        .joins_sign_in()
        .companion(Companion::Answers)
        .note(20, |steps| {
            let how = |r: &AuditEntry| if r.details == "wrong number" { "Wrong number picked" } else { "Push denied" };
            let on = |r: &AuditEntry| steps.factor_name(r).unwrap_or("a companion device").to_owned();
            steps.rows.iter().map(|r| format!("{} on {}", how(r), on(r))).collect()
        })
        .stops(20, "the push was denied", true),
    );
}

/// What the factor tells its owner by mail (see `Notice`).
impl Notice {
    /// A push sign-in request was denied on a companion device; `not_me`
    /// when the person denying said they had not tried to sign in.
    pub(crate) fn push_denied(device: &str, not_me: bool) -> Self {
        Notice::Factor {
            subject: if not_me {
                "Someone else tried to sign in to your account"
            } else {
                "A sign-in request was denied on your device"
            },
            body: if not_me {
                format!(
                    "A sign-in request for your account was denied on \"{device}\", saying it was not you. The \
                     person who asked knew your password: change it now, and check your sessions and \
                     authenticators on the Security page."
                )
            } else {
                format!(
                    "A sign-in request for your account was denied on \"{device}\". If you did not try to sign \
                     in, someone knows your password: change it."
                )
            },
        }
    }
}
