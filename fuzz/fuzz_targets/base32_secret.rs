//! Secrets typed by people and what enrolment shows (`factors::otpauth`): `base32_decode` on
//! arbitrary text, the `base32_encode` → decode round trip (also through `group_for_typing` and
//! lower case), and `otpauth_uri` on arbitrary issuer and account names (its QR codes: the
//! `qr_code` target).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use twostep_domain::factors::totp::otp::{OtpAlgorithm, TotpParams};
use twostep_domain::factors::totp::otpauth::{base32_decode, base32_encode, group_for_typing, otpauth_uri};

/// Fixed-size fields first and the text last (it takes the rest of the input), so seed files are a
/// 54-byte header plus text; `fuzz/make_seeds.py` writes them. The text is split at U+001F (unit
/// separator) into what a person typed as a secret, the issuer and the account name.
#[derive(Arbitrary, Debug)]
struct Input<'a> {
    algorithm: u8,
    digits: u32,
    period: u64,
    secret_len: u8,
    secret: [u8; 40],
    text: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let mut parts = input.text.splitn(3, '\u{1f}');
    let typed = parts.next().unwrap_or_default();
    let issuer = parts.next().unwrap_or("twostep");
    let account = parts.next().unwrap_or("alice@example.com");
    let secret = &input.secret[..usize::from(input.secret_len) % (input.secret.len() + 1)];

    // Arbitrary text: no panic; whatever decodes re-encodes to a string that decodes alike.
    if let Some(bytes) = base32_decode(typed) {
        assert!(!bytes.is_empty(), "decoded {typed:?} to nothing");
        assert_eq!(base32_decode(&base32_encode(&bytes)).as_deref(), Some(bytes.as_slice()));
    }

    // Round trip: encode → decode gives the input back (empty secrets are refused by design).
    let encoded = base32_encode(secret);
    assert!(encoded.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)), "{encoded:?}");
    let want = (!secret.is_empty()).then_some(secret);
    assert_eq!(base32_decode(&encoded).as_deref(), want, "plain {encoded:?}");
    let grouped = group_for_typing(&encoded);
    assert_eq!(base32_decode(&grouped).as_deref(), want, "grouped {grouped:?}");
    assert_eq!(base32_decode(&grouped.to_lowercase()).as_deref(), want, "lower case {grouped:?}");

    // otpauth URI: plain ASCII, no raw separators from the names, exactly one label separator.
    let algorithm = [OtpAlgorithm::Sha1, OtpAlgorithm::Sha256, OtpAlgorithm::Sha512][usize::from(input.algorithm % 3)];
    let params = TotpParams { algorithm, digits: input.digits, period: input.period };
    let uri = otpauth_uri(issuer, account, secret, params);
    assert!(uri.starts_with("otpauth://totp/"), "{uri:?}");
    assert!(uri.bytes().all(|b| b.is_ascii_graphic()), "{uri:?}");
    assert_eq!(uri.matches(':').count(), 2, "{uri:?}");
    assert_eq!(uri.matches('?').count(), 1, "{uri:?}");
    assert!(!uri.contains('#'), "{uri:?}");
    assert!(uri.contains(&format!("?secret={encoded}&issuer=")), "{uri:?}");

    // The QR codes of such URIs are fuzzed by the qr_code target: they are ~1000 times slower.
});
