//! Bearer secrets: session tokens and login tokens.
//!
//! 32 bytes from the CSPRNG (256 bits), handed out once as URL-safe Base64
//! and stored only as their SHA-256, so a database reader cannot use them
//! (§2.2). Lookup is by hash, which makes the comparison independent of the
//! secret's bytes.

use std::fmt;

use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ports::Rng;

#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Token(String);

impl Token {
    pub fn generate(rng: &dyn Rng) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes);
        let t = Self(BASE64URL_NOPAD.encode(&bytes));
        bytes.zeroize();
        t
    }

    /// A token presented by a client. Anything is accepted: an unknown token
    /// simply finds no row.
    pub fn presented(s: &str) -> Self {
        Self(s.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored form.
    pub fn hash(&self) -> TokenHash {
        TokenHash(HEXLOWER.encode(&Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([redacted])")
    }
}

/// SHA-256 of a token, hex: the primary key of sessions and login tokens.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn from_stored(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to correlate log lines, and reveals nothing usable.
        write!(f, "TokenHash({}…)", &self.0[..self.0.len().min(8)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::OsRng;
    use std::collections::HashSet;

    #[test]
    fn sec49_tokens_are_256_bit_and_distinct() {
        let tokens: HashSet<String> = (0..1000).map(|_| Token::generate(&OsRng).expose().to_owned()).collect();
        assert_eq!(tokens.len(), 1000);
        assert!(tokens.iter().all(|t| BASE64URL_NOPAD.decode(t.as_bytes()).map(|b| b.len()) == Ok(32)));
    }

    #[test]
    fn the_hash_is_stable_and_not_the_token() {
        let t = Token::generate(&OsRng);
        assert_eq!(t.hash(), Token::presented(t.expose()).hash());
        assert_ne!(t.hash().as_str(), t.expose());
        assert!(!format!("{t:?}").contains(t.expose()));
    }
}
