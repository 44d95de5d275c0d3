//! Keys derived from the master key, and the two uses of them: sealing
//! secrets that must be shown or used again (AES-256-GCM) and keyed hashes
//! of secrets that are only ever looked up (HMAC-SHA-256). `security.md` §2.2.
//!
//! The master key lives outside the database (a key file or configuration),
//! so a stolen backup alone reveals no TOTP seed or recovery code. Each use
//! gets its own HKDF subkey, so no key serves two purposes. A sealed value is
//! `key id ‖ nonce ‖ ciphertext ‖ tag`; the key id lets a later rotation
//! decrypt old rows while sealing new ones under the new key. The associated
//! data names the table, column and row, so a ciphertext copied to another
//! row does not decrypt.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ports::Rng;

const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;

#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn generate(rng: &dyn Rng) -> Self {
        let mut b = [0u8; 32];
        rng.fill(&mut b);
        Self(b)
    }

    /// The hex form written to the key file.
    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }

    /// 64 hex digits (any case), surrounding white space ignored.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE.decode(s.trim().as_bytes()).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The server's VAPID private key (Web Push, RFC 8292), derived so every
    /// instance agrees on it and it survives restarts without another secret
    /// to configure. The subscriptions companions hold are bound to it.
    pub fn vapid_seed(&self) -> [u8; 32] {
        self.derive("twostep/vapid")
    }

    fn derive(&self, purpose: &str) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(Some(b"twostep/v1"), &self.0);
        let mut out = [0u8; 32];
        // 32 bytes is always a valid HKDF-SHA256 output length.
        hk.expand(purpose.as_bytes(), &mut out).unwrap_or_default();
        out
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// Where a sealed value lives; bound into the ciphertext.
#[derive(Clone, Copy, Debug)]
pub struct SealedField<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub row_id: &'a str,
}

impl SealedField<'_> {
    fn associated_data(&self) -> Vec<u8> {
        format!("{}.{}:{}", self.table, self.column, self.row_id).into_bytes()
    }
}

/// What a keyed hash is for; each purpose has its own key.
#[derive(Clone, Copy, Debug)]
pub enum HashPurpose {
    RecoveryCodeLookup,
    Csrf,
    OneTimeCode,
    ThrottleKey,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed under a key this server does not have")]
    UnknownKey,
    #[error("sealed value failed authentication")]
    Forged,
}

/// The derived keys. One current sealing key for now; `open` already looks
/// the key up by id so rotation only adds keys.
pub struct Keyring {
    key_id: [u8; KEY_ID_LEN],
    seal: Aes256Gcm,
    recovery_lookup: [u8; 32],
    csrf: [u8; 32],
    one_time_code: [u8; 32],
    throttle: [u8; 32],
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring([redacted])")
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        self.recovery_lookup.zeroize();
        self.csrf.zeroize();
        self.one_time_code.zeroize();
        self.throttle.zeroize();
    }
}

impl Keyring {
    pub fn new(master: &MasterKey) -> Self {
        let id_material = master.derive("twostep/key-id");
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&id_material[..KEY_ID_LEN]);
        let mut seal_key = master.derive("twostep/seal/aes-256-gcm");
        let seal = Aes256Gcm::new(&seal_key.into());
        seal_key.zeroize();
        Self {
            key_id,
            seal,
            recovery_lookup: master.derive("twostep/hmac/recovery-code-lookup"),
            csrf: master.derive("twostep/hmac/csrf"),
            one_time_code: master.derive("twostep/hmac/one-time-code"),
            throttle: master.derive("twostep/hmac/throttle-key"),
        }
    }

    pub fn seal(&self, plaintext: &[u8], field: SealedField<'_>, rng: &dyn Rng) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce);
        let aad = field.associated_data();
        // Encryption with a valid key and nonce cannot fail for our sizes.
        let ct =
            self.seal.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad }).unwrap_or_default();
        let mut out = Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + ct.len());
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8], field: SealedField<'_>) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < KEY_ID_LEN + NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let (key_id, rest) = sealed.split_at(KEY_ID_LEN);
        if key_id != self.key_id {
            return Err(CryptoError::UnknownKey);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let aad = field.associated_data();
        self.seal.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad }).map_err(|_| CryptoError::Forged)
    }

    pub fn keyed_hash(&self, purpose: HashPurpose, parts: &[&[u8]]) -> [u8; 32] {
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
}

/// Constant-time equality for secrets of any length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::OsRng;

    fn field(row: &str) -> SealedField<'_> {
        SealedField { table: "authenticators", column: "secret", row_id: row }
    }

    #[test]
    fn sec24_seal_round_trips_and_binds_the_row() {
        let ring = Keyring::new(&MasterKey::generate(&OsRng));
        let sealed = ring.seal(b"seed bytes", field("a"), &OsRng);
        assert_eq!(ring.open(&sealed, field("a")).expect("opens"), b"seed bytes");
        // Moved to another row: refused.
        assert_eq!(ring.open(&sealed, field("b")), Err(CryptoError::Forged));
        assert!(!sealed.windows(10).any(|w| w == b"seed bytes"));
    }

    #[test]
    fn nonces_differ_and_tampering_is_detected() {
        let ring = Keyring::new(&MasterKey::generate(&OsRng));
        let a = ring.seal(b"x", field("a"), &OsRng);
        let b = ring.seal(b"x", field("a"), &OsRng);
        assert_ne!(a, b);
        let mut t = a.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert_eq!(ring.open(&t, field("a")), Err(CryptoError::Forged));
        assert_eq!(ring.open(&a[..10], field("a")), Err(CryptoError::Malformed));
    }

    #[test]
    fn another_master_key_cannot_open() {
        let a = Keyring::new(&MasterKey::generate(&OsRng));
        let b = Keyring::new(&MasterKey::generate(&OsRng));
        let sealed = a.seal(b"x", field("a"), &OsRng);
        assert_eq!(b.open(&sealed, field("a")), Err(CryptoError::UnknownKey));
    }

    #[test]
    fn keyed_hashes_are_separated_by_purpose_and_framing() {
        let ring = Keyring::new(&MasterKey::generate(&OsRng));
        let a = ring.keyed_hash(HashPurpose::Csrf, &[b"ab", b"c"]);
        assert_ne!(a, ring.keyed_hash(HashPurpose::Csrf, &[b"a", b"bc"]));
        assert_ne!(a, ring.keyed_hash(HashPurpose::RecoveryCodeLookup, &[b"ab", b"c"]));
        assert_eq!(a, ring.keyed_hash(HashPurpose::Csrf, &[b"ab", b"c"]));
    }

    #[test]
    fn master_key_hex_round_trip() {
        let k = MasterKey::generate(&OsRng);
        let back = MasterKey::from_hex(&k.to_hex().to_uppercase()).expect("hex");
        assert_eq!(back.to_hex(), k.to_hex());
        assert!(MasterKey::from_hex("abcd").is_none());
    }
}
