//! What devices sign and how signatures are checked.

#[allow(clippy::wildcard_imports)]
use super::*;

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// The text a device signs for each request (see the module docs).
pub fn device_message(method: &str, path: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let digest = data_encoding::HEXLOWER.encode(&Sha256::digest(body));
    format!("twostep-device-v1\n{}\n{path}\n{timestamp}\n{digest}", method.to_ascii_uppercase()).into_bytes()
}

/// The text a device signs to prove it holds its key when pairing.
pub fn pairing_message(code: &str, public_key_b64: &str) -> Vec<u8> {
    format!("twostep-pair-v1\n{code}\n{public_key_b64}").into_bytes()
}

/// Parses a base64url (unpadded) SEC1 uncompressed P-256 point.
pub fn parse_public_key(b64: &str) -> Result<(Vec<u8>, VerifyingKey), PushError> {
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(b64.trim_end_matches('=').as_bytes())
        .map_err(|_| PushError::InvalidKey)?;
    if bytes.len() != 65 || bytes[0] != 4 {
        return Err(PushError::InvalidKey);
    }
    let key = VerifyingKey::from_sec1_bytes(&bytes).map_err(|_| PushError::InvalidKey)?;
    Ok((bytes, key))
}

/// Checks a base64url IEEE P1363 (r ‖ s, 64 bytes) signature, the format
/// WebCrypto produces.
pub fn signature_valid(key: &VerifyingKey, message: &[u8], signature_b64: &str) -> bool {
    let Ok(raw) = data_encoding::BASE64URL_NOPAD.decode(signature_b64.trim_end_matches('=').as_bytes()) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&raw) else { return false };
    // WebCrypto does not normalise s; both forms are the same signature.
    let sig = sig.normalize_s().unwrap_or(sig);
    key.verify(message, &sig).is_ok()
}

/// Base64url, lenient on encoding (padding, `+` and `/`: some clients encode
/// with `btoa`); the callers are strict about what the bytes must be.
pub fn decode_b64url(text: &str) -> Option<Vec<u8>> {
    let text: String = text
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    data_encoding::BASE64URL_NOPAD.decode(text.as_bytes()).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;

    fn key() -> (SigningKey, String) {
        let sk = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let pk = sk.verifying_key().to_encoded_point(false);
        (sk, data_encoding::BASE64URL_NOPAD.encode(pk.as_bytes()))
    }

    fn sign(sk: &SigningKey, msg: &[u8]) -> String {
        let sig: Signature = sk.sign(msg);
        data_encoding::BASE64URL_NOPAD.encode(&sig.to_bytes())
    }

    #[test]
    fn a_signature_over_the_device_message_verifies_and_any_change_breaks_it() {
        let (sk, pk) = key();
        let (_, vk) = parse_public_key(&pk).unwrap();
        let msg = device_message("post", "/api/v1/push/challenges/x/answer", "1700000000", b"{\"n\":1}");
        let sig = sign(&sk, &msg);
        assert!(signature_valid(&vk, &msg, &sig));
        for other in [
            device_message("POST", "/api/v1/push/challenges/y/answer", "1700000000", b"{\"n\":1}"),
            device_message("POST", "/api/v1/push/challenges/x/answer", "1700000001", b"{\"n\":1}"),
            device_message("POST", "/api/v1/push/challenges/x/answer", "1700000000", b"{\"n\":2}"),
        ] {
            assert!(!signature_valid(&vk, &other, &sig));
        }
        assert!(!signature_valid(&vk, &msg, "not base64!"));
        assert!(!signature_valid(&vk, &msg, ""));
    }

    #[test]
    fn high_s_signatures_from_webcrypto_are_accepted() {
        let (sk, pk) = key();
        let (_, vk) = parse_public_key(&pk).unwrap();
        let msg = b"twostep";
        let sig: Signature = sk.sign(msg);
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r, -*s).unwrap();
        let b64 = data_encoding::BASE64URL_NOPAD.encode(&high.to_bytes());
        assert!(signature_valid(&vk, msg, &b64));
    }

    #[test]
    fn public_keys_must_be_uncompressed_p256_points() {
        let (_, pk) = key();
        assert!(parse_public_key(&pk).is_ok());
        assert!(matches!(parse_public_key("AAAA"), Err(PushError::InvalidKey)));
        let mut bytes = data_encoding::BASE64URL_NOPAD.decode(pk.as_bytes()).unwrap();
        bytes[64] ^= 1; // no longer on the curve
        assert!(parse_public_key(&data_encoding::BASE64URL_NOPAD.encode(&bytes)).is_err());
    }
}
