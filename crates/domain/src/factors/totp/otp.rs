//! The one-time-password engine: HOTP (RFC 4226) and TOTP (RFC 6238), pure functions without I/O.
//!
//! Codes are strings zero-padded to `digits`, because a code like `081804` is a different code from
//! `81804` to the person typing it. Time is 64-bit Unix seconds with T0 = 0, so steps past 2038
//! (and the RFC's 20000000000 vector) work. Verification (security doc §2.1, SEC-21, SEC-22)
//! computes every step in the window and compares each in constant time, without an early exit, so
//! response timing says nothing about which step (if any) matched; the replay floor `last_step` is
//! applied inside the same pass. The caller stores the returned step atomically; this module never
//! remembers anything.

use hmac::{Hmac, Mac};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// The HMAC hash of an authenticator (RFC 6238 §1.2 allows SHA-256 and SHA-512 besides SHA-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl OtpAlgorithm {
    /// The spelling of the Key Uri Format's `algorithm` parameter.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Reads `SHA1`, `SHA256` or `SHA512` in any case.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha512].into_iter().find(|a| a.as_str().eq_ignore_ascii_case(s))
    }
}

/// How an authenticator turns time into codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TotpParams {
    pub algorithm: OtpAlgorithm,
    /// 6 to 8; `verify_totp` refuses anything else.
    pub digits: u32,
    /// Seconds per step; `verify_totp` refuses 0.
    pub period: u64,
}

impl TotpParams {
    /// What every authenticator app supports and what enrolment issues (§2.1).
    pub const DEFAULT: TotpParams = TotpParams { algorithm: OtpAlgorithm::Sha1, digits: 6, period: 30 };

    /// Whether codes can be verified with these parameters: RFC 4226 §5.3 asks for at least 6
    /// digits, and 8 is the most any authenticator app shows.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        (6..=8).contains(&self.digits) && self.period > 0
    }
}

impl Default for TotpParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Widest window `verify_totp` honours. RFC 6238 §5.2 recommends one step; every extra step
/// multiplies an online guesser's odds, and the bound keeps a misconfiguration from looping forever.
const MAX_WINDOW: u64 = 10;

/// The raw HMAC for a counter (exposed for the RFC 4226 App. D HMAC vectors and benchmarks).
#[must_use]
pub fn hmac(algorithm: OtpAlgorithm, key: &[u8], counter: u64) -> Vec<u8> {
    // RFC 4226 §5.1: the counter is an 8-byte big-endian value.
    let message = counter.to_be_bytes();
    match algorithm {
        OtpAlgorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(key, &message),
        OtpAlgorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(key, &message),
        OtpAlgorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(key, &message),
    }
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length (RFC 2104 §2)");
    m.update(message);
    m.finalize().into_bytes().to_vec()
}

/// HOTP value, zero-padded to `digits` (string, leading zeros kept).
///
/// Meant for 6 to 8 digits; a larger `digits` only adds leading zeros, since the truncated value
/// has 31 bits.
#[must_use]
pub fn hotp(algorithm: OtpAlgorithm, key: &[u8], counter: u64, digits: u32) -> String {
    let mac = hmac(algorithm, key, counter);
    // RFC 4226 §5.3 dynamic truncation: the low nibble of the last byte picks four bytes, and the
    // top bit is dropped so signed and unsigned implementations agree.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes(std::array::from_fn(|i| mac[offset + i])) & 0x7fff_ffff;
    let value = 10_u64.checked_pow(digits).map_or(u64::from(bin), |modulus| u64::from(bin) % modulus);
    format!("{value:0width$}", width = digits as usize)
}

/// Time step for a Unix time (T0 = 0), 64-bit.
///
/// Times before 1970 map to step 0 (the server clock is never there; RFC 6238 defines no negative
/// steps). A `period` of 0 also gives step 0 instead of dividing by zero; `verify_totp` refuses it.
#[must_use]
pub fn time_step(unix_secs: i64, period: u64) -> u64 {
    u64::try_from(unix_secs).unwrap_or(0).checked_div(period).unwrap_or(0)
}

/// The TOTP code for `unix_secs` (RFC 6238 §4.2).
#[must_use]
pub fn totp(key: &[u8], unix_secs: i64, params: TotpParams) -> String {
    let step = time_step(unix_secs, params.period);
    hotp(params.algorithm, key, step, params.digits)
}

/// Constant-time comparison of two codes (subtle); different lengths -> false.
#[must_use]
pub fn codes_match(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Verify `code` against steps T-window ..= T+window for `unix_secs`.
///
/// All candidate steps are computed and compared in constant time (no early exit). Returns the
/// highest matching step that is strictly greater than `last_step` (`None` means no floor), which
/// the caller records as the new floor (SEC-21). Returns `None` for a code that is not exactly
/// `digits` ASCII digits after trimming surrounding whitespace and removing inner whitespace, for
/// invalid `params` (see [`TotpParams::is_valid`]), and never panics. `window` is capped at 10
/// steps.
#[must_use]
pub fn verify_totp(
    key: &[u8],
    code: &str,
    unix_secs: i64,
    params: TotpParams,
    window: u64,
    last_step: Option<u64>,
) -> Option<u64> {
    if !params.is_valid() {
        return None;
    }
    // Apps show "123 456"; people paste it with the space or a trailing newline.
    let given: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if given.len() != params.digits as usize || !given.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let window = window.min(MAX_WINDOW);
    let now = time_step(unix_secs, params.period);
    let mut found = Choice::from(0);
    let mut best = 0_u64;
    // Ascending, so the last accepted match is the highest step.
    for step in now.saturating_sub(window)..=now.saturating_add(window) {
        let expected = hotp(params.algorithm, key, step, params.digits);
        let fresh = Choice::from(u8::from(last_step.is_none_or(|floor| step > floor)));
        let hit = expected.as_bytes().ct_eq(given.as_bytes()) & fresh;
        best = u64::conditional_select(&best, &step, hit);
        found |= hit;
    }
    bool::from(found).then_some(best)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::OtpAlgorithm::{Sha1, Sha256, Sha512};
    use super::*;
    use proptest::prelude::*;

    const SEED_SHA1: &[u8] = b"12345678901234567890";
    const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
    const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    /// Security doc §4.1 (RFC 4226 Appendix D): count, HMAC-SHA-1, HOTP.
    const RFC4226: &str = "
        0 cc93cf18508d94934c64b65d8ba7667fb7cde4b0 755224
        1 75a48a19d4cbe100644e8ac1397eea747a2d33ab 287082
        2 0bacb7fa082fef30782211938bc1c5e70416ff44 359152
        3 66c28227d03a2d5529262ff016a1e6ef76557ece 969429
        4 a904c900a64b35909874b33e61c5938a8e15ed1c 338314
        5 a37e783d7b7233c083d4f62926c7a25f238d0316 254676
        6 bc9cd28561042c83f219324d3c607256c03272ae 287922
        7 a4fb960c0bc06e1eabb804e5b397cdc4b45596fa 162583
        8 1b3c89f65e6c9e883012052823443f048b4332db 399871
        9 1637409809a679dc698207310c8c7fc07290d9e5 520489";

    /// Security doc §4.2 (RFC 6238 Appendix B): time, T (hex), SHA1, SHA256, SHA512, 6-digit SHA1.
    const RFC6238: &str = "
                 59 0000000000000001 94287082 46119246 90693936 287082
         1111111109 00000000023523EC 07081804 68084774 25091201 081804
         1111111111 00000000023523ED 14050471 67062674 99943326 050471
         1234567890 000000000273EF07 89005924 91819424 93441116 005924
         2000000000 0000000003F940AA 69279037 90698825 38618901 279037
        20000000000 0000000027BC86AA 65353130 77737706 47863826 353130";

    fn rows(table: &str) -> impl Iterator<Item = Vec<&str>> {
        let lines = table.lines().filter(|l| !l.trim().is_empty());
        lines.map(|l| l.split_whitespace().collect())
    }

    /// The 8-digit code of `seed` at `t` under `algorithm`, 30-second steps.
    fn code8(algorithm: OtpAlgorithm, seed: &[u8], t: i64) -> String {
        let p = TotpParams { algorithm, digits: 8, period: 30 };
        totp(seed, t, p)
    }

    // SEC-17: RFC 4226 Appendix D, every HMAC-SHA-1 value and every 6-digit HOTP value.
    #[test]
    fn sec17_rfc4226_appendix_d() {
        let mut checked = 0;
        for row in rows(RFC4226) {
            let counter: u64 = row[0].parse().unwrap();
            let mac = data_encoding::HEXLOWER.encode(&hmac(Sha1, SEED_SHA1, counter));
            assert_eq!(mac, row[1], "HMAC, count {counter}");
            assert_eq!(hotp(Sha1, SEED_SHA1, counter, 6), row[2], "count {counter}");
            checked += 1;
        }
        assert_eq!(checked, 10);
    }

    // SEC-18: all 18 RFC 6238 Appendix B vectors with per-hash seeds, 8 digits, 64-bit time (one
    // step is past 2^32), and the 6-digit SHA-1 codes with their leading zeros.
    #[test]
    fn sec18_rfc6238_appendix_b() {
        let hashes = [(Sha1, SEED_SHA1), (Sha256, SEED_SHA256), (Sha512, SEED_SHA512)];
        let mut checked = 0;
        for row in rows(RFC6238) {
            let t: i64 = row[0].parse().unwrap();
            let step = u64::from_str_radix(row[1], 16).unwrap();
            assert_eq!(time_step(t, 30), step, "T at {t}");
            for ((algorithm, seed), want) in hashes.into_iter().zip(&row[2..5]) {
                assert_eq!(code8(algorithm, seed, t), *want, "{algorithm:?} at {t}");
                checked += 1;
            }
            let six = totp(SEED_SHA1, t, TotpParams::DEFAULT);
            assert_eq!(six, row[5], "6 digits at {t}");
        }
        assert_eq!(checked, 18);
    }

    // SEC-18 negative control: the SHA-1 seed under SHA-256/512 must not reproduce the RFC table.
    #[test]
    fn sec18_negative_control_wrong_seed_for_hash() {
        assert_eq!(code8(Sha256, SEED_SHA1, 59), "32247374");
        assert_eq!(code8(Sha512, SEED_SHA1, 59), "69342147");
    }

    #[test]
    fn steps_before_1970_or_without_period_are_zero() {
        assert_eq!(time_step(-1, 30), 0);
        assert_eq!(time_step(i64::MIN, 30), 0);
        assert_eq!(time_step(100, 0), 0);
    }

    #[test]
    fn algorithm_names_round_trip() {
        for a in [Sha1, Sha256, Sha512] {
            assert_eq!(OtpAlgorithm::parse(a.as_str()), Some(a));
            assert_eq!(OtpAlgorithm::parse(&a.as_str().to_lowercase()), Some(a));
        }
        assert_eq!(OtpAlgorithm::parse("MD5"), None);
        assert_eq!(OtpAlgorithm::parse(""), None);
    }

    /// `verify_totp` with the default parameters and the SHA-1 seed, at `t`.
    fn verify_at(code: &str, t: i64, window: u64, last_step: Option<u64>) -> Option<u64> {
        verify_totp(SEED_SHA1, code, t, TotpParams::DEFAULT, window, last_step)
    }

    fn code6(t: i64) -> String {
        totp(SEED_SHA1, t, TotpParams::DEFAULT)
    }

    // SEC-22: T-1, T and T+1 pass; T-2 and T+2 do not.
    #[test]
    fn sec22_window_is_one_step() {
        let t = 1_234_567_890;
        let step = time_step(t, 30);
        for steps in [-1, 0, 1] {
            let want = step.checked_add_signed(steps);
            assert_eq!(verify_at(&code6(t + 30 * steps), t, 1, None), want);
        }
        for steps in [-2, 2] {
            assert_eq!(verify_at(&code6(t + 30 * steps), t, 1, None), None);
        }
    }

    // SEC-21: a step at or below the last accepted one never passes again.
    #[test]
    fn sec21_replay_floor() {
        let t = 2_000_000_000;
        let step = time_step(t, 30);
        assert_eq!(verify_at(&code6(t), t, 1, Some(step - 1)), Some(step));
        assert_eq!(verify_at(&code6(t), t, 1, Some(step)), None);
        assert_eq!(verify_at(&code6(t), t, 1, Some(step + 1)), None);
        assert_eq!(verify_at(&code6(t - 30), t, 1, Some(step)), None);
    }

    #[test]
    fn code_format_is_checked_before_comparing() {
        assert_eq!(verify_at(" 287 082\n", 59, 1, None), Some(1));
        for bad in "|28708|2870820|28708a|+87082|２８７０８２|287082 0".split('|') {
            assert_eq!(verify_at(bad, 59, 1, None), None, "{bad:?}");
        }
        let zero_period = TotpParams { period: 0, ..TotpParams::DEFAULT };
        assert_eq!(verify_totp(SEED_SHA1, "287082", 59, zero_period, 1, None), None);
        let nine = TotpParams { digits: 9, ..TotpParams::DEFAULT };
        let code = totp(SEED_SHA1, 59, nine);
        assert_eq!(verify_totp(SEED_SHA1, &code, 59, nine, 1, None), None);
    }

    #[test]
    fn window_edges_do_not_wrap() {
        assert_eq!(verify_at(&code6(0), 0, 1, None), Some(0));
        let last = time_step(i64::MAX, 30);
        assert_eq!(verify_at(&code6(i64::MAX), i64::MAX, u64::MAX, None), Some(last));
    }

    #[test]
    fn codes_match_compares_whole_strings() {
        assert!(codes_match("081804", "081804"));
        assert!(!codes_match("081804", "81804"));
        assert!(!codes_match("081804", "081805"));
        assert!(!codes_match("", "0"));
    }

    fn any_algorithm() -> impl Strategy<Value = OtpAlgorithm> {
        prop_oneof![Just(Sha1), Just(Sha256), Just(Sha512)]
    }

    proptest! {
        #[test]
        fn prop_totp_verifies_within_one_step(
            key in proptest::collection::vec(any::<u8>(), 1..64),
            t in 60_i64..40_000_000_000,
            algorithm in any_algorithm(),
            digits in 6_u32..=8,
        ) {
            let p = TotpParams { algorithm, digits, period: 30 };
            let code = totp(&key, t, p);
            let now = time_step(t, 30);
            for probe in [t - 30, t, t + 30] {
                let got = verify_totp(&key, &code, probe, p, 1, None);
                // Higher only when a neighbouring step happens to share the code.
                prop_assert!(got.is_some_and(|s| (now..=now + 2).contains(&s)));
            }
            for probe in [t - 60, t + 60] {
                // Far steps may share the code by chance; the claim is only about other codes.
                let near = [probe - 30, probe, probe + 30].map(|x| totp(&key, x, p));
                if near.iter().all(|c| *c != code) {
                    prop_assert_eq!(verify_totp(&key, &code, probe, p, 1, None), None);
                }
            }
        }

        #[test]
        fn prop_hotp_has_exactly_digits_digits(
            key in proptest::collection::vec(any::<u8>(), 0..80),
            counter in any::<u64>(),
            algorithm in any_algorithm(),
            digits in 1_u32..=10,
        ) {
            let code = hotp(algorithm, &key, counter, digits);
            prop_assert_eq!(code.len(), digits as usize);
            prop_assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }

        #[test]
        fn prop_verify_never_panics(
            code in ".*",
            t in any::<i64>(),
            digits in any::<u32>(),
            period in any::<u64>(),
            window in any::<u64>(),
            last_step in any::<Option<u64>>(),
        ) {
            let p = TotpParams { algorithm: Sha1, digits, period };
            let _ = verify_totp(SEED_SHA1, &code, t, p, window, last_step);
            let _ = verify_totp(SEED_SHA1, &code, t, TotpParams::DEFAULT, 1, last_step);
        }
    }
}
