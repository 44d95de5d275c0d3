//! Passwords (`password::Password`): `new_checked` (sign-up, change, reset) under the default
//! policy and an arbitrary legal minimum, with arbitrary context words, and `for_sign_in`.
//!
//! Properties: no panic; an accepted password has a length within the policy (in code points,
//! after NFKC) and can be used to sign in with the same normalised text; normalising is idempotent.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use twostep_domain::password::{MAX_LENGTH, MIN_LENGTH_FLOOR, Password, PasswordError, PasswordPolicy};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    typed: &'a str,
    context: Vec<&'a str>,
    min_length: u8,
    default_policy: bool,
}

fuzz_target!(|input: Input<'_>| {
    let policy = if input.default_policy {
        PasswordPolicy::default()
    } else {
        // The configuration accepts 8..=64 (twostep.example.toml).
        PasswordPolicy { min_length: MIN_LENGTH_FLOOR + usize::from(input.min_length) % 57 }
    };
    let mut context: Vec<String> = input.context.iter().take(8).map(|w| (*w).to_owned()).collect();
    if context.is_empty() {
        context.push("alice".to_owned());
    }

    let sign_in = Password::for_sign_in(input.typed);
    match Password::new_checked(input.typed, &policy, &context) {
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
