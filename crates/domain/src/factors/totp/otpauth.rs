//! What an authenticator app scans or reads at enrolment: the `otpauth://` URI of Google
//! Authenticator's Key Uri Format, the secret in RFC 4648 Base32, and the URI as a QR code.
//!
//! The URI has exactly the shape of security doc §2.1 (SEC-20) for default parameters, so every app
//! can read it; only parameters that differ from RFC 6238's defaults are added. The issuer appears
//! both as the label prefix and as the `issuer` parameter, as the Key Uri Format recommends. QR
//! codes use error correction level M (ISO/IEC 18004) and a 4-module quiet zone, which phone
//! cameras need, and are rendered here from the module matrix so no image stack is pulled in.
//! Nothing here keeps the secret: callers own it and show the result once.

use std::fmt::Write as _;
use std::sync::LazyLock;

use data_encoding::{BASE32_NOPAD, Encoding};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use qrcode::{Color, EcLevel, QrCode};

use crate::factors::totp::otp::TotpParams;

/// Escaped in the label and the issuer: everything but RFC 3986 unreserved characters and '@'. ':'
/// separates issuer from account, so it must not appear raw in either part; '@' is legal in a URI
/// path and query, and Google Authenticator shows it as typed, so e-mail accounts stay readable.
const LABEL: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'@');

/// Modules of light margin around the symbol, as ISO/IEC 18004 requires for reliable scanning.
const QUIET_ZONE: usize = 4;
/// Target SVG size in CSS pixels; each module gets a whole number of pixels near this total.
const SVG_TARGET_PX: usize = 200;
/// Largest PNG module size, so a caller's typo cannot ask for gigabytes (version 40 at 32 px is
/// 5920 × 5920).
pub const MAX_PNG_SCALE: u32 = 32;

/// Seeds typed from other services may carry non-zero bits after the last byte (RFC 4648 §3.5 lets
/// decoders refuse them); authenticator apps ignore them, so do we.
static BASE32_LENIENT: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = BASE32_NOPAD.specification();
    spec.check_trailing_bits = false;
    spec.encoding().expect("a copy of BASE32_NOPAD's own specification is valid")
});

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("data too long for a QR code")]
    TooLong,
}

/// `otpauth://totp/<Issuer>:<account>?secret=<BASE32 unpadded uppercase>&issuer=<Issuer>` exactly
/// for default params (Google Authenticator's Key Uri Format).
///
/// Label parts and the `issuer` parameter are percent-encoded (space as `%20`, ':' as `%3A`); '@'
/// stays as typed. For non-default params `&algorithm=…&digits=…&period=…` follow, each only when
/// it differs from SHA1 / 6 / 30.
#[must_use]
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8], params: TotpParams) -> String {
    let issuer = utf8_percent_encode(issuer, LABEL).to_string();
    let account = utf8_percent_encode(account, LABEL);
    let secret = base32_encode(secret);
    let mut uri = format!("otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}");
    let default = TotpParams::DEFAULT;
    if params.algorithm != default.algorithm {
        uri.push_str("&algorithm=");
        uri.push_str(params.algorithm.as_str());
    }
    if params.digits != default.digits {
        let _ = write!(uri, "&digits={}", params.digits);
    }
    if params.period != default.period {
        let _ = write!(uri, "&period={}", params.period);
    }
    uri
}

/// Base32 (RFC 4648, uppercase, no padding), as authenticator apps expect.
#[must_use]
pub fn base32_encode(secret: &[u8]) -> String {
    BASE32_NOPAD.encode(secret)
}

/// Decode user-typed Base32: any case, whitespace and '=' padding ignored; `None` when invalid or
/// empty.
#[must_use]
pub fn base32_decode(input: &str) -> Option<Vec<u8>> {
    let cleaned: String =
        input.chars().filter(|c| !c.is_whitespace() && *c != '=').map(|c| c.to_ascii_uppercase()).collect();
    if cleaned.is_empty() {
        return None;
    }
    BASE32_LENIENT.decode(cleaned.as_bytes()).ok()
}

/// The secret grouped in blocks of 4 for typing by hand: "JBSW Y3DP EHPK 3PXP".
#[must_use]
pub fn group_for_typing(base32: &str) -> String {
    let chars: Vec<char> = base32.chars().collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

/// The module matrix of `data` at level M: `width` × `width` booleans, `true` for dark.
struct Matrix {
    width: usize,
    dark: Vec<bool>,
}

impl Matrix {
    fn encode(data: &str) -> Result<Self, QrError> {
        // With automatic version choice the only failure left is running out of capacity.
        let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).map_err(|_| QrError::TooLong)?;
        Ok(Self { width: code.width(), dark: code.to_colors().into_iter().map(|c| c == Color::Dark).collect() })
    }

    /// Whether the module at (x, y) of the symbol with its quiet zone is dark.
    fn is_dark(&self, x: usize, y: usize) -> bool {
        let (Some(x), Some(y)) = (x.checked_sub(QUIET_ZONE), y.checked_sub(QUIET_ZONE)) else {
            return false;
        };
        x < self.width && y < self.width && self.dark[y * self.width + x]
    }

    fn size_with_quiet_zone(&self) -> usize {
        self.width + 2 * QUIET_ZONE
    }
}

/// QR code (error correction level M) of `data` as a standalone inline `<svg>` element.
///
/// It has a viewBox in modules, a 4-module quiet zone, a size near 200 px, crisp edges,
/// `role="img"` and an aria-label.
///
/// # Errors
/// [`QrError::TooLong`] when `data` does not fit in a QR code.
pub fn qr_svg(data: &str) -> Result<String, QrError> {
    let m = Matrix::encode(data)?;
    let n = m.size_with_quiet_zone();
    // Whole pixels per module, or crispEdges would make modules uneven.
    let px = n * ((SVG_TARGET_PX + n / 2) / n).max(1);
    let mut path = String::new();
    for y in 0..n {
        let mut x = 0;
        while x < n {
            if m.is_dark(x, y) {
                // One rectangle per horizontal run keeps the path a few times smaller.
                let start = x;
                while x < n && m.is_dark(x, y) {
                    x += 1;
                }
                let run = x - start;
                let _ = write!(path, "M{start} {y}h{run}v1h-{run}z");
            } else {
                x += 1;
            }
        }
    }
    Ok(format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{px}" height="{px}""#,
            r#" viewBox="0 0 {n} {n}" shape-rendering="crispEdges" role="img""#,
            r#" aria-label="QR code for your authenticator app">"#,
            r##"<rect width="{n}" height="{n}" fill="#fff"/><path fill="#000" d="{path}"/></svg>"##
        ),
        px = px,
        n = n,
        path = path
    ))
}

/// The same QR code as a 1-bit grayscale PNG, each module `scale` × `scale` pixels, quiet zone 4
/// modules.
///
/// `scale` is clamped to `1..=MAX_PNG_SCALE`.
///
/// # Errors
/// [`QrError::TooLong`] when `data` does not fit in a QR code.
///
/// # Panics
/// Only if the `png` encoder failed to write a valid image into memory, which it cannot.
pub fn qr_png(data: &str, scale: u32) -> Result<Vec<u8>, QrError> {
    let m = Matrix::encode(data)?;
    let scale = scale.clamp(1, MAX_PNG_SCALE) as usize;
    let side = m.size_with_quiet_zone() * scale;
    // 1-bit rows are packed most significant bit first, padded to whole bytes; 1 is white.
    let row_bytes = side.div_ceil(8);
    let mut pixels = vec![0_u8; row_bytes * side];
    for (py, row) in pixels.chunks_mut(row_bytes).enumerate() {
        for px in 0..side {
            if !m.is_dark(px / scale, py / scale) {
                row[px / 8] |= 0x80 >> (px % 8);
            }
        }
    }
    let side = u32::try_from(side).expect("at most 185 modules × MAX_PNG_SCALE pixels");
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    // A well-formed image written into a Vec has no failure mode: no I/O, no zero size.
    let mut writer = encoder.write_header().expect("PNG header into a Vec");
    writer.write_image_data(&pixels).expect("PNG data into a Vec");
    writer.finish().expect("PNG trailer into a Vec");
    Ok(out)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::factors::totp::otp::OtpAlgorithm;

    const EXAMPLE: [u8; 10] = [0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x21, 0xde, 0xad, 0xbe, 0xef];

    // SEC-20 and security doc §4.3: the Base32 example and its exact URI.
    #[test]
    fn sec20_example_uri_is_exact() {
        assert_eq!(base32_encode(&EXAMPLE), "JBSWY3DPEHPK3PXP");
        assert_eq!(base32_decode("JBSWY3DPEHPK3PXP").unwrap(), EXAMPLE);
        assert_eq!(
            otpauth_uri("Example", "alice@google.com", &EXAMPLE, TotpParams::DEFAULT),
            "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"
        );
    }

    #[test]
    fn label_and_issuer_are_percent_encoded() {
        assert_eq!(
            otpauth_uri("Acme Co", "bob smith", &EXAMPLE, TotpParams::DEFAULT),
            "otpauth://totp/Acme%20Co:bob%20smith?secret=JBSWY3DPEHPK3PXP&issuer=Acme%20Co"
        );
        let uri = otpauth_uri("A:B&c=d", "x:y?z#", &EXAMPLE, TotpParams::DEFAULT);
        assert_eq!(uri, "otpauth://totp/A%3AB%26c%3Dd:x%3Ay%3Fz%23?secret=JBSWY3DPEHPK3PXP&issuer=A%3AB%26c%3Dd");
        assert!(otpauth_uri("Zürich", "a", &EXAMPLE, TotpParams::DEFAULT).contains("Z%C3%BCrich:a"));
    }

    #[test]
    fn only_non_default_params_are_added() {
        let p = TotpParams { algorithm: OtpAlgorithm::Sha256, digits: 8, period: 60 };
        assert!(otpauth_uri("E", "a", &EXAMPLE, p).ends_with("&issuer=E&algorithm=SHA256&digits=8&period=60"));
        let p = TotpParams { digits: 8, ..TotpParams::DEFAULT };
        assert!(otpauth_uri("E", "a", &EXAMPLE, p).ends_with("&issuer=E&digits=8"));
    }

    #[test]
    fn base32_decode_accepts_what_people_type() {
        for typed in ["jbswy3dpehpk3pxp", "JBSW Y3DP EHPK 3PXP", "JBSWY3DPEHPK3PXP======", " JbSw Y3dP\tEHPK 3PXP\n"] {
            assert_eq!(base32_decode(typed).unwrap(), EXAMPLE, "{typed:?}");
        }
        assert_eq!(base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap(), b"12345678901234567890");
        // 26 characters carry 2 spare bits; non-zero ones are tolerated.
        assert_eq!(base32_decode("AAAAAAAAAAAAAAAAAAAAAAAAAD").unwrap(), vec![0; 16]);
    }

    #[test]
    fn base32_decode_refuses_invalid() {
        for bad in ["", "   ", "====", "JBSWY3DPEHPK3PX1", "JBSWY3DPEHPK3PX0", "JBSWY3DPEHPK3PX8", "A", "ABC"] {
            assert_eq!(base32_decode(bad), None, "{bad:?}");
        }
        assert_eq!(base32_decode("JBSWY3DPÉHPK3PXP"), None);
    }

    #[test]
    fn groups_of_four() {
        assert_eq!(group_for_typing("JBSWY3DPEHPK3PXP"), "JBSW Y3DP EHPK 3PXP");
        assert_eq!(group_for_typing("GEZDGNBVGY"), "GEZD GNBV GY");
        assert_eq!(group_for_typing(""), "");
    }

    #[test]
    fn svg_is_an_accessible_inline_element() {
        let svg = qr_svg("otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP").unwrap();
        assert!(svg.starts_with("<svg "));
        assert!(svg.ends_with("</svg>"));
        let n = Matrix::encode("otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP")
            .unwrap()
            .size_with_quiet_zone();
        assert!(svg.contains(&format!(r#"viewBox="0 0 {n} {n}""#)));
        assert!(svg.contains(r#"shape-rendering="crispEdges""#));
        assert!(svg.contains(r#"role="img" aria-label="QR code for your authenticator app""#));
        // The top-left finder pattern starts right after the quiet zone.
        assert!(svg.contains("M4 4h7v1h-7z"));
    }

    #[test]
    fn png_decodes_to_expected_size() {
        let uri = otpauth_uri("Example", "alice@google.com", &EXAMPLE, TotpParams::DEFAULT);
        let n = Matrix::encode(&uri).unwrap().size_with_quiet_zone();
        let bytes = qr_png(&uri, 5).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        let mut decoder = png::Decoder::new(bytes.as_slice());
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        let side = u32::try_from(n * 5).unwrap();
        assert_eq!((info.width, info.height), (side, side));
        let pixel = |x: usize, y: usize| buf[y * info.line_size + x];
        assert_eq!(pixel(0, 0), 255, "quiet zone is white");
        assert_eq!(pixel(4 * 5, 4 * 5), 0, "finder pattern is dark");
        assert_eq!(pixel(n * 5 - 1, n * 5 - 1), 255);
    }

    #[test]
    fn png_scale_is_clamped() {
        let n = Matrix::encode("x").unwrap().size_with_quiet_zone();
        for (scale, want) in [(0, 1), (1, 1), (u32::MAX, MAX_PNG_SCALE as usize)] {
            let bytes = qr_png("x", scale).unwrap();
            let info = png::Decoder::new(bytes.as_slice()).read_info().unwrap().info().width;
            assert_eq!(info as usize, n * want);
        }
    }

    #[test]
    fn too_long_data_is_an_error() {
        let long = "a".repeat(3000);
        assert!(matches!(qr_svg(&long), Err(QrError::TooLong)));
        assert!(matches!(qr_png(&long, 4), Err(QrError::TooLong)));
    }
}
