//! Secrets typed by people and what enrolment shows (`factors::otpauth`): `base32_decode` on
//! arbitrary text, the `base32_encode` → decode round trip (also through `group_for_typing` and
//! lower case), and `otpauth_uri` + `qr_svg` / `qr_png` on arbitrary issuer and account names.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use twostep_domain::factors::otp::{OtpAlgorithm, TotpParams};
use twostep_domain::factors::otpauth::{
    QrError, base32_decode, base32_encode, group_for_typing, otpauth_uri, qr_png, qr_svg,
};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    typed: &'a str,
    secret: &'a [u8],
    issuer: &'a str,
    account: &'a str,
    algorithm: u8,
    digits: u32,
    period: u64,
    /// Kept small: a version-40 symbol at 32 px per module is 35 million pixels per run, which
    /// would only slow the fuzzer down (the clamp itself is unit-tested).
    png_scale: u8,
}

fuzz_target!(|input: Input<'_>| {
    // Arbitrary text: no panic; whatever decodes re-encodes to a string that decodes alike.
    if let Some(bytes) = base32_decode(input.typed) {
        assert!(!bytes.is_empty(), "decoded {:?} to nothing", input.typed);
        assert_eq!(base32_decode(&base32_encode(&bytes)).as_deref(), Some(bytes.as_slice()));
    }

    // Round trip: encode → decode gives the input back (empty secrets are refused by design).
    let encoded = base32_encode(input.secret);
    assert!(encoded.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)), "{encoded:?}");
    let want = (!input.secret.is_empty()).then_some(input.secret);
    assert_eq!(base32_decode(&encoded).as_deref(), want, "plain {encoded:?}");
    let grouped = group_for_typing(&encoded);
    assert_eq!(base32_decode(&grouped).as_deref(), want, "grouped {grouped:?}");
    assert_eq!(base32_decode(&grouped.to_lowercase()).as_deref(), want, "lower case {grouped:?}");

    // otpauth URI: plain ASCII, no raw separators from the names, exactly one label separator.
    let algorithm = [OtpAlgorithm::Sha1, OtpAlgorithm::Sha256, OtpAlgorithm::Sha512][usize::from(input.algorithm % 3)];
    let params = TotpParams { algorithm, digits: input.digits, period: input.period };
    let uri = otpauth_uri(input.issuer, input.account, input.secret, params);
    assert!(uri.starts_with("otpauth://totp/"), "{uri:?}");
    assert!(uri.bytes().all(|b| b.is_ascii_graphic()), "{uri:?}");
    assert_eq!(uri.matches(':').count(), 2, "{uri:?}");
    assert_eq!(uri.matches('?').count(), 1, "{uri:?}");
    assert!(!uri.contains('#'), "{uri:?}");
    assert!(uri.contains(&format!("?secret={encoded}&issuer=")), "{uri:?}");

    // QR codes of the URI (what enrolment renders) and of raw text: an image or TooLong, no panic.
    match qr_svg(&uri) {
        Ok(svg) => assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>")),
        Err(QrError::TooLong) => {}
    }
    match qr_png(&uri, u32::from(input.png_scale % 6)) {
        Ok(png) => assert!(png.starts_with(b"\x89PNG\r\n\x1a\n")),
        Err(QrError::TooLong) => {}
    }
    let _ = qr_svg(input.typed);
});
