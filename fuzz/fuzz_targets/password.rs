//! Passwords (`password::Password`): `new_checked` (sign-up, change, reset) under the default
//! policy and an arbitrary legal minimum, with arbitrary context words, and `for_sign_in`.
//!
//! Properties: no panic; an accepted password has a length within the policy (in code points,
//! after NFKC) and can be used to sign in with the same normalised text; normalising is idempotent.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use twostep_domain::accounts::password::{MAX_LENGTH, MIN_LENGTH_FLOOR, Password, PasswordError, PasswordPolicy};

/// Two header bytes, then the text (it takes the rest of the input): the password, and after each
/// U+001F (unit separator) one context word (the e-mail's local-part words in the real service).
/// `fuzz/make_seeds.py` writes seed files in this layout.
#[derive(Arbitrary, Debug)]
struct Input<'a> {
    default_policy: bool,
    min_length: u8,
    text: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let policy = if input.default_policy {
        PasswordPolicy::default()
    } else {
        // The configuration accepts 8..=64 (twostep.example.toml).
        PasswordPolicy { min_length: MIN_LENGTH_FLOOR + usize::from(input.min_length) % 57 }
    };
    let mut parts = input.text.split('\u{1f}');
    let typed = parts.next().unwrap_or_default();
    let context: Vec<String> = parts.take(8).map(str::to_owned).collect();

    let sign_in = Password::for_sign_in(typed);
    match Password::new_checked(typed, &policy, &context) {
        Ok(p) => {
            let n = p.expose().chars().count();
            assert!((policy.min_length..=MAX_LENGTH).contains(&n), "accepted {n} code points");
            let s = sign_in.as_ref().expect("an accepted password must be usable at sign-in");
            assert_eq!(s.expose(), p.expose());
            let again = Password::new_checked(p.expose(), &policy, &context).expect("normalised form accepted");
            assert_eq!(again.expose(), p.expose(), "NFKC is not idempotent here");
        }
        Err(PasswordError::TooShort(min)) => assert_eq!(min, policy.min_length),
        Err(PasswordError::TooLong) => assert!(sign_in.is_none(), "too long for sign-up but not for sign-in"),
        Err(PasswordError::Common | PasswordError::Context) => {}
    }
    if let Some(p) = sign_in {
        assert!(p.expose().chars().count() <= MAX_LENGTH);
        let again = Password::for_sign_in(p.expose()).expect("normalised form accepted");
        assert_eq!(again.expose(), p.expose(), "NFKC is not idempotent here");
    }
});
