//! Second factors. Each factor is a unit: one module that implements
//! [`Factor`] (how it is held, challenged, proven and locked), registered
//! once in [`registry`]. Sign-in, re-auth and the `methods` list ask the
//! registry; nothing outside this folder matches on a factor's kind.
//!
//! Adding a factor means: its module here with its `Factor` impl, its
//! `MethodInfo`s, its audit kinds (`impl AuditKind`) and its notices
//! (`impl Notice`, building `Notice::Factor`), its lines in
//! `registry`, its store trait and migrations, its routes and templates,
//! its tests.

mod added;
pub mod email;
mod entry;
pub mod phone;
pub mod push;
pub mod recovery;
pub mod registry;
pub mod sent_code;
pub mod store;
pub mod totp;
pub mod webauthn;

use async_trait::async_trait;

use crate::abuse::throttle::Scope;
use crate::audit::RequestContext;
use crate::error::FactorError;
use crate::factors::push::{PushError, PushStarted};
use crate::factors::sent_code::store::CodePurpose;
use crate::factors::sent_code::{SendError, SentCode};
use crate::ids::AccountId;
use crate::service::Twostep;
use crate::settings::Settings;

pub use entry::{LoginTry, Proven};

/// How a method's proof reaches us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proving {
    /// A code the person reads off something they hold (an app, a list).
    Typed,
    /// A code we send on request (text, call, e-mail).
    Sent,
    /// An approval given on another device; the proof is the challenge id.
    Approval,
    /// A key's signature over our challenge; the proof is its JSON.
    Assertion,
}

/// What a method is called and how it is offered: the factor's own words,
/// so no page has to know which factor it is showing.
#[derive(Debug)]
pub struct MethodInfo {
    /// The name in the API (`"totp"`).
    pub name: &'static str,
    /// Order at sign-in, lowest first: the strongest method is offered first
    /// and SMS/voice never lead (§2.8).
    pub rank: u8,
    pub proving: Proving,
    /// A link to switch to it: "Use your authenticator app".
    pub choice: &'static str,
    /// What the form asks for: "Enter the 6-digit code from your authenticator app".
    pub prompt: &'static str,
    /// How the security log names it in a sentence: "an authenticator app".
    pub in_sentence: &'static str,
    /// The field's label on the re-auth form.
    pub field_label: &'static str,
    /// For a sent code: the button that sends it ("Text me a code").
    pub send_label: &'static str,
    /// For a sent code: the button that sends another.
    pub resend_label: &'static str,
    /// What a wrong or used proof is told.
    pub refused: &'static str,
    /// How an OpenID Connect app is told it was used (RFC 8176 `amr`).
    pub amr: &'static str,
}

/// A way to prove the second factor, as named in the API (`"totp"`).
#[derive(Clone, Copy)]
pub struct Method(&'static MethodInfo);

impl Method {
    /// The method that still works when the others lock (§2.5).
    pub const UNLOCKING: Method = recovery::RECOVERY_CODE;
    /// The strongest method proven by a typed code: what a code form falls
    /// back to before it knows the account's (push, stronger still, needs
    /// no form).
    pub const STRONGEST: Method = totp::TOTP;

    pub const fn of(info: &'static MethodInfo) -> Self {
        Self(info)
    }

    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    /// A method this server knows, by its API name.
    pub fn parse(s: &str) -> Option<Self> {
        registry::METHODS.iter().copied().find(|m| m.as_str() == s)
    }

    pub fn info(self) -> &'static MethodInfo {
        self.0
    }

    /// Whether a code must be sent (and asked for) before it can be typed.
    pub fn sends_code(self) -> bool {
        self.0.proving == Proving::Sent
    }

    /// Whether the proof is an approval on another device.
    pub fn is_approval(self) -> bool {
        self.0.proving == Proving::Approval
    }

    /// The proof as presented in a form or JSON body's `code` field.
    pub fn proof(self, raw: &str) -> Proof<'_> {
        match self.0.proving {
            Proving::Approval => Proof::Approval { challenge_id: raw.trim() },
            Proving::Assertion => Proof::Assertion { credential: raw },
            Proving::Typed | Proving::Sent => Proof::Code(raw),
        }
    }
}

impl PartialEq for Method {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Method {}

impl std::fmt::Debug for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

/// What is presented to prove a factor: a typed value, so a factor whose
/// proof is not a code (a signed assertion) fits beside the others.
#[derive(Clone, Copy, Debug)]
pub enum Proof<'a> {
    Code(&'a str),
    Approval {
        challenge_id: &'a str,
    },
    /// A WebAuthn assertion, the browser's `PublicKeyCredential` as JSON.
    Assertion {
        credential: &'a str,
    },
}

/// What a sent code or a challenge is bound to: the sign-in's login token
/// or, for re-auth, the session (both as stored hashes).
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    pub purpose: CodePurpose,
    pub id: &'a str,
}

/// A challenge begun for a method.
#[derive(Debug)]
pub enum Challenge {
    /// A code went out by text, call or e-mail.
    Sent(SentCode),
    /// A push is waiting on the account's devices.
    Push(PushStarted),
    /// A key is to sign: the `navigator.credentials.get()` options.
    WebAuthn { options: serde_json::Value },
}

#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    Push(#[from] PushError),
}

/// What decides whether an account can use a factor's methods at all
/// (locks aside).
pub(crate) struct Holdings<'a> {
    /// Its authenticators' kinds.
    pub kinds: &'a [String],
    /// Whether its e-mail address is verified.
    pub email_verified: bool,
    pub settings: &'a Settings,
}

impl Holdings<'_> {
    pub fn has(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }
}

/// One second factor. Implementations are unit structs in their own
/// modules; they reach storage and the other services through `Twostep`.
#[async_trait]
pub(crate) trait Factor: Send + Sync {
    /// The methods it offers (a phone offers texts and calls).
    fn methods(&self) -> &'static [Method];

    /// The kind its authenticator rows carry, if it keeps them there.
    fn kind(&self) -> Option<Kind> {
        None
    }

    /// Whether an account holding `have` can use it: by default, whether
    /// it has a row of the factor's `kind`.
    fn held(&self, have: &Holdings<'_>) -> bool {
        self.kind().is_some_and(|k| have.has(k.slug))
    }

    /// Whether the e-mail's verification matters to `held` (it is read only then).
    fn needs_email_verified(&self) -> bool {
        false
    }

    /// The throttle counters a try is judged and counted in (§2.5); a
    /// lockable one that locks takes the factor off the list.
    fn scopes(&self, account: &AccountId) -> Vec<Scope>;

    /// Whether proving it also clears the other factors' locks (a recovery code).
    fn unlocks_others(&self) -> bool {
        false
    }

    /// Starts what must happen before a proof can be given.
    async fn begin(&self, _cx: &Twostep, _method: Method, _req: Begin<'_>) -> Result<Challenge, ChallengeError> {
        Err(SendError::MethodUnavailable.into())
    }

    /// Checks a proof. `Ok(None)` is wrong, replayed or unavailable alike.
    async fn verify(
        &self,
        cx: &Twostep,
        account: &AccountId,
        proof: Proof<'_>,
        bound: Binding<'_>,
        ctx: &RequestContext,
    ) -> Result<Option<Proven>, FactorError>;

    /// Where a sent code would go, masked, for a form to show.
    async fn destination(&self, _cx: &Twostep, _account: &AccountId) -> Result<Option<String>, FactorError> {
        Ok(None)
    }

    /// Deletes what it keeps only for a while (challenges, ceremonies) once
    /// past use; the sweeper worker calls it for every factor.
    async fn sweep(&self, _cx: &Twostep, _now: crate::time::Timestamp) -> Result<(), crate::error::StoreError> {
        Ok(())
    }
}

/// An authenticator row's kind, as its factor names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// Stored in the row (`"totp"`); never changes.
    pub slug: &'static str,
    /// How a list of an account's factors names it: "authenticator app".
    pub label: &'static str,
    /// How a sentence names one: "an authenticator app".
    pub in_sentence: &'static str,
}

/// The kind stored as `slug`, if a factor of this server keeps it.
pub fn kind(slug: &str) -> Option<Kind> {
    registry::standard().iter().filter_map(Factor::kind).find(|k| k.slug == slug)
}

/// How a list names an authenticator of kind `slug`: its factor's label,
/// or the slug itself for a kind no factor of this server knows.
pub fn kind_label(slug: &str) -> &str {
    kind(slug).map_or(slug, |k| k.label)
}

/// What `Factor::begin` is told.
pub(crate) struct Begin<'a> {
    pub account: &'a AccountId,
    pub bound: Binding<'a>,
    /// The sign-in's approximate place, when the operator's proxy tells it.
    pub place: Option<String>,
    pub ctx: &'a RequestContext,
}
