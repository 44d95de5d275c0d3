//! What security keys need from storage: their credentials, and the
//! ceremonies in flight (SEC-57).

use async_trait::async_trait;

use crate::error::StoreError;
use crate::factors::store::{AuthenticatorRecord, RecoveryCodeRecord};
use crate::ids::{AccountId, AuthenticatorId};
use crate::time::Timestamp;

/// A registered key: the authenticator row's companion.
#[derive(Clone, Debug)]
pub struct WebauthnCredentialRecord {
    pub authenticator_id: AuthenticatorId,
    pub account_id: AccountId,
    /// The key's own id for the credential; unique across accounts.
    pub credential_id: Vec<u8>,
    /// `"security_key"` or `"passkey"`, as registered.
    pub kind: String,
    /// webauthn-rs's JSON of the credential: public key, sign count, flags.
    pub credential: String,
    pub sign_count: i64,
    /// The key may be synced (a passkey in a password manager).
    pub backup_eligible: bool,
    /// It is synced now.
    pub backup_state: bool,
}

impl WebauthnCredentialRecord {
    /// The record after an accepted assertion: the key's counter and backup
    /// flags as it reported them, and its updated form when there is one.
    pub(crate) fn after_use(&mut self, key_json: Option<String>, result: &webauthn_rs::prelude::AuthenticationResult) {
        if let Some(json) = key_json {
            self.credential = json;
        }
        // Never lowered: after an accepted regression the copy's lower
        // count must not become the bar, or the original would be flagged.
        self.sign_count = self.sign_count.max(i64::from(result.counter()));
        self.backup_eligible = result.backup_eligible();
        self.backup_state = result.backup_state();
    }
}

/// What a ceremony is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CeremonyPurpose {
    Register,
    Login,
    Reauth,
    /// A sign-in with a passkey alone.
    Passkey,
}

impl CeremonyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::Reauth => "reauth",
            Self::Passkey => "passkey",
        }
    }
}

/// A ceremony begun and not yet finished.
#[derive(Clone, Debug)]
pub struct CeremonyRecord {
    pub id: String,
    /// `None` for a passkey sign-in, which names no account until the key answers.
    pub account_id: Option<AccountId>,
    pub purpose: CeremonyPurpose,
    /// The login token's or session's hash; empty for a registration.
    pub binding: String,
    /// For a registration: the kind and name asked for.
    pub kind: String,
    pub name: String,
    /// webauthn-rs's ceremony state, as JSON.
    pub state: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Result of adding a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddKeyOutcome {
    /// Added; `first` when it turned 2FA on (the recovery codes were stored).
    Added { first: bool },
    /// Its credential id is registered already (to this or another account).
    Taken,
}

#[async_trait]
pub trait WebauthnStore: Send + Sync {
    /// Stores a ceremony; a bound one replaces the earlier ones with the
    /// same purpose and binding, so only the latest prompt can finish.
    async fn insert_ceremony(&self, ceremony: &CeremonyRecord) -> Result<(), StoreError>;
    /// Deletes and returns a registration ceremony of the account, in one
    /// statement: true single use even across instances.
    async fn take_registration(&self, id: &str, account: &AccountId) -> Result<Option<CeremonyRecord>, StoreError>;
    /// Deletes and returns a passkey sign-in's ceremony, in one statement.
    async fn take_passkey_ceremony(&self, id: &str) -> Result<Option<CeremonyRecord>, StoreError>;
    /// The credential with this id, whoever's it is.
    async fn webauthn_credential(&self, credential_id: &[u8]) -> Result<Option<WebauthnCredentialRecord>, StoreError>;
    /// Deletes and returns the ceremony bound to `binding`, in one statement.
    async fn take_bound_ceremony(
        &self,
        purpose: CeremonyPurpose,
        binding: &str,
    ) -> Result<Option<CeremonyRecord>, StoreError>;
    /// In one transaction: adds the authenticator and its credential, and
    /// stores `codes` only if it is the account's first factor.
    async fn add_webauthn_credential(
        &self,
        authenticator: &AuthenticatorRecord,
        credential: &WebauthnCredentialRecord,
        codes: &[RecoveryCodeRecord],
    ) -> Result<AddKeyOutcome, StoreError>;
    async fn webauthn_credentials(&self, account: &AccountId) -> Result<Vec<WebauthnCredentialRecord>, StoreError>;
    /// After a good assertion: the credential's new state and the
    /// authenticator's last use.
    async fn record_webauthn_use(
        &self,
        credential: &WebauthnCredentialRecord,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Deletes ceremonies that expired before `before`.
    async fn purge_ceremonies(&self, before: Timestamp) -> Result<u64, StoreError>;
}
