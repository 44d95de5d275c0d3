//! Recovery codes: the last-resort second factor, per security doc §2.3 (SEC-38, SEC-40).
//!
//! A code is 80 bits from the CSPRNG written as 16 characters of RFC 4648 Base32 in lowercase,
//! which NIST SP 800-63B rev 4 (≥ 64 bits) accepts for look-up secrets. Base32 has no '0'/'O' or
//! '1'/'l' pairs to confuse, and 80 bits fill 16 characters exactly, so every string of the
//! alphabet is a code and parsing needs no decoding. The one stored form is normalised (lowercase,
//! no separators): people may type any case with or without dashes, and it is what the caller
//! hashes and encrypts. Codes are secrets: never displayed by `Debug`, not serialisable, zeroized
//! on drop; set uniqueness is enforced here so one code can never consume two rows.

use std::fmt;

use data_encoding::BASE32_NOPAD;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::ports::Rng;

/// Codes in a freshly generated set (§2.3).
pub const CODES_PER_SET: usize = 10;

/// Characters in a normalised code: 80 bits at 5 bits each.
const CODE_LEN: usize = 16;
/// Random bytes behind a code.
const CODE_BYTES: usize = 10;
/// Draws `generate_set` allows itself. A collision of two 80-bit draws is ~4×10⁻²³ per set, so
/// running out means the random source is broken, and issuing codes from it would be worse than
/// failing.
const MAX_DRAWS: usize = 100;

/// A recovery code: 16 characters of RFC 4648 Base32 in lowercase (a-z, 2-7), 80 bits from the
/// CSPRNG.
///
/// Secret type: no Display/Serialize/Clone, `Debug` prints `RecoveryCode(***)`, zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RecoveryCode(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecoveryCodeError {
    #[error("not a recovery code")]
    Malformed,
}

impl RecoveryCode {
    /// 10 random bytes -> 16 Base32 characters.
    #[must_use]
    pub fn generate(rng: &dyn Rng) -> Self {
        let mut bytes = Zeroizing::new([0_u8; CODE_BYTES]);
        rng.fill(bytes.as_mut());
        let mut code = BASE32_NOPAD.encode(bytes.as_ref());
        code.make_ascii_lowercase();
        Self(code)
    }

    /// The normalised form (16 lowercase chars, no dashes): what gets hashed and encrypted.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Shown to people: "abcd-efgh-jkmn-pqrs".
    #[must_use]
    pub fn display_grouped(&self) -> String {
        let mut out = String::with_capacity(CODE_LEN + 3);
        for (i, c) in self.0.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// What a user typed: any case, dashes and spaces optional, surrounding whitespace ignored.
    ///
    /// # Errors
    /// [`RecoveryCodeError::Malformed`] when not exactly 16 Base32 characters after normalising
    /// (SEC-40).
    pub fn parse(input: &str) -> Result<Self, RecoveryCodeError> {
        // Zeroizing: a near-miss may be a real code with a typo; it must not linger in freed memory.
        let mut code = Zeroizing::new(String::with_capacity(CODE_LEN));
        for c in input.chars().filter(|c| *c != '-' && !c.is_whitespace()) {
            let c = c.to_ascii_lowercase();
            // Stopping at 17 keeps a pasted novel from being copied.
            if code.len() == CODE_LEN || !matches!(c, 'a'..='z' | '2'..='7') {
                return Err(RecoveryCodeError::Malformed);
            }
            code.push(c);
        }
        if code.len() != CODE_LEN {
            return Err(RecoveryCodeError::Malformed);
        }
        Ok(Self(std::mem::take(&mut *code)))
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(***)")
    }
}

/// A set of `CODES_PER_SET` codes, unique within the set (redrawn on a collision).
///
/// # Panics
/// When the random source keeps repeating itself (see `MAX_DRAWS`): it is broken, and codes from it
/// would be guessable.
#[must_use]
pub fn generate_set(rng: &dyn Rng) -> Vec<RecoveryCode> {
    let mut set: Vec<RecoveryCode> = Vec::with_capacity(CODES_PER_SET);
    for _ in 0..MAX_DRAWS {
        let code = RecoveryCode::generate(rng);
        if !set.iter().any(|c| c.expose() == code.expose()) {
            set.push(code);
        }
        if set.len() == CODES_PER_SET {
            return set;
        }
    }
    panic!("the random source repeats itself; refusing to issue recovery codes");
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    /// The real OS source, as production wires it.
    struct OsRandom;
    impl Rng for OsRandom {
        fn fill(&self, buf: &mut [u8]) {
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, buf);
        }
    }

    /// Replays fixed blocks of 10 bytes in order, to force collisions.
    struct Scripted(Mutex<Vec<u8>>);
    impl Rng for Scripted {
        fn fill(&self, buf: &mut [u8]) {
            let mut next = self.0.lock().unwrap();
            let first = next.remove(0);
            buf.fill(first);
        }
    }

    const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz234567";

    // SEC-40: any case, dashes and spaces optional.
    #[test]
    fn sec40_parse_accepts_typed_forms() {
        for typed in [
            "ABCD-EFGH-JKMN-PQRS",
            "abcdefghjkmnpqrs",
            "AbCd-eFgH-jKmN-pQrS",
            "  abcd efgh jkmn pqrs\n",
            "abcd-efghjkmnpqrs",
        ] {
            let code = RecoveryCode::parse(typed).unwrap();
            assert_eq!(code.expose(), "abcdefghjkmnpqrs", "{typed:?}");
            assert_eq!(code.display_grouped(), "abcd-efgh-jkmn-pqrs");
        }
    }

    // SEC-40: anything but 16 Base32 characters is refused.
    #[test]
    fn sec40_parse_refuses_malformed() {
        for bad in [
            "",
            "abcd-efgh-jkmn-pqr",
            "abcd-efgh-jkmn-pqrst",
            "abcd-efgh-jkmn-pqr0",
            "abcd-efgh-jkmn-pqr1",
            "abcd-efgh-jkmn-pqr8",
            "abcd-efgh-jkmn-pqr9",
            "abcd_efgh_jkmn_pqrs",
            "abcd-efgh-jkmn-pqrś",
            "abcd-efgh-jkmn-pq=s",
            "abcdefghjkmnpqrs abcdefghjkmnpqrs",
        ] {
            assert_eq!(RecoveryCode::parse(bad).unwrap_err(), RecoveryCodeError::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_the_code() {
        let code = RecoveryCode::parse("abcdefghjkmnpqrs").unwrap();
        let shown = format!("{code:?} {:?}", [&code]);
        assert_eq!(shown, "RecoveryCode(***) [RecoveryCode(***)]");
        assert!(!shown.contains("abcd"));
    }

    #[test]
    fn generated_codes_have_the_normal_form() {
        let code = RecoveryCode::generate(&OsRandom);
        assert_eq!(code.expose().len(), CODE_LEN);
        assert!(code.expose().chars().all(|c| ALPHABET.contains(c)));
        assert_eq!(RecoveryCode::parse(&code.display_grouped()).unwrap().expose(), code.expose());
    }

    // SEC-38: 10,000 codes from the real source, no repeats, symbols uniform by χ².
    #[test]
    fn sec38_ten_thousand_codes_unique_and_uniform() {
        let mut seen = HashSet::new();
        let mut counts = [0_u32; 32];
        for _ in 0..1_000 {
            let set = generate_set(&OsRandom);
            assert_eq!(set.len(), CODES_PER_SET);
            for code in set {
                for c in code.expose().chars() {
                    counts[ALPHABET.find(c).unwrap()] += 1;
                }
                assert!(seen.insert(code.expose().to_owned()), "repeated code");
            }
        }
        assert_eq!(seen.len(), 10_000);
        let expected = f64::from(10_000 * 16_u32) / 32.0;
        let chi2: f64 = counts.iter().map(|&n| (f64::from(n) - expected).powi(2) / expected).sum();
        // Critical value for 31 degrees of freedom at p = 0.001: one false alarm in 1,000 runs.
        assert!(chi2 < 61.1, "chi-squared {chi2:.1} over {counts:?}");
    }

    // SEC-38: a collision within a set is redrawn, not issued twice.
    #[test]
    fn sec38_set_redraws_collisions() {
        let script = [1, 1, 2, 3, 3, 3, 4, 5, 6, 7, 8, 9, 10];
        let set = generate_set(&Scripted(Mutex::new(script.to_vec())));
        let unique: HashSet<&str> = set.iter().map(RecoveryCode::expose).collect();
        assert_eq!(unique.len(), CODES_PER_SET);
    }

    #[test]
    #[should_panic(expected = "repeats itself")]
    fn broken_source_is_refused() {
        struct Zeros;
        impl Rng for Zeros {
            fn fill(&self, buf: &mut [u8]) {
                buf.fill(0);
            }
        }
        let _ = generate_set(&Zeros);
    }
}
