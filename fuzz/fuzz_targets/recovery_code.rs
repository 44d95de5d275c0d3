//! Recovery codes as people type them (`factors::recovery_code`): `RecoveryCode::parse` on
//! arbitrary text, checked against a reference model of the documented rule (16 Base32 characters
//! after dropping dashes and whitespace, any ASCII case), and the display round trips:
//! `display_grouped()` and the upper-case form parse back to the same `expose()`; a code generated
//! from arbitrary random bytes does too.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use twostep_domain::factors::recovery::code::{RecoveryCode, RecoveryCodeError};
use twostep_domain::ports::Rng;

/// The typed text is last (it takes the rest of the input): seed files are 10 random bytes and the
/// text; `fuzz/make_seeds.py` writes them.
#[derive(Arbitrary, Debug)]
struct Input<'a> {
    random: [u8; 10],
    typed: &'a str,
}

/// A "random" source that replays the fuzzer's bytes.
struct Replay([u8; 10]);

impl Rng for Replay {
    fn fill(&self, buf: &mut [u8]) {
        for (b, r) in buf.iter_mut().zip(self.0.iter().cycle()) {
            *b = *r;
        }
    }
}

fn check_round_trips(code: &RecoveryCode) {
    let normal = code.expose();
    assert_eq!(normal.len(), 16, "{normal:?}");
    assert!(normal.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')), "{normal:?}");
    let grouped = code.display_grouped();
    assert_eq!(grouped.len(), 19, "{grouped:?}");
    assert_eq!(grouped.replace('-', ""), normal);
    let again = RecoveryCode::parse(&grouped).expect("display_grouped() parses");
    assert_eq!(again.expose(), normal);
    let upper = RecoveryCode::parse(&grouped.to_ascii_uppercase()).expect("upper case parses");
    assert_eq!(upper.expose(), normal);
}

fuzz_target!(|input: Input<'_>| {
    let model: String =
        input.typed.chars().filter(|c| *c != '-' && !c.is_whitespace()).map(|c| c.to_ascii_lowercase()).collect();
    let model_ok = model.len() == 16 && model.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7'));
    match RecoveryCode::parse(input.typed) {
        Ok(code) => {
            assert!(model_ok, "accepted {:?}", input.typed);
            assert_eq!(code.expose(), model);
            check_round_trips(&code);
        }
        Err(RecoveryCodeError::Malformed) => assert!(!model_ok, "refused {:?}", input.typed),
    }

    check_round_trips(&RecoveryCode::generate(&Replay(input.random)));
});
