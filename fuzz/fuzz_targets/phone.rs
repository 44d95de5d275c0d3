//! Phone numbers (`phone::Phone`), read from outside at phone set-up in two shapes: E.164 text, and
//! a country code with a national number as typed. No panic on arbitrary input, and a parsed number
//! is canonical: its E.164 form parses again to itself, the mask never shows more than the last two
//! digits, and the use checks agree between the two parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twostep_domain::factors::phone::number::{Phone, Use};

fn check(phone: &Phone) {
    let e164 = phone.e164();
    assert!(e164.starts_with('+') && e164[1..].bytes().all(|b| b.is_ascii_digit()), "{e164:?}");
    assert!(e164.len() <= 16, "{e164:?}");
    let again = Phone::parse_e164(e164).unwrap_or_else(|e| panic!("{e164:?} does not parse again: {e}"));
    assert_eq!(again.e164(), e164);
    assert_eq!(again.check_use(Use::Sms).is_ok(), phone.check_use(Use::Sms).is_ok());
    assert_eq!(again.check_use(Use::Voice).is_ok(), phone.check_use(Use::Voice).is_ok());
    let masked = phone.masked();
    let shown: String = masked.chars().filter(char::is_ascii_digit).collect();
    let code = phone.calling_code().to_string();
    assert_eq!(shown.len(), code.len() + 2, "{masked:?} shows too much of {e164:?}");
    assert!(e164.ends_with(&shown[code.len()..]), "{masked:?} for {e164:?}");
}

fuzz_target!(|input: (&str, &str)| {
    let (country, typed) = input;
    if let Ok(p) = Phone::parse_e164(typed) {
        check(&p);
    }
    if let Ok(p) = Phone::parse_national(country, typed) {
        check(&p);
    }
});
