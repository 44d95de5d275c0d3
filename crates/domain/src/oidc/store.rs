//! What the OpenID Connect provider needs from storage: its clients, its
//! signing keys, each account's pairwise-free subject, remembered consents,
//! and the codes and tokens it hands out (stored as SHA-256 only).
//!
//! Codes and refresh tokens are spent by one conditional statement each, so
//! two requests presenting the same one cannot both succeed, on one server
//! or on several sharing PostgreSQL.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::AccountId;
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRecord {
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the secret; `None` for a public client (PKCE only).
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub require_two_factor: bool,
    /// Only members of this organisation (its id) may sign in.
    pub org_id: Option<String>,
    pub skip_consent: bool,
    /// `RS256`, `ES256` or `EdDSA`: how this client's ID tokens are signed.
    pub id_token_alg: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The RFC 7638 thumbprint of the public key.
    pub kid: String,
    pub alg: String,
    /// The public JWK as published, JSON.
    pub public_jwk: String,
    /// The private key (DER), sealed under the master key.
    pub private_sealed: Vec<u8>,
    pub created_at: Timestamp,
    /// Replaced by a newer key at this instant; still published until the
    /// tokens it signed have expired.
    pub retired_at: Option<Timestamp>,
}

/// What one sign-in at a client granted: the family every code, access
/// token and refresh token descends from, revoked as one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRecord {
    pub id: String,
    pub client_id: String,
    pub account_id: AccountId,
    pub scope: String,
    pub nonce: Option<String>,
    pub auth_time: Timestamp,
    pub acr: String,
    /// Space-separated RFC 8176 values.
    pub amr: String,
    /// Space-separated organisation names (the `groups` claim).
    pub groups: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// The twostep session the person signed in with. The store turns it
    /// to `None` when that session ends (sign-out, revocation, a reset),
    /// and the grant's tokens end with it.
    pub session_id: Option<String>,
}

impl GrantRecord {
    /// Not revoked, and the session it came from still exists.
    pub fn is_live(&self) -> bool {
        self.revoked_at.is_none() && self.session_id.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeRecord {
    pub hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// The S256 challenge the verifier must match.
    pub code_challenge: String,
    pub expires_at: Timestamp,
    pub consumed_at: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }

    pub fn from_stored(s: &str) -> Self {
        if s == "refresh" { Self::Refresh } else { Self::Access }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub hash: String,
    pub kind: TokenKind,
    pub grant_id: String,
    pub client_id: String,
    pub account_id: AccountId,
    pub scope: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// A refresh token traded for a new one.
    pub used_at: Option<Timestamp>,
}

/// What an issuance uses up: spending it and storing what it buys are one
/// transaction, so the one request that spends it is the one that gets
/// tokens, and a replay that revokes the grant finds them there to revoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spend<'a> {
    Code(&'a str),
    Refresh(&'a str),
}

/// A live token with the grant it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveToken {
    pub token: TokenRecord,
    pub grant: GrantRecord,
}

#[async_trait]
pub trait OidcStore: Send + Sync {
    /// `StoreError::Conflict` when the id is taken.
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError>;
    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError>;
    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError>;
    /// Replaces everything but the id and creation time; false when absent.
    async fn update_client(&self, client: &ClientRecord) -> Result<bool, StoreError>;
    /// Removes the client with its grants, codes, tokens and consents.
    async fn delete_client(&self, id: &str) -> Result<bool, StoreError>;

    async fn insert_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    /// Every key, newest first.
    async fn keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Retires every live key; how many.
    async fn retire_keys(&self, at: Timestamp) -> Result<u64, StoreError>;

    /// The account's subject, storing `candidate` when it has none yet
    /// (the first writer wins, so every instance hands out the same one).
    async fn subject(&self, account: &AccountId, candidate: &str) -> Result<String, StoreError>;
    async fn account_of_subject(&self, sub: &str) -> Result<Option<AccountId>, StoreError>;

    /// The scope the account consented to for the client.
    async fn consent(&self, account: &AccountId, client: &str) -> Result<Option<String>, StoreError>;
    async fn save_consent(
        &self,
        account: &AccountId,
        client: &str,
        scope: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Stores the grant and its code in one transaction.
    async fn insert_grant_with_code(&self, grant: &GrantRecord, code: &CodeRecord) -> Result<(), StoreError>;
    /// A code as stored, spent or not (to tell a replay from a stranger).
    async fn code(&self, hash: &str) -> Result<Option<CodeRecord>, StoreError>;
    async fn grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError>;
    /// Revokes the grant and deletes every token of it; false when it was
    /// revoked already or is unknown.
    async fn revoke_grant(&self, id: &str, at: Timestamp) -> Result<bool, StoreError>;

    /// In one transaction: spends what the tokens are issued for (a code or
    /// a refresh token, by one conditional update: unspent and unexpired
    /// at `now`), then stores the tokens, only while the grant is not
    /// revoked. False, and nothing written, when either fails.
    async fn issue_tokens(
        &self,
        grant_id: &str,
        spend: Spend<'_>,
        now: Timestamp,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError>;
    /// A token that is unexpired and whose grant is not revoked.
    async fn live_token(&self, hash: &str, now: Timestamp) -> Result<Option<LiveToken>, StoreError>;
    /// Any token as stored (spent or expired), to tell a reuse.
    async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    async fn delete_token(&self, hash: &str) -> Result<bool, StoreError>;
    /// The clients the account consented to or holds live tokens of, with
    /// the earliest such instant, oldest first.
    async fn apps_of(&self, account: &AccountId, now: Timestamp) -> Result<Vec<(String, Timestamp)>, StoreError>;
    /// Forgets the consent and revokes every grant of the account at the
    /// client, in one transaction; how many grants it revoked.
    async fn forget_app(&self, account: &AccountId, client: &str, at: Timestamp) -> Result<u64, StoreError>;
    /// Drops codes and tokens expired before `before`.
    async fn sweep(&self, before: Timestamp) -> Result<u64, StoreError>;
}
