//! E-mail addresses (`email::Email::parse`), which sign-up, sign-in and password reset read from
//! outside: no panic on arbitrary text, and a parsed address is canonical, so parsing it again
//! gives itself (one mailbox is one account only if normalising is idempotent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use twostep_domain::accounts::email::Email;

fuzz_target!(|typed: &str| {
    let Ok(email) = Email::parse(typed) else {
        return;
    };
    let s = email.as_str();
    assert!(s.len() <= 254, "{s:?} is {} bytes", s.len());
    assert!(s.contains('@'), "{s:?}");
    assert_eq!(s.trim(), s, "surrounding whitespace kept in {s:?}");
    assert_eq!(s.to_lowercase(), s, "not lower case: {s:?}");
    match Email::parse(s) {
        Ok(again) => assert_eq!(again.as_str(), s, "parse is not idempotent for input {typed:?}"),
        Err(e) => panic!("the parsed form {s:?} of {typed:?} does not parse again: {e}"),
    }
    for word in email.context_words() {
        assert!(word.chars().count() >= 3, "{word:?}");
    }
});
