//! The provider's signing keys as stored: sealed under the master key,
//! generated on first use, rotated by `twostep oidc rotate-key` (the old
//! key stays published until every ID token it signed has expired).

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::keys::{self, Alg, KeyError};
use super::store::SigningKeyRecord;
use super::{ID_TOKEN_SECS, Oidc, OidcError};
use crate::crypto::{Keyring, SealedColumn};
use crate::time::Timestamp;

impl Oidc {
    /// Keys a relying party may still meet: the live ones and those retired
    /// less than an ID token's lifetime ago.
    fn published(keys: Vec<SigningKeyRecord>, now: Timestamp) -> Vec<SigningKeyRecord> {
        keys.into_iter().filter(|k| k.retired_at.is_none_or(|r| r.plus_secs(ID_TOKEN_SECS) > now)).collect()
    }

    /// The JWKS document. RS256 is always in it (generated if need be).
    pub async fn jwks(&self, ring: &Keyring) -> Result<serde_json::Value, OidcError> {
        self.current_key(Alg::Rs256, ring).await?;
        let now = self.clock.now();
        let keys: Vec<serde_json::Value> = Self::published(self.store.keys().await?, now)
            .iter()
            .filter_map(|k| serde_json::from_str(&k.public_jwk).ok())
            .collect();
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// The newest live key of `alg`, made and stored when there is none.
    /// Two instances may both make one at once: both are published, and
    /// the newest signs from then on.
    async fn current_key(&self, alg: Alg, ring: &Keyring) -> Result<SigningKeyRecord, OidcError> {
        let keys = self.store.keys().await?;
        if let Some(k) = keys.into_iter().find(|k| k.alg == alg.as_str() && k.retired_at.is_none()) {
            return Ok(k);
        }
        self.new_key(alg, ring).await
    }

    async fn new_key(&self, alg: Alg, ring: &Keyring) -> Result<SigningKeyRecord, OidcError> {
        let source = std::sync::Arc::clone(&self.rng);
        // RSA generation takes a while: off the async workers.
        let made = tokio::task::spawn_blocking(move || keys::generate(alg, source.as_ref()))
            .await
            .map_err(|e| KeyError::Generate(e.to_string()))??;
        let record = SigningKeyRecord {
            private_sealed: ring.seal(&made.private_der, SealedColumn::OidcKey.field(&made.kid), self.rng.as_ref()),
            kid: made.kid,
            alg: alg.as_str().to_owned(),
            public_jwk: made.public_jwk,
            created_at: self.clock.now(),
            retired_at: None,
        };
        self.store.insert_key(&record).await?;
        Ok(record)
    }

    /// Retires every live key and makes a new RS256 one (and one for each
    /// other algorithm a client uses). The thumbprints of the new keys.
    pub async fn rotate_keys(&self, ring: &Keyring) -> Result<Vec<String>, OidcError> {
        let mut algs = vec![Alg::Rs256];
        for c in self.store.clients().await? {
            if let Some(a) = Alg::parse(&c.id_token_alg)
                && !algs.contains(&a)
            {
                algs.push(a);
            }
        }
        self.store.retire_keys(self.clock.now()).await?;
        let mut kids = Vec::new();
        for alg in algs {
            kids.push(self.new_key(alg, ring).await?.kid);
        }
        Ok(kids)
    }

    pub(crate) async fn sign<T: Serialize>(&self, alg: Alg, claims: &T, ring: &Keyring) -> Result<String, OidcError> {
        let key = self.current_key(alg, ring).await?;
        let der = Zeroizing::new(
            ring.open(&key.private_sealed, SealedColumn::OidcKey.field(&key.kid))
                .map_err(|e| KeyError::Stored(e.to_string()))?,
        );
        Ok(keys::sign(alg, &key.kid, &der, claims)?)
    }

    /// The claims of an ID token we signed with a key still published.
    pub(crate) async fn verify_own<T: DeserializeOwned>(&self, token: &str) -> Result<Option<T>, OidcError> {
        let Some(kid) = keys::kid_of(token) else { return Ok(None) };
        let now = self.clock.now();
        let keys = Self::published(self.store.keys().await?, now);
        Ok(keys.iter().find(|k| k.kid == kid).and_then(|k| keys::verify_own(token, &k.public_jwk, &self.issuer)))
    }
}
