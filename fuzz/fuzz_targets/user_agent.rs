//! The User-Agent header, shown in session lists and the security log (`device::describe`): any
//! text gives a short, non-empty name made only of the fixed browser and OS words, never a copy of
//! the header (which could carry markup or control characters into a page).
#![no_main]

use libfuzzer_sys::fuzz_target;
use twostep_domain::abuse::device::describe;

fuzz_target!(|user_agent: &str| {
    let name = describe(user_agent);
    assert!(!name.is_empty());
    assert!(name.len() <= 32, "{name:?}");
    assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' '), "{name:?}");
});
