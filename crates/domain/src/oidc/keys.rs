//! Signing keys for ID tokens: RS256 always (many relying parties accept
//! nothing else), ES256 and EdDSA for clients that ask. A key's `kid` is its
//! RFC 7638 thumbprint, so the published key names itself.
//!
//! Signing and verifying go through `jsonwebtoken` (over `ring`, whose RSA
//! signing is constant-time). Key generation needs no such care — it runs
//! once, on the operator's command or the first sign-in — so RSA keys are
//! made with the `rsa` crate (RUSTSEC-2023-0071 concerns its private-key
//! operations on attacker-timed requests, which generation is not), and
//! EC keys with `p256`.

use data_encoding::BASE64URL_NOPAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::ports::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

impl Alg {
    pub const ALL: [Self; 3] = [Self::Rs256, Self::Es256, Self::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    fn jwt(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("the stored key is unusable: {0}")]
    Stored(String),
}

/// A new key: its thumbprint, its public JWK (JSON) and its private DER.
pub struct NewKey {
    pub kid: String,
    pub public_jwk: String,
    pub private_der: Zeroizing<Vec<u8>>,
}

/// `rand_core` over the domain's random port, for the RSA generator.
struct PortRng<'a>(&'a dyn Rng);

impl rand::RngCore for PortRng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl rand::CryptoRng for PortRng<'_> {}

fn b64(bytes: &[u8]) -> String {
    BASE64URL_NOPAD.encode(bytes)
}

/// PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410 §7): a fixed prefix.
const ED25519_PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

pub fn generate(alg: Alg, rng: &dyn Rng) -> Result<NewKey, KeyError> {
    match alg {
        Alg::Rs256 => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            use rsa::traits::PublicKeyParts;
            let key =
                rsa::RsaPrivateKey::new(&mut PortRng(rng), 2048).map_err(|e| KeyError::Generate(e.to_string()))?;
            let der = key.to_pkcs1_der().map_err(|e| KeyError::Generate(e.to_string()))?;
            let (n, e) = (b64(&key.n().to_bytes_be()), b64(&key.e().to_bytes_be()));
            // RFC 7638 §3.2: the required members, in lexicographic order, no spaces.
            let kid = thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
            let jwk = serde_json::json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e});
            Ok(NewKey { kid, public_jwk: jwk.to_string(), private_der: Zeroizing::new(der.as_bytes().to_vec()) })
        }
        Alg::Es256 => {
            use p256::elliptic_curve::sec1::ToEncodedPoint;
            use p256::pkcs8::EncodePrivateKey;
            let secret = loop {
                let mut bytes = Zeroizing::new([0u8; 32]);
                rng.fill(bytes.as_mut());
                // Fewer than 2⁻³² of draws fall outside the scalar field.
                if let Ok(k) = p256::SecretKey::from_slice(bytes.as_ref()) {
                    break k;
                }
            };
            let der = secret.to_pkcs8_der().map_err(|e| KeyError::Generate(e.to_string()))?;
            let point = secret.public_key().to_encoded_point(false);
            let (Some(x), Some(y)) = (point.x(), point.y()) else {
                return Err(KeyError::Generate("P-256 point without coordinates".into()));
            };
            let (x, y) = (b64(x), b64(y));
            let kid = thumbprint(&format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#));
            let jwk = serde_json::json!({"kty": "EC", "use": "sig", "alg": "ES256", "kid": kid, "crv": "P-256", "x": x, "y": y});
            Ok(NewKey { kid, public_jwk: jwk.to_string(), private_der: Zeroizing::new(der.as_bytes().to_vec()) })
        }
        Alg::EdDsa => {
            let mut seed = Zeroizing::new([0u8; 32]);
            rng.fill(seed.as_mut());
            let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed.as_ref())
                .map_err(|e| KeyError::Generate(e.to_string()))?;
            let x = b64(ring::signature::KeyPair::public_key(&pair).as_ref());
            let kid = thumbprint(&format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#));
            let jwk =
                serde_json::json!({"kty": "OKP", "use": "sig", "alg": "EdDSA", "kid": kid, "crv": "Ed25519", "x": x});
            let mut der = Zeroizing::new(ED25519_PKCS8_PREFIX.to_vec());
            der.extend_from_slice(seed.as_ref());
            Ok(NewKey { kid, public_jwk: jwk.to_string(), private_der: der })
        }
    }
}

fn thumbprint(canonical: &str) -> String {
    b64(&Sha256::digest(canonical.as_bytes()))
}

/// A compact JWS of `claims` under the private key `der`.
pub fn sign<T: Serialize>(alg: Alg, kid: &str, der: &[u8], claims: &T) -> Result<String, KeyError> {
    let key = match alg {
        Alg::Rs256 => EncodingKey::from_rsa_der(der),
        Alg::Es256 => EncodingKey::from_ec_der(der),
        Alg::EdDsa => EncodingKey::from_ed_der(der),
    };
    let mut header = Header::new(alg.jwt());
    header.kid = Some(kid.to_owned());
    header.typ = Some("JWT".into());
    jsonwebtoken::encode(&header, claims, &key).map_err(|e| KeyError::Sign(e.to_string()))
}

/// The `kid` a token's header names, unverified.
pub fn kid_of(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok()?.kid
}

/// Checks a token we signed against the published key `public_jwk`: the
/// signature and the issuer only (an `id_token_hint` may have expired).
pub fn verify_own<T: DeserializeOwned>(token: &str, public_jwk: &str, issuer: &str) -> Option<T> {
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(public_jwk).ok()?;
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    let alg = jsonwebtoken::decode_header(token).ok()?.alg;
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.set_required_spec_claims(&["iss", "sub"]);
    v.set_issuer(&[issuer]);
    jsonwebtoken::decode::<T>(token, &key, &v).ok().map(|d| d.claims)
}

/// The left half of the SHA-256 of a token, as `at_hash` (OIDC Core §3.1.3.6)
/// for the SHA-256 algorithms; EdDSA tokens use the same by convention.
pub fn half_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    b64(&digest[..16])
}
