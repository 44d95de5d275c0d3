//! The OTP engine (`factors::otp`): `verify_totp` with arbitrary keys, typed codes, times, windows,
//! replay floors and parameters (valid or not), plus `totp`/`hotp`/`codes_match`.
//!
//! Properties: nothing panics; a code that verifies is really the HOTP of the returned step, inside
//! the (capped) window and above the floor; a code computed by `totp` verifies at its own instant,
//! also typed as "123 456"; the floor refuses a replay; HOTP values have exactly `digits` digits.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use twostep_domain::factors::totp::otp::{OtpAlgorithm, TotpParams, codes_match, hotp, time_step, totp, verify_totp};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl From<Algorithm> for OtpAlgorithm {
    fn from(a: Algorithm) -> Self {
        match a {
            Algorithm::Sha1 => Self::Sha1,
            Algorithm::Sha256 => Self::Sha256,
            Algorithm::Sha512 => Self::Sha512,
        }
    }
}

/// Fixed-size fields first and the typed code last (it takes the rest of the input), so seed files
/// are a 115-byte header plus the code; `fuzz/make_seeds.py` writes them.
#[derive(Arbitrary, Debug)]
struct Input<'a> {
    algorithm: Algorithm,
    unix_secs: i64,
    digits: u32,
    period: u64,
    window: u64,
    has_last_step: bool,
    last_step: u64,
    counter: u64,
    hotp_digits: u8,
    key_len: u8,
    key: [u8; 64],
    code: &'a str,
}

/// `verify_totp`'s documented window cap.
const MAX_WINDOW: u64 = 10;

fuzz_target!(|input: Input<'_>| {
    let algorithm = OtpAlgorithm::from(input.algorithm);
    let key = &input.key[..usize::from(input.key_len) % (input.key.len() + 1)];
    let t = input.unix_secs;
    let last_step = input.has_last_step.then_some(input.last_step);

    // 1. Everything arbitrary, parameters included: no panic, and a match is a real match.
    let params = TotpParams { algorithm, digits: input.digits, period: input.period };
    if let Some(step) = verify_totp(key, input.code, t, params, input.window, last_step) {
        assert!(params.is_valid(), "accepted a code under invalid params {params:?}");
        let now = time_step(t, params.period);
        let w = input.window.min(MAX_WINDOW);
        assert!(
            (now.saturating_sub(w)..=now.saturating_add(w)).contains(&step),
            "step {step} outside the window around {now} (w={w})"
        );
        if let Some(floor) = last_step {
            assert!(step > floor, "step {step} at or below the replay floor {floor}");
        }
        let typed: String = input.code.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(hotp(algorithm, key, step, params.digits), typed, "accepted a code that is not the step's code");
    }

    // 2. Round trip under valid parameters: the current code verifies now, spaced or not, once.
    let valid = TotpParams { algorithm, digits: 6 + input.digits % 3, period: input.period.max(1) };
    let code = totp(key, t, valid);
    assert_eq!(code.len(), valid.digits as usize);
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code:?}");
    let now = time_step(t, valid.period);
    assert_eq!(verify_totp(key, &code, t, valid, 0, None), Some(now));
    let spaced = format!(" {} {}\n", &code[..3], &code[3..]);
    assert_eq!(verify_totp(key, &spaced, t, valid, 0, None), Some(now));
    let widest = verify_totp(key, &code, t, valid, input.window, None);
    assert!(widest.is_some_and(|s| s >= now), "{widest:?} < {now}");
    assert_eq!(verify_totp(key, &code, t, valid, 0, Some(now)), None, "replay at the floor accepted");

    // 3. HOTP length. `digits` is bounded here: hotp pads to `digits` characters by design (its doc
    //    comment), so u32::MAX would only measure the allocator. 0 is left out: it yields "0".
    let digits = 1 + u32::from(input.hotp_digits % 24);
    let h = hotp(algorithm, key, input.counter, digits);
    assert_eq!(h.len(), digits as usize, "{h:?}");
    assert!(h.bytes().all(|b| b.is_ascii_digit()), "{h:?}");

    // 4. Helpers.
    assert_eq!(codes_match(&code, input.code), code == input.code);
    if let Some(a) = OtpAlgorithm::parse(input.code) {
        assert!(a.as_str().eq_ignore_ascii_case(input.code));
    }
});
