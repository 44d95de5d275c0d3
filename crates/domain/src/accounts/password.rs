//! Passwords: the NIST SP 800-63B rules of `security.md` §2.4 and Argon2id
//! hashing (§2.2).
//!
//! A `Password` is NFKC-normalised once, on the way in, so "é" typed as one
//! code point or two signs in alike. Length counts code points, never bytes.
//! There are no composition rules: a list of common and breached passwords
//! and a context rule do the work composition rules only pretend to do.

use std::collections::HashSet;
use std::fmt;
use std::sync::{LazyLock, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ports::Rng;

/// Longest accepted password, in code points: well over NIST's 64, short
/// enough that hashing cannot be turned into a denial of service.
pub const MAX_LENGTH: usize = 128;
/// NIST SP 800-63B's floor; configuration may not go below it.
pub const MIN_LENGTH_FLOOR: usize = 8;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt").lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect()
});

/// A password as the user typed it, normalised. Never printed or serialised.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("Use at least {0} characters.")]
    TooShort(usize),
    #[error("Use at most {MAX_LENGTH} characters.")]
    TooLong,
    #[error("This password is too common; choose one that is hard to guess.")]
    Common,
    #[error("This password is made only of your e-mail address or the site name; choose something else.")]
    Context,
}

impl Password {
    /// What a user typed at sign-in: normalised, but not judged against the
    /// policy (old passwords stay valid when the policy tightens). `None`
    /// for inputs longer than any password we could have stored.
    pub fn for_sign_in(input: &str) -> Option<Self> {
        let s: String = input.nfkc().collect();
        (s.chars().count() <= MAX_LENGTH).then_some(Self(s))
    }

    /// A new password (sign-up, change, reset), judged against the policy.
    pub fn new_checked(input: &str, policy: &PasswordPolicy, context: &[String]) -> Result<Self, PasswordError> {
        let s: String = input.nfkc().collect();
        let len = s.chars().count();
        if len < policy.min_length {
            return Err(PasswordError::TooShort(policy.min_length));
        }
        if len > MAX_LENGTH {
            return Err(PasswordError::TooLong);
        }
        let lower = s.to_lowercase();
        if COMMON.contains(lower.as_str()) {
            return Err(PasswordError::Common);
        }
        if only_context(&lower, context) {
            return Err(PasswordError::Context);
        }
        Ok(Self(s))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// True when nothing is left once the context words, digits and separators
/// are taken out: `twostep-twostep`, `alice2024alice!`.
fn only_context(lower: &str, context: &[String]) -> bool {
    let mut rest = lower.to_owned();
    for word in context.iter().map(|w| w.to_lowercase()).chain(["twostep".to_owned()]) {
        if word.chars().count() >= 3 {
            rest = rest.replace(&word, "");
        }
    }
    rest.chars().all(|c| c.is_ascii_digit() || c.is_ascii_punctuation() || c.is_whitespace())
}

#[derive(Clone, Debug)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_length: 12 }
    }
}

/// Argon2id cost. The defaults are OWASP's minimum (m = 19 MiB, t = 2, p = 1).
#[derive(Clone, Copy, Debug)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes and verifies passwords. Holds a dummy hash so that an unknown
/// e-mail costs the same Argon2id work as a wrong password (§2.12).
///
/// Argon2id's working memory (`memory_kib` blocks of 1 KiB) is reused:
/// allocating a fresh 19 MiB per hash left glibc holding a freed block per
/// arena, and 32 concurrent sign-ins grew the process to gigabytes
/// (docs/performance.md). A hash takes a spare buffer (or allocates one) and
/// puts it back afterwards; at most `keep` buffers are kept, one per core,
/// which is also how many hashes `Twostep`'s permits let run at once. So
/// peak memory is about cores × 19 MiB whatever the number of threads the
/// hashes ran on. Buffers are overwritten by the next hash.
pub struct PasswordHashing {
    params: Params,
    dummy: String,
    spare: Mutex<Vec<Vec<Block>>>,
    keep: usize,
    /// Buffers allocated so far: never more than hashes ran at once (tests).
    #[cfg(test)]
    allocated: std::sync::atomic::AtomicUsize,
}

impl PasswordHashing {
    pub fn new(cost: HashCost, rng: &dyn Rng) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| HashError(e.to_string()))?;
        // The dummy is a PHC string with this cost, a random salt and a random
        // output, not the hash of anything: verifying against it runs the
        // same Argon2id work as a real one and never matches. Computing a real
        // one cost every start 19 MiB and tens of milliseconds, and glibc,
        // on freeing that block, raised its mmap threshold past 19 MiB, so
        // the buffers below then came from (and stayed in) the threads'
        // arenas instead of mappings of their own.
        let mut salt = [0u8; 16];
        let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
        rng.fill(&mut salt);
        rng.fill(&mut output);
        let dummy = phc_string(&params, &salt, &output)?;
        let keep = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Ok(Self {
            params,
            dummy,
            spare: Mutex::new(Vec::new()),
            keep,
            #[cfg(test)]
            allocated: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) with a fresh
    /// 16-byte salt: the same string `argon2`'s `PasswordHasher` writes.
    pub fn hash(&self, password: &Password, rng: &dyn Rng) -> Result<String, HashError> {
        let err = |e: &dyn fmt::Display| HashError(e.to_string());
        let mut salt_bytes = [0u8; 16];
        rng.fill(&mut salt_bytes);
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        self.run(&argon, password.0.as_bytes(), &salt_bytes, &mut out).map_err(|e| err(&e))?;
        let phc = phc_string(&self.params, &salt_bytes, &out);
        out.zeroize();
        phc
    }

    /// Verifies against a stored PHC string with the parameters it names
    /// (so hashes made under an older cost still verify), comparing the
    /// outputs in constant time. `None` as the stored hash verifies against
    /// the dummy and fails.
    pub fn verify(&self, password: &Password, stored: Option<&str>) -> bool {
        let phc = stored.unwrap_or(&self.dummy);
        self.verify_phc(password.0.as_bytes(), phc) && stored.is_some()
    }

    /// Recomputes the hash a PHC string describes and compares in constant
    /// time. Any malformed part (algorithm, version, parameters, salt) fails.
    fn verify_phc(&self, password: &[u8], phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else { return false };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else { return false };
        let Ok(version) = parsed.version.map_or(Ok(Version::default()), Version::try_from) else { return false };
        let Ok(params) = Params::try_from(&parsed) else { return false };
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
        let mut out = vec![0u8; expected.len()];
        if self.run(&Argon2::new(algorithm, version, params), password, salt, &mut out).is_err() {
            return false;
        }
        let ok: bool = out.as_slice().ct_eq(expected.as_bytes()).into();
        out.zeroize();
        ok
    }

    /// Runs Argon2 into `out` in a spare buffer, kept afterwards if fewer
    /// than `keep` are.
    fn run(&self, argon: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), argon2::Error> {
        let needed = argon.params().block_count();
        let mut blocks = self.spare.lock().ok().and_then(|mut spare| spare.pop()).unwrap_or_default();
        if blocks.len() < needed {
            #[cfg(test)]
            if blocks.is_empty() {
                self.allocated.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            blocks.resize(needed, Block::default());
        }
        let result = argon.hash_password_into_with_memory(password, salt, out, &mut blocks[..needed]);
        if let Ok(mut spare) = self.spare.lock()
            && spare.len() < self.keep
        {
            spare.push(blocks);
        }
        result
    }

    /// How many buffers are kept now (tests).
    #[cfg(test)]
    fn spare_buffers(&self) -> usize {
        self.spare.lock().map_or(0, |s| s.len())
    }

    /// How many buffers hashes have allocated so far (tests).
    #[cfg(test)]
    pub(crate) fn buffers_allocated(&self) -> usize {
        self.allocated.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `$argon2id$v=19$m=…,t=…,p=…$salt$output`.
fn phc_string(params: &Params, salt: &[u8], output: &[u8]) -> Result<String, HashError> {
    let err = |e: &dyn fmt::Display| HashError(e.to_string());
    let salt = SaltString::encode_b64(salt).map_err(|e| err(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| err(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(output).map_err(|e| err(&e))?),
    };
    Ok(phc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::OsRng;

    fn ctx() -> Vec<String> {
        vec!["alice".to_owned()]
    }

    #[test]
    fn sec01_minimum_length_counts_code_points() {
        let p = PasswordPolicy::default();
        assert_eq!(Password::new_checked("abcdefghijk", &p, &ctx()).err(), Some(PasswordError::TooShort(12)));
        assert!(Password::new_checked("correct hors", &p, &ctx()).is_ok());
        // 12 emoji are 12 code points (48 bytes).
        assert!(Password::new_checked(&"🔐".repeat(12), &p, &ctx()).is_ok());
        assert!(Password::new_checked(&"🔐".repeat(11), &p, &ctx()).is_err());
    }

    #[test]
    fn sec02_long_passwords_up_to_128() {
        let p = PasswordPolicy::default();
        assert!(Password::new_checked(&"x7".repeat(64), &p, &ctx()).is_ok());
        assert_eq!(Password::new_checked(&"x".repeat(129), &p, &ctx()).err(), Some(PasswordError::TooLong));
    }

    #[test]
    fn sec05_common_and_context_passwords_are_refused() {
        let p = PasswordPolicy { min_length: 8 };
        assert_eq!(Password::new_checked("password", &p, &ctx()).err(), Some(PasswordError::Common));
        assert_eq!(Password::new_checked("PASSWORD1", &p, &ctx()).err(), Some(PasswordError::Common));
        assert_eq!(Password::new_checked("twostep-twostep", &p, &ctx()).err(), Some(PasswordError::Context));
        assert_eq!(Password::new_checked("alice2024alice!", &p, &ctx()).err(), Some(PasswordError::Context));
        assert!(Password::new_checked("alice likes tea", &p, &ctx()).is_ok());
        assert_eq!(Password::new_checked("1234-5678-9012", &p, &ctx()).err(), Some(PasswordError::Context));
        assert!(Password::new_checked(&"🔐".repeat(8), &p, &ctx()).is_ok());
    }

    #[test]
    fn sec03_nfkc_makes_composed_and_decomposed_equal() {
        let p = PasswordPolicy::default();
        let nfc = Password::new_checked("caf\u{e9} au lait!!", &p, &ctx()).expect("ok");
        let nfd = Password::for_sign_in("cafe\u{301} au lait!!").expect("ok");
        assert_eq!(nfc.expose(), nfd.expose());
    }

    #[test]
    fn sec07_hash_is_argon2id_with_fresh_salt() {
        let cost = HashCost { memory_kib: 1024, iterations: 1, parallelism: 1 };
        let h = PasswordHashing::new(cost, &OsRng).expect("hasher");
        let pw = Password::for_sign_in("correct horse battery").expect("ok");
        let a = h.hash(&pw, &OsRng).expect("hash");
        let b = h.hash(&pw, &OsRng).expect("hash");
        assert!(a.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_ne!(a, b);
        assert!(h.verify(&pw, Some(&a)));
        assert!(!h.verify(&Password::for_sign_in("Correct horse battery").expect("ok"), Some(&a)));
        assert!(!h.verify(&pw, None));
    }

    fn standard_argon(cost: HashCost) -> Argon2<'static> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None).expect("params");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    #[test]
    fn a_hash_from_the_argon2_api_verifies_through_the_reused_memory() {
        use argon2::password_hash::PasswordHasher;
        let cost = HashCost { memory_kib: 1024, iterations: 2, parallelism: 1 };
        let h = PasswordHashing::new(cost, &OsRng).expect("hasher");
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let phc = standard_argon(cost).hash_password(b"correct horse battery", &salt).expect("hash").to_string();
        assert!(h.verify(&Password::for_sign_in("correct horse battery").expect("ok"), Some(&phc)));
        assert!(!h.verify(&Password::for_sign_in("correct horse batterY").expect("ok"), Some(&phc)));
        // Parameters come from the string, not from the hasher: an older,
        // cheaper or dearer cost still verifies.
        let dearer = HashCost { memory_kib: 2048, iterations: 3, parallelism: 2 };
        let phc = standard_argon(dearer).hash_password(b"correct horse battery", &salt).expect("hash").to_string();
        assert!(h.verify(&Password::for_sign_in("correct horse battery").expect("ok"), Some(&phc)));
        assert!(!h.verify(&Password::for_sign_in("wrong horse battery").expect("ok"), Some(&phc)));
    }

    #[test]
    fn a_hash_from_the_reused_memory_verifies_through_the_argon2_api() {
        use argon2::password_hash::PasswordVerifier;
        let cost = HashCost { memory_kib: 1024, iterations: 2, parallelism: 1 };
        let h = PasswordHashing::new(cost, &OsRng).expect("hasher");
        let pw = Password::for_sign_in("correct horse battery").expect("ok");
        // Twice: the second hash reuses the first one's memory.
        for _ in 0..2 {
            let phc = h.hash(&pw, &OsRng).expect("hash");
            let parsed = PasswordHash::new(&phc).expect("PHC");
            assert!(standard_argon(cost).verify_password(b"correct horse battery", &parsed).is_ok());
            assert!(standard_argon(cost).verify_password(b"correct horse batter", &parsed).is_err());
        }
    }

    #[test]
    fn sec12_the_dummy_costs_a_real_verification_and_never_matches() {
        let cost = HashCost { memory_kib: 1024, iterations: 2, parallelism: 1 };
        let h = PasswordHashing::new(cost, &OsRng).expect("hasher");
        // The configured cost, so an unknown e-mail runs the same work.
        assert!(h.dummy.starts_with("$argon2id$v=19$m=1024,t=2,p=1$"), "{}", h.dummy);
        let parsed = PasswordHash::new(&h.dummy).expect("the dummy is a PHC string");
        assert_eq!(parsed.hash.map(|o| o.len()), Some(Params::DEFAULT_OUTPUT_LEN));
        let other = PasswordHashing::new(cost, &OsRng).expect("hasher");
        assert_ne!(h.dummy, other.dummy, "a fresh salt and output per start");
        assert_eq!(h.spare_buffers(), 0);
        let pw = Password::for_sign_in("twostep dummy password").expect("ok");
        assert!(!h.verify(&pw, None));
        assert_eq!(h.spare_buffers(), 1, "verifying against the dummy ran Argon2id in a buffer of its cost");
        assert!(!h.verify_phc(pw.expose().as_bytes(), &h.dummy), "no password matches the dummy");
    }

    #[test]
    fn argon2_memory_is_reused_and_bounded() {
        let cost = HashCost { memory_kib: 1024, iterations: 1, parallelism: 1 };
        let h = PasswordHashing::new(cost, &OsRng).expect("hasher");
        // Making the dummy ran no Argon2id: nothing allocated yet.
        assert_eq!(h.spare_buffers(), 0);
        let pw = Password::for_sign_in("correct horse battery").expect("ok");
        let phc = h.hash(&pw, &OsRng).expect("hash");
        assert_eq!(h.spare_buffers(), 1);
        assert!(h.verify(&pw, Some(&phc)));
        assert_eq!(h.spare_buffers(), 1, "the second hash reused the first one's buffer");
        // Many at once never keep more than one buffer per core.
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| assert!(h.verify(&pw, Some(&phc))));
            }
        });
        assert!(h.spare_buffers() <= h.keep);
    }

    #[test]
    fn malformed_hashes_fail() {
        let cost = HashCost { memory_kib: 1024, iterations: 1, parallelism: 1 };
        let h = PasswordHashing::new(cost, &OsRng).expect("hasher");
        let pw = Password::for_sign_in("correct horse battery").expect("ok");
        let good = h.hash(&pw, &OsRng).expect("hash");
        assert!(h.verify(&pw, Some(&good)));
        for bad in [
            String::new(),
            "not a hash".to_owned(),
            good.replacen("argon2id", "scrypt", 1),
            good.replacen("m=1024", "m=1", 1),
            good.rsplit_once('$').map(|(head, _)| head.to_owned()).expect("has a hash part"),
            format!("{good}AA"),
        ] {
            assert!(!h.verify(&pw, Some(&bad)), "{bad}");
        }
    }

    #[test]
    fn the_list_is_large_enough() {
        assert!(COMMON.len() >= 10_000);
    }

    #[test]
    fn debug_does_not_show_the_password() {
        let pw = Password::for_sign_in("hunter2 hunter2").expect("ok");
        assert!(!format!("{pw:?}").contains("hunter2"));
    }
}
