//! Security keys and passkeys (WebAuthn) as a second factor: registration,
//! and the assertion that proves one at sign-in or re-auth (`security.md`
//! SEC-57..SEC-59).
//!
//! webauthn-rs does every check of a ceremony (type, challenge, origin,
//! rpIdHash, UP/UV, algorithm, attestation, signature, sign count); this
//! module keeps its state between the two halves, server-side and single
//! use, and keeps the credentials. Only public keys are stored: a key's
//! private half never leaves it.

mod attestation;
mod factor;
mod party;
mod passkey;
pub mod store;
#[cfg(test)]
mod tests;

pub use attestation::{AttestationRule, AttestationRuleError};
pub(crate) use factor::WebauthnFactor;
pub use factor::{WEBAUTHN, WEBAUTHN_KIND};
pub use party::{RelyingParty, localhost_origin, relying_party_for};
pub use passkey::PasskeyStarted;

use webauthn_rs::prelude::{RegisterPublicKeyCredential, SecurityKey};

use crate::audit::{AuditKind, RequestContext};
use crate::error::{FactorError, InternalError};
use crate::factors::added::Added;
use crate::factors::store::AuthenticatorRecord;
use crate::factors::totp::Confirmed;
use crate::factors::webauthn::store::{AddKeyOutcome, CeremonyPurpose, CeremonyRecord, WebauthnCredentialRecord};
use crate::ids::{AccountId, AuthenticatorId};
use crate::notify::notice::Notice;
use crate::service::{AuditEvent, Twostep};
use crate::sessions::SignedIn;

/// How long a ceremony may take (SEC-57).
pub const CEREMONY_SECS: i64 = 300;
/// The longest credential id a key may give (SEC-58).
const MAX_CREDENTIAL_ID: usize = 1023;
const MAX_NAME_CHARS: usize = 64;

/// What is being registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A hardware key used beside the password.
    SecurityKey,
    /// A discoverable credential with user verification.
    Passkey,
}

impl KeyKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "security_key" => Some(Self::SecurityKey),
            "passkey" => Some(Self::Passkey),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecurityKey => "security_key",
            Self::Passkey => "passkey",
        }
    }

    /// What a key is called when its owner gave no name.
    pub fn default_name(self) -> &'static str {
        match self {
            Self::SecurityKey => "Security key",
            Self::Passkey => "Passkey",
        }
    }
}

/// A registration begun: the browser's `navigator.credentials.create()`
/// options (`{"publicKey": …}`) and the id to finish it with.
#[derive(Debug)]
pub struct RegistrationStarted {
    pub id: String,
    pub options: serde_json::Value,
}

impl Twostep {
    pub async fn start_webauthn_registration(
        &self,
        me: &SignedIn,
        kind: KeyKind,
        name: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<RegistrationStarted, FactorError> {
        self.require_recent_auth(me).await?;
        let name = key_name(name, kind)?;
        let rp = self.relying_party()?;
        let existing = self.store.webauthn_credentials(&me.account.id).await?;
        let exclude = existing.iter().map(|c| c.credential_id.clone()).collect();
        let (options, state) = rp.start_registration(&me.account.id, me.account.email.as_str(), kind, exclude)?;
        let id = ceremony_id(self);
        let now = self.now();
        self.store
            .insert_ceremony(&CeremonyRecord {
                id: id.clone(),
                account_id: Some(me.account.id.clone()),
                purpose: CeremonyPurpose::Register,
                binding: String::new(),
                kind: kind.as_str().to_owned(),
                name,
                state,
                created_at: now,
                expires_at: now.plus_secs(CEREMONY_SECS),
            })
            .await?;
        self.audit(AuditEvent::user(AuditKind::TotpEnrollmentStarted, &me.account.id).details("webauthn"), ctx).await;
        Ok(RegistrationStarted { id, options })
    }

    /// Finishes a registration with the browser's answer. The ceremony is
    /// spent whatever the answer (SEC-57): a refused one starts again.
    pub async fn finish_webauthn_registration(
        &self,
        me: &SignedIn,
        registration: &str,
        credential: &serde_json::Value,
        ctx: &RequestContext,
    ) -> Result<Confirmed, FactorError> {
        self.require_recent_auth(me).await?;
        let now = self.now();
        let ceremony = self
            .store
            .take_registration(registration, &me.account.id)
            .await?
            .filter(|c| now < c.expires_at)
            .ok_or(FactorError::EnrollmentGone)?;
        let response: RegisterPublicKeyCredential =
            serde_json::from_value(credential.clone()).map_err(|_| FactorError::InvalidCredential)?;
        let kind = KeyKind::parse(&ceremony.kind).ok_or(FactorError::EnrollmentGone)?;
        let key = self.relying_party()?.finish_registration(kind, &ceremony.state, &response).inspect_err(|e| {
            tracing::info!(account = %me.account.id, error = %e, "security key registration refused");
        })?;
        if key.credential_id.len() > MAX_CREDENTIAL_ID {
            return Err(FactorError::InvalidCredential);
        }
        if key.backup_eligible {
            self.synced_key_allowed(me).await?;
        }
        let id = AuthenticatorId::generate(self.rng());
        let authenticator = AuthenticatorRecord {
            id: id.clone(),
            account_id: me.account.id.clone(),
            kind: WEBAUTHN_KIND.to_owned(),
            name: ceremony.name,
            // Nothing secret is held: the key keeps its private half.
            secret_sealed: Vec::new(),
            last_step: 0,
            created_at: now,
            last_used_at: None,
        };
        let record = WebauthnCredentialRecord {
            authenticator_id: id,
            account_id: me.account.id.clone(),
            credential_id: key.credential_id,
            kind: kind.as_str().to_owned(),
            credential: key.json,
            sign_count: key.sign_count,
            backup_eligible: key.backup_eligible,
            backup_state: key.backup_state,
        };
        let (codes, records) = self.new_recovery_set(&me.account.id);
        let first = match self.store.add_webauthn_credential(&authenticator, &record, &records).await? {
            AddKeyOutcome::Taken => return Err(FactorError::CredentialTaken),
            AddKeyOutcome::Added { first } => first,
        };
        let added = Added { authenticator, first, codes, kind: "webauthn", described_as: "the security key" };
        self.authenticator_added(me, added, ctx).await
    }

    /// The account's keys, for the list of authenticators.
    pub async fn webauthn_credentials(
        &self,
        account: &crate::ids::AccountId,
    ) -> Result<Vec<WebauthnCredentialRecord>, FactorError> {
        Ok(self.store.webauthn_credentials(account).await?)
    }

    pub(crate) fn relying_party(&self) -> Result<&RelyingParty, FactorError> {
        self.relying_party
            .as_ref()
            .map_err(|e| FactorError::Internal(InternalError(format!("webauthn relying party: {e}"))))
    }

    /// Whether the sign-in page offers passkeys: the operator allows
    /// password-less sign-in and the public URL can name a relying party.
    pub fn passkeys_offered(&self) -> bool {
        self.settings.webauthn_passkey_sign_in && self.relying_party.is_ok()
    }

    /// A backup-eligible credential may be copied to any device its
    /// provider syncs to: the operator, or any of the account's
    /// organisations, may want keys that stay on one device.
    async fn synced_key_allowed(&self, me: &SignedIn) -> Result<(), FactorError> {
        let by = if self.settings.webauthn_allow_synced {
            match self.store.orgs_refusing_synced_passkeys(&me.account.id).await?.first() {
                Some(org) => format!("by the organisation \"{}\"", org.name),
                None => return Ok(()),
            }
        } else {
            "on this server".to_owned()
        };
        tracing::info!(account = %me.account.id, "synced credential refused {by}");
        Err(FactorError::SyncedKeyRefused { by })
    }

    /// Whether a passkey alone may sign in (`webauthn.passkey_sign_in`).
    /// Off, the sign-in routes refuse before any ceremony begins.
    pub fn passkey_sign_in_enabled(&self) -> bool {
        self.settings.webauthn_passkey_sign_in
    }

    /// A key's sign count did not go up (SEC-59): a copy may be in use.
    /// Always audited and mailed; refused only when the operator says so,
    /// since some authenticators reset or do not keep a count honestly.
    /// Returns whether the assertion is refused.
    pub(super) async fn sign_count_regressed(&self, account: &AccountId, key: String, ctx: &RequestContext) -> bool {
        let refused = self.settings.webauthn_refuse_sign_count_regression;
        let event = AuditEvent::user(AuditKind::WebauthnSignCountRegression, account).factor(key);
        let event = if refused { event.failed().details("refused") } else { event.details("accepted; flagged") };
        self.audit(event, ctx).await;
        self.notify(account, Notice::security_key_cloned(refused), ctx).await;
        refused
    }
}

/// The relying party the settings describe, built once with the facade.
pub(crate) fn relying_party_of(settings: &crate::settings::Settings) -> Result<RelyingParty, String> {
    relying_party_for(&settings.public_url, settings.webauthn_rp_id.as_deref())
        .map(|rp| rp.demanding(settings.webauthn_attestation.as_ref()))
}

/// 128 random bits, base32: a ceremony's handle.
fn ceremony_id(cx: &Twostep) -> String {
    let mut bytes = [0u8; 16];
    cx.rng().fill(&mut bytes);
    data_encoding::BASE32_NOPAD.encode(&bytes).to_ascii_lowercase()
}

fn key_name(name: Option<&str>, kind: KeyKind) -> Result<String, FactorError> {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) if n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control) => {
            Err(FactorError::InvalidName)
        }
        Some(n) => Ok(n.to_owned()),
        None => Ok(kind.default_name().to_owned()),
    }
}

/// A registered key as stored.
struct NewKey {
    credential_id: Vec<u8>,
    json: String,
    sign_count: i64,
    backup_eligible: bool,
    backup_state: bool,
}

impl NewKey {
    fn of<T: serde::Serialize>(cred_id: &[u8], key: &T) -> Result<Self, FactorError> {
        let value = serde_json::to_value(key).map_err(|e| FactorError::Internal(InternalError(e.to_string())))?;
        let flag = |k: &str| value["cred"][k].as_bool().unwrap_or(false);
        Ok(Self {
            credential_id: cred_id.to_vec(),
            sign_count: value["cred"]["counter"].as_i64().unwrap_or(0),
            backup_eligible: flag("backup_eligible"),
            backup_state: flag("backup_state"),
            json: value.to_string(),
        })
    }
}

/// Both kinds are stored in the one shape webauthn-rs gives them
/// (`{"cred": …}`), so one sign-in prompt can offer all of an account's
/// keys and passkeys as security keys.
fn as_security_key(json: &str) -> Option<SecurityKey> {
    serde_json::from_str(json).ok()
}

impl Twostep {
    /// Renames any of the account's authenticators (a key, an app, a device).
    pub async fn rename_authenticator(
        &self,
        me: &SignedIn,
        id: &str,
        name: &str,
    ) -> Result<AuthenticatorRecord, FactorError> {
        if name.trim().is_empty() {
            return Err(FactorError::InvalidName);
        }
        let name = key_name(Some(name), KeyKind::SecurityKey)?;
        let id = AuthenticatorId::from_stored(id);
        if !self.store.rename_authenticator(&me.account.id, &id, &name).await? {
            return Err(FactorError::NotFound);
        }
        self.store.authenticators(&me.account.id).await?.into_iter().find(|a| a.id == id).ok_or(FactorError::NotFound)
    }
}
