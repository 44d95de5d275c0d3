//! Keys derived from the master key, and the two uses of them: sealing
//! secrets that must be shown or used again (AES-256-GCM) and keyed hashes
//! of secrets that are only ever looked up (HMAC-SHA-256). `security.md` §2.2.
//!
//! The master key lives outside the database (a key file or configuration),
//! so a stolen backup alone reveals no TOTP seed or recovery code. Each use
//! gets its own HKDF subkey, so no key serves two purposes. A sealed value is
//! `key id ‖ nonce ‖ ciphertext ‖ tag`; the key id lets a rotation
//! (`crate::rotation`) decrypt old rows while sealing new ones under the new
//! key. The associated data names the table, column and row, so a ciphertext
//! copied to another row does not decrypt.

mod columns;
mod keyring;
#[cfg(test)]
mod tests;

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub use columns::SealedColumn;
pub use keyring::{KeySource, Keyring};

use crate::ports::Rng;

const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;

/// Names a master key in every value sealed under it: the first bytes of a
/// subkey, so the id reveals nothing of the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    /// The id a sealed value names, if it is long enough to name one.
    pub fn of_sealed(sealed: &[u8]) -> Option<Self> {
        Some(Self(sealed.get(..KEY_ID_LEN)?.try_into().ok()?))
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE.decode(s.trim().as_bytes()).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

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

    pub fn id(&self) -> KeyId {
        let material = self.derive("twostep/key-id");
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&material[..KEY_ID_LEN]);
        KeyId(id)
    }

    /// The server's VAPID private key (Web Push, RFC 8292), derived so every
    /// instance agrees on it and it survives restarts without another secret
    /// to configure. The subscriptions companions hold are bound to it, so a
    /// key rotation stores it sealed first (`rotation`), and from then on it
    /// is read from there, not derived.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// Constant-time equality for secrets of any length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
