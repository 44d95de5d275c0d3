//! The provider's pure rules: what a redirect URI may be, the PKCE check,
//! scopes, and what `acr` and `amr` truthfully say about a session.

use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const ACR_1FA: &str = "urn:twostep:1fa";
pub const ACR_2FA: &str = "urn:twostep:2fa";

/// Scopes a client may be granted; anything else asked for is left out
/// (OIDC Core §3.1.2.1: unknown scopes are ignored, not refused).
pub const SCOPES: [&str; 5] = ["openid", "email", "profile", "offline_access", "groups"];

/// Why a redirect URI cannot be registered.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("{0:?} is not an absolute URL")]
    NotAbsolute(String),
    #[error("{0:?} must use https (plain http is allowed only on loopback)")]
    NotHttps(String),
    #[error("{0:?} must not carry a fragment or a wildcard")]
    Pattern(String),
}

/// Exact-match URIs only, so what is registered must be a complete URL:
/// https, or http on a loopback host for local development (RFC 8252 §7.3).
pub fn check_redirect_uri(uri: &str) -> Result<(), UriError> {
    let owned = || uri.to_owned();
    if uri.contains('*') || uri.contains('#') {
        return Err(UriError::Pattern(owned()));
    }
    let url = url::Url::parse(uri).map_err(|_| UriError::NotAbsolute(owned()))?;
    let host = url.host_str().ok_or_else(|| UriError::NotAbsolute(owned()))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(host) => Ok(()),
        _ => Err(UriError::NotHttps(owned())),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Byte-for-byte: no normalisation, no prefix or pattern matching (the
/// open-redirect and code-leak holes of lenient matchers).
pub fn redirect_matches(registered: &[String], given: &str) -> bool {
    registered.iter().any(|r| r == given)
}

/// A code challenge as RFC 7636 §4.2 makes one with S256: 43 base64url characters.
pub fn challenge_well_formed(challenge: &str) -> bool {
    challenge.len() == 43 && BASE64URL_NOPAD.decode(challenge.as_bytes()).is_ok_and(|b| b.len() == 32)
}

/// RFC 7636 §4.6 with S256, compared in constant time. A verifier outside
/// 43–128 unreserved characters is refused before hashing.
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let computed = BASE64URL_NOPAD.encode(&Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

/// The stored form of a client secret, a code or a token.
pub fn sha256_hex(secret: &str) -> String {
    HEXLOWER.encode(&Sha256::digest(secret.as_bytes()))
}

/// Hashes both sides to equal length first, so the comparison takes the
/// same time whatever was presented.
pub fn secret_matches(stored_hash: &str, presented: &str) -> bool {
    sha256_hex(presented).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// The granted scope: the known scopes asked for, in a fixed order; `None`
/// without `openid` (this is an OpenID provider, not a bare OAuth server).
pub fn granted_scope(requested: &str) -> Option<String> {
    let asked: Vec<&str> = requested.split_ascii_whitespace().collect();
    if !asked.contains(&"openid") {
        return None;
    }
    Some(SCOPES.iter().filter(|s| asked.contains(s)).copied().collect::<Vec<_>>().join(" "))
}

pub fn has_scope(scope: &str, one: &str) -> bool {
    scope.split_ascii_whitespace().any(|s| s == one)
}

/// RFC 8176 values for how a session's account proved itself: the
/// password, then the second-factor method (by the name sign-in uses, each
/// factor saying its own value), and `mfa` once there are two. A passkey
/// alone is possession and a PIN or biometric: `hwk` and `user`.
pub fn amr(password: bool, second_factor: Option<&str>) -> Vec<&'static str> {
    let mut amr = Vec::new();
    if password {
        amr.push("pwd");
    }
    match second_factor {
        Some(PASSKEY) => amr.extend(["hwk", "user"]),
        // Anything unnamed (an older log) was a one-time password.
        Some(method) => amr.push(crate::factors::Method::parse(method).map_or("otp", |m| m.info().amr)),
        None => {}
    }
    if amr.len() >= 2 {
        amr.push("mfa");
    }
    amr
}

/// What `SessionFacts::second_factor` says for a session a passkey began.
pub const PASSKEY: &str = "passkey";

pub fn acr(second_factor: bool) -> &'static str {
    if second_factor { ACR_2FA } else { ACR_1FA }
}

/// Whether the client asked (through `acr_values`) for two factors.
pub fn wants_two_factor(acr_values: Option<&str>) -> bool {
    acr_values.is_some_and(|v| v.split_ascii_whitespace().any(|a| a == ACR_2FA))
}
