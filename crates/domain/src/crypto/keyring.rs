//! The keys derived from every master key the server holds: the current one,
//! which seals and hashes everything new, and the retiring ones a rotation
//! still needs to read what was sealed before it (`crate::rotation`).
//!
//! The set can be replaced while the server runs (the key file changed), so
//! every instance starts sealing under a new key without a restart, and stops
//! accepting the old one when the rotation that retired it has finished.

use std::fmt;
use std::sync::{Arc, RwLock};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

use super::{CryptoError, HashPurpose, KEY_ID_LEN, KeyId, MasterKey, NONCE_LEN, SealedField, constant_time_eq};
use crate::ports::Rng;

/// Where the master keys come from, asked again when a value names a key
/// this instance does not hold yet: another instance may already seal under
/// a key this one has not loaded.
pub trait KeySource: Send + Sync {
    /// The master keys now, current first; `None` when they cannot be read
    /// or were read too recently to read again.
    fn reload(&self) -> Option<Vec<MasterKey>>;
}

/// The subkeys of one master key (HKDF, one per purpose).
struct Derived {
    id: KeyId,
    seal: Aes256Gcm,
    recovery_lookup: [u8; 32],
    csrf: [u8; 32],
    one_time_code: [u8; 32],
    throttle: [u8; 32],
}

impl Derived {
    fn new(master: &MasterKey) -> Self {
        let mut seal_key = master.derive("twostep/seal/aes-256-gcm");
        let seal = Aes256Gcm::new(&seal_key.into());
        seal_key.zeroize();
        Self {
            id: master.id(),
            seal,
            recovery_lookup: master.derive("twostep/hmac/recovery-code-lookup"),
            csrf: master.derive("twostep/hmac/csrf"),
            one_time_code: master.derive("twostep/hmac/one-time-code"),
            throttle: master.derive("twostep/hmac/throttle-key"),
        }
    }

    fn hash(&self, purpose: HashPurpose, parts: &[&[u8]]) -> [u8; 32] {
        let key = match purpose {
            HashPurpose::RecoveryCodeLookup => &self.recovery_lookup,
            HashPurpose::Csrf => &self.csrf,
            HashPurpose::OneTimeCode => &self.one_time_code,
            HashPurpose::ThrottleKey => &self.throttle,
        };
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        for p in parts {
            // Length-prefix each part so ("ab","c") and ("a","bc") differ.
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    fn open(&self, nonce: &[u8], ct: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.seal.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad }).map_err(|_| CryptoError::Forged)
    }
}

impl Drop for Derived {
    fn drop(&mut self) {
        self.recovery_lookup.zeroize();
        self.csrf.zeroize();
        self.one_time_code.zeroize();
        self.throttle.zeroize();
    }
}

struct KeySet {
    current: Derived,
    retiring: Vec<Derived>,
}

impl KeySet {
    fn new(current: &MasterKey, retiring: &[MasterKey]) -> Self {
        let current = Derived::new(current);
        let retiring = retiring.iter().map(Derived::new).filter(|d| d.id != current.id).collect();
        Self { current, retiring }
    }

    fn by_id(&self, id: &[u8]) -> Option<&Derived> {
        std::iter::once(&self.current).chain(&self.retiring).find(|d| d.id.0 == id)
    }

    fn all(&self) -> impl Iterator<Item = &Derived> {
        std::iter::once(&self.current).chain(&self.retiring)
    }
}

pub struct Keyring {
    set: RwLock<Arc<KeySet>>,
    source: Option<Arc<dyn KeySource>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring([redacted])")
    }
}

impl Keyring {
    pub fn new(master: &MasterKey) -> Self {
        Self::with_keys(master, &[])
    }

    /// `current` seals and hashes; `retiring` only opens and verifies.
    pub fn with_keys(current: &MasterKey, retiring: &[MasterKey]) -> Self {
        Self { set: RwLock::new(Arc::new(KeySet::new(current, retiring))), source: None }
    }

    #[must_use]
    pub fn with_source(mut self, source: Arc<dyn KeySource>) -> Self {
        self.source = Some(source);
        self
    }

    /// Takes the keys as they are now (current first). An empty list
    /// changes nothing: a server never runs without a key.
    pub fn replace(&self, keys: &[MasterKey]) {
        let Some((current, retiring)) = keys.split_first() else { return };
        let next = Arc::new(KeySet::new(current, retiring));
        // A panic while holding the lock cannot leave the set half-written:
        // it is swapped whole, so a poisoned lock is still sound.
        *self.set.write().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
    }

    /// Reads the key source again, if there is one; true when it answered.
    pub fn reload(&self) -> bool {
        match self.source.as_ref().and_then(|s| s.reload()) {
            Some(keys) if !keys.is_empty() => {
                self.replace(&keys);
                true
            }
            _ => false,
        }
    }

    fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.set.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub fn current_id(&self) -> KeyId {
        self.keys().current.id
    }

    /// Every key held, current first.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.keys().all().map(|d| d.id).collect()
    }

    pub fn seal(&self, plaintext: &[u8], field: SealedField<'_>, rng: &dyn Rng) -> Vec<u8> {
        let keys = self.keys();
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce);
        let aad = field.associated_data();
        // Encryption with a valid key and nonce cannot fail for our sizes.
        let ct = keys
            .current
            .seal
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .unwrap_or_default();
        let mut out = Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + ct.len());
        out.extend_from_slice(&keys.current.id.0);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8], field: SealedField<'_>) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < KEY_ID_LEN + NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let (key_id, rest) = sealed.split_at(KEY_ID_LEN);
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let aad = field.associated_data();
        let keys = self.keys();
        if let Some(key) = keys.by_id(key_id) {
            return key.open(nonce, ct, &aad);
        }
        // Sealed by an instance that already holds a newer key.
        if self.reload()
            && let Some(key) = self.keys().by_id(key_id)
        {
            return key.open(nonce, ct, &aad);
        }
        Err(CryptoError::UnknownKey)
    }

    /// A keyed hash under the current key: what gets stored or sent.
    pub fn keyed_hash(&self, purpose: HashPurpose, parts: &[&[u8]]) -> [u8; 32] {
        self.keys().current.hash(purpose, parts)
    }

    /// The hash under every key held, current first: what a stored or
    /// presented hash is checked against while a rotation is under way.
    pub fn keyed_hash_candidates(&self, purpose: HashPurpose, parts: &[&[u8]]) -> Vec<[u8; 32]> {
        self.keys().all().map(|d| d.hash(purpose, parts)).collect()
    }

    /// Whether `given` is the hash of `parts` under any key held, compared
    /// in constant time against every candidate without stopping early.
    pub fn verify_keyed_hash(&self, purpose: HashPurpose, parts: &[&[u8]], given: &[u8]) -> bool {
        self.keyed_hash_candidates(purpose, parts)
            .iter()
            .fold(false, |found, candidate| constant_time_eq(candidate, given) | found)
    }
}
