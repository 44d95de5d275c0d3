//! The message body: RFC 8291's encryption on RFC 8188's `aes128gcm`.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn parse_keys(keys: &WebPushKeys) -> Result<(PublicKey, Zeroizing<[u8; AUTH_LEN]>), WebPushError> {
    keys.decode().map_err(|reason| WebPushError::InvalidSubscription(reason.into()))
}

/// The content key and nonce of RFC 8291 §3.4 (IKM from the ECDH secret and
/// the auth secret, bound to both public keys) and RFC 8188 §2.2.
pub(super) struct RecordKeys {
    cek: Zeroizing<[u8; 16]>,
    nonce: [u8; 12],
}

pub(super) fn record_keys(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> RecordKeys {
    const OK: &str = "HKDF-SHA-256 can expand to 32 bytes or fewer";
    let mut ikm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(auth), ecdh_secret)
        .expand_multi_info(&[b"WebPush: info\0", ua_public, as_public], ikm.as_mut_slice())
        .expect(OK);
    let prk = Hkdf::<Sha256>::new(Some(salt), ikm.as_slice());
    let mut cek = Zeroizing::new([0u8; 16]);
    prk.expand(b"Content-Encoding: aes128gcm\0", cek.as_mut_slice()).expect(OK);
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce).expect(OK);
    RecordKeys { cek, nonce }
}

pub(super) fn encrypt_for(
    ua_public: &PublicKey,
    auth: &[u8; AUTH_LEN],
    payload: &[u8],
    as_secret: &SecretKey,
    salt: &[u8; SALT_LEN],
) -> Result<Vec<u8>, WebPushError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(WebPushError::Permanent(format!(
            "payload of {} bytes is over Web Push's {MAX_PAYLOAD}-byte limit",
            payload.len()
        )));
    }
    let as_public = as_secret.public_key().to_encoded_point(false);
    let ua_point = ua_public.to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua_public.as_affine());
    let keys = record_keys(shared.raw_secret_bytes(), auth, ua_point.as_bytes(), as_public.as_bytes(), salt);

    let mut record = Zeroizing::new(Vec::with_capacity(payload.len() + 1));
    record.extend_from_slice(payload);
    record.push(LAST_RECORD);
    let ciphertext = Aes128Gcm::new(Key::<Aes128Gcm>::from_slice(keys.cek.as_slice()))
        .encrypt(Nonce::from_slice(&keys.nonce), record.as_slice())
        .map_err(|_| WebPushError::Permanent("payload not encrypted".into()))?;

    let mut body = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65); // idlen: the key id is the ephemeral public key
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&ciphertext);
    Ok(body)
}

/// The `aes128gcm` body [`WebPushSender::send`] posts, with the ephemeral
/// private key (`as_private`, a 32-byte scalar) and `salt` chosen by the
/// caller instead of at random. For known-answer tests (RFC 8291's example);
/// reusing a key and salt for two messages would reuse the content key.
pub fn encrypt(
    keys: &WebPushKeys,
    payload: &[u8],
    as_private: &[u8],
    salt: &[u8; SALT_LEN],
) -> Result<Vec<u8>, WebPushError> {
    let (ua_public, auth) = parse_keys(keys)?;
    let as_secret = (as_private.len() == 32)
        .then(|| SecretKey::from_slice(as_private).ok())
        .flatten()
        .ok_or_else(|| WebPushError::Permanent("as_private is not a P-256 private scalar".into()))?;
    encrypt_for(&ua_public, &auth, payload, &as_secret, salt)
}

/// Opens an `aes128gcm` Web Push body as the subscriber would, given its
/// private key (the 32-byte scalar behind `p256dh`) and the auth secret.
/// twostep never receives pushes: this exists for receivers written in Rust
/// (a CLI companion behind a push service) and for tests, which can play the
/// subscriber with a `VapidKey::generate()` key pair: its
/// `public_key_base64url()` is a valid `p256dh`, and its `to_base64url()`
/// decodes to the scalar this takes. Only single-record bodies (all RFC 8291
/// allows) are accepted; padding is removed.
pub fn decrypt(ua_private: &[u8], auth_secret: &[u8], body: &[u8]) -> Result<Vec<u8>, DecryptError> {
    if ua_private.len() != 32 {
        return Err(DecryptError("the private key must be a 32-byte scalar"));
    }
    let ua_secret =
        SecretKey::from_slice(ua_private).map_err(|_| DecryptError("the private key is not a P-256 scalar"))?;
    if auth_secret.len() != AUTH_LEN {
        return Err(DecryptError("the auth secret must be 16 bytes"));
    }
    if body.len() < HEADER_LEN {
        return Err(DecryptError("shorter than the aes128gcm header"));
    }
    let (salt, rest) = body.split_at(SALT_LEN);
    let (rs, rest) = rest.split_at(4);
    let record_size = u32::from_be_bytes([rs[0], rs[1], rs[2], rs[3]]);
    let (idlen, rest) = rest.split_at(1);
    if usize::from(idlen[0]) != POINT_LEN {
        return Err(DecryptError("the key id is not a 65-byte public key"));
    }
    let (key_id, ciphertext) = rest.split_at(POINT_LEN);
    let as_public = PublicKey::from_sec1_bytes(key_id).map_err(|_| DecryptError("the key id is not a P-256 point"))?;
    if ciphertext.len() < TAG_LEN + 1 || record_size < 18 {
        return Err(DecryptError("the record is too short"));
    }
    if usize::try_from(record_size).is_ok_and(|rs| ciphertext.len() > rs) {
        return Err(DecryptError("more than one record"));
    }
    let ua_point = ua_secret.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), as_public.as_affine());
    let keys = record_keys(shared.raw_secret_bytes(), auth_secret, ua_point.as_bytes(), key_id, salt);
    let record = Zeroizing::new(
        Aes128Gcm::new(Key::<Aes128Gcm>::from_slice(keys.cek.as_slice()))
            .decrypt(Nonce::from_slice(&keys.nonce), ciphertext)
            .map_err(|_| DecryptError("authentication failed"))?,
    );
    // RFC 8188 §2: the plaintext, one delimiter, then any number of zeros.
    match record.iter().rposition(|&b| b != 0) {
        Some(end) if record[end] == LAST_RECORD => Ok(record[..end].to_vec()),
        _ => Err(DecryptError("no last-record delimiter")),
    }
}
