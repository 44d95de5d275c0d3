//! What a companion device sends at push approval, all attacker-chosen: a public key, signatures,
//! the signed request's method, path, timestamp and body, and a Web Push subscription. No panic on
//! arbitrary input; a signature made by a real key over the fuzzed request verifies, and no longer
//! verifies once the body, the path or the timestamp changes. Fields are split at 0x1f.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use twostep_domain::factors::push::{WebPushSubscription, device_message, pairing_message, parse_public_key, signature_valid};

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

fuzz_target!(|data: &[u8]| {
    let fields: Vec<&[u8]> = data.splitn(7, |b| *b == 0x1f).collect();
    let field = |i: usize| fields.get(i).copied().unwrap_or_default();
    let text = |i: usize| String::from_utf8_lossy(field(i)).into_owned();
    let (key_text, sig_text, method, path, ts, body, sub) =
        (text(0), text(1), text(2), text(3), text(4), field(5), field(6));

    // Whatever a device claims as its key and signature: an answer, never a panic.
    if let Ok((bytes, key)) = parse_public_key(&key_text) {
        assert_eq!(bytes.len(), 65);
        let _ = signature_valid(&key, &device_message(&method, &path, &ts, body), &sig_text);
        let _ = signature_valid(&key, &pairing_message(&sig_text, &key_text), &sig_text);
    }

    // A real signature over exactly this request verifies; any change breaks it.
    let signer = SigningKey::from_slice(&[7u8; 32]).expect("a valid scalar");
    let (_, key) = parse_public_key(&b64(signer.verifying_key().to_encoded_point(false).as_bytes())).expect("own key");
    let message = device_message(&method, &path, &ts, body);
    let sig: Signature = signer.sign(&message);
    let sig = b64(&sig.to_bytes());
    assert!(signature_valid(&key, &message, &sig));
    let mut other = body.to_vec();
    other.push(0);
    assert!(!signature_valid(&key, &device_message(&method, &path, &ts, &other), &sig));
    assert!(!signature_valid(&key, &device_message(&method, &format!("{path}/"), &ts, body), &sig));
    assert!(!signature_valid(&key, &device_message(&method, &path, &format!("{ts}0"), body), &sig));

    // A subscription as JSON: parsed or refused, and a refused one never slips through.
    if let Ok(s) = serde_json::from_slice::<WebPushSubscription>(sub) {
        if s.check(false).is_ok() {
            assert!(s.endpoint.starts_with("https://"), "{:?}", s.endpoint);
        }
        let _ = s.check(true);
    }
});
