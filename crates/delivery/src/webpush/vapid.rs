//! VAPID (RFC 8292): the server key browsers subscribe with and the
//! signed token every push request carries.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The server's VAPID key pair (ES256, P-256). Browsers learn the public
/// half as `applicationServerKey` when they subscribe, so replacing this key
/// silently orphans every existing subscription: store it, don't regenerate.
#[derive(Clone)]
pub struct VapidKey {
    signing: SigningKey,
}

impl fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKey").field("public", &self.public_key_base64url()).finish_non_exhaustive()
    }
}

impl VapidKey {
    pub fn generate() -> Self {
        Self { signing: SigningKey::random(&mut OsRng) }
    }

    /// The form [`Self::to_base64url`] writes: the 32-byte private scalar,
    /// base64url without padding (the format of `web-push generate-vapid-keys`
    /// and most other tools).
    pub fn from_base64url(private_scalar_b64url: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::Invalid { field: "webpush.vapid_private_key", reason: reason.into() };
        let bytes = Zeroizing::new(decode_b64url(private_scalar_b64url).ok_or_else(|| invalid("not base64url"))?);
        if bytes.len() != 32 {
            return Err(invalid("must be 32 bytes: a P-256 private scalar"));
        }
        let signing = SigningKey::from_slice(&bytes)
            .map_err(|_| invalid("not a P-256 private key (zero, or not below the order)"))?;
        Ok(Self { signing })
    }

    pub fn to_base64url(&self) -> String {
        let bytes = Zeroizing::new(<[u8; 32]>::from(self.signing.to_bytes()));
        BASE64URL_NOPAD.encode(bytes.as_slice())
    }

    /// The uncompressed point, base64url: what the companion page passes to
    /// `pushManager.subscribe({ applicationServerKey })`.
    pub fn public_key_base64url(&self) -> String {
        BASE64URL_NOPAD.encode(self.signing.verifying_key().to_encoded_point(false).as_bytes())
    }
}

pub(super) fn check_subject(subject: &str) -> Result<(), String> {
    if subject.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    if let Some(address) = subject.strip_prefix("mailto:") {
        return match address.split_once('@') {
            Some((user, domain)) if !user.is_empty() && !domain.is_empty() => Ok(()),
            _ => Err("a mailto: subject needs an address".into()),
        };
    }
    match reqwest::Url::parse(subject) {
        Ok(url) if url.scheme() == "https" && url.host_str().is_some() => Ok(()),
        _ => Err("must be a mailto: or https: URL (RFC 8292 §2.1)".into()),
    }
}

/// The VAPID JWT (RFC 8292 §2): ES256 over `{"typ":"JWT","alg":"ES256"}`
/// and `{"aud","exp","sub"}`, in that order. p256 signs with RFC 6979
/// nonces, so the same inputs give the same token.
pub fn vapid_jwt(key: &VapidKey, aud: &str, exp: i64, sub: &str) -> String {
    let header = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
    // Written out rather than derived so the member order (RFC 8292's
    // example's) cannot change with a serde_json feature elsewhere.
    let claims =
        format!(r#"{{"aud":{},"exp":{exp},"sub":{}}}"#, serde_json::Value::from(aud), serde_json::Value::from(sub));
    let signing_input = format!("{header}.{}", BASE64URL_NOPAD.encode(claims.as_bytes()));
    let signature: Signature = key.signing.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", BASE64URL_NOPAD.encode(&signature.to_bytes()))
}

/// The claims of a VAPID JWT whose signature held.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct VapidClaims {
    pub aud: String,
    pub exp: i64,
    pub sub: String,
}

/// Checks a VAPID JWT the way a push service does: an ES256 header, a valid
/// signature under `public_key_b64url` (the `k=` value), and `aud`/`exp`/`sub`
/// claims, which are returned for the caller to judge (it knows the expected
/// audience and the time). For tests and local push services.
pub fn verify_vapid_jwt(jwt: &str, public_key_b64url: &str) -> Option<VapidClaims> {
    let mut parts = jwt.split('.');
    let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: serde_json::Value = serde_json::from_slice(&BASE64URL_NOPAD.decode(header.as_bytes()).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "ES256" {
        return None;
    }
    let key = VerifyingKey::from_sec1_bytes(&decode_b64url(public_key_b64url)?).ok()?;
    let signature = Signature::from_slice(&BASE64URL_NOPAD.decode(signature.as_bytes()).ok()?).ok()?;
    let signing_input_len = jwt.len() - jwt.rsplit('.').next()?.len() - 1;
    key.verify(&jwt.as_bytes()[..signing_input_len], &signature).ok()?;
    serde_json::from_slice(&BASE64URL_NOPAD.decode(claims.as_bytes()).ok()?).ok()
}
