//! The QR code enrolment shows (`factors::otpauth::qr_svg` / `qr_png`) of the otpauth URI for
//! arbitrary issuer and account names, secrets and parameters: an image or `QrError::TooLong`,
//! never a panic. Separate from `base32_secret` because choosing the QR mask takes milliseconds per
//! symbol under the fuzzer's instrumentation, about a thousand times the cost of the rest.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use twostep_domain::factors::totp::otp::{OtpAlgorithm, TotpParams};
use twostep_domain::factors::totp::otpauth::{QrError, otpauth_uri, qr_png, qr_svg};

/// A 55-byte header, then the text (it takes the rest of the input): the issuer, U+001F (unit
/// separator), the account name. `fuzz/make_seeds.py` writes seed files in this layout.
#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Even: SVG. Odd: PNG at scale `qr / 2 % 4` (0 to 3; the clamp to 1..=32 is unit-tested, and
    /// large scales only cost time).
    qr: u8,
    algorithm: u8,
    digits: u32,
    period: u64,
    secret_len: u8,
    secret: [u8; 40],
    text: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let (issuer, account) = input.text.split_once('\u{1f}').unwrap_or(("twostep", input.text));
    let secret = &input.secret[..usize::from(input.secret_len) % (input.secret.len() + 1)];
    let algorithm = [OtpAlgorithm::Sha1, OtpAlgorithm::Sha256, OtpAlgorithm::Sha512][usize::from(input.algorithm % 3)];
    let params = TotpParams { algorithm, digits: input.digits, period: input.period };
    let uri = otpauth_uri(issuer, account, secret, params);
    if input.qr.is_multiple_of(2) {
        match qr_svg(&uri) {
            Ok(svg) => assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"), "{svg:?}"),
            Err(QrError::TooLong) => assert!(uri.len() > 1000, "a {}-byte URI refused", uri.len()),
        }
    } else {
        match qr_png(&uri, u32::from(input.qr / 2 % 4)) {
            Ok(png) => assert!(png.starts_with(b"\x89PNG\r\n\x1a\n")),
            Err(QrError::TooLong) => assert!(uri.len() > 1000, "a {}-byte URI refused", uri.len()),
        }
    }
});
