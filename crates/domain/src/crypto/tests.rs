//! Sealing, keyed hashes and the keyring across a rotation.

use super::*;
use crate::ports::OsRng;

fn field(row: &str) -> SealedField<'_> {
    SealedField { table: "authenticators", column: "secret", row_id: row }
}

#[test]
fn sec24_seal_round_trips_and_binds_the_row() {
    let ring = Keyring::new(&MasterKey::generate(&OsRng));
    let sealed = ring.seal(b"seed bytes", field("a"), &OsRng);
    assert_eq!(ring.open(&sealed, field("a")).expect("opens"), b"seed bytes");
    // Moved to another row: refused.
    assert_eq!(ring.open(&sealed, field("b")), Err(CryptoError::Forged));
    assert!(!sealed.windows(10).any(|w| w == b"seed bytes"));
}

#[test]
fn nonces_differ_and_tampering_is_detected() {
    let ring = Keyring::new(&MasterKey::generate(&OsRng));
    let a = ring.seal(b"x", field("a"), &OsRng);
    let b = ring.seal(b"x", field("a"), &OsRng);
    assert_ne!(a, b);
    let mut t = a.clone();
    let last = t.len() - 1;
    t[last] ^= 1;
    assert_eq!(ring.open(&t, field("a")), Err(CryptoError::Forged));
    assert_eq!(ring.open(&a[..10], field("a")), Err(CryptoError::Malformed));
}

#[test]
fn another_master_key_cannot_open() {
    let a = Keyring::new(&MasterKey::generate(&OsRng));
    let b = Keyring::new(&MasterKey::generate(&OsRng));
    let sealed = a.seal(b"x", field("a"), &OsRng);
    assert_eq!(b.open(&sealed, field("a")), Err(CryptoError::UnknownKey));
}

#[test]
fn keyed_hashes_are_separated_by_purpose_and_framing() {
    let ring = Keyring::new(&MasterKey::generate(&OsRng));
    let a = ring.keyed_hash(HashPurpose::Csrf, &[b"ab", b"c"]);
    assert_ne!(a, ring.keyed_hash(HashPurpose::Csrf, &[b"a", b"bc"]));
    assert_ne!(a, ring.keyed_hash(HashPurpose::RecoveryCodeLookup, &[b"ab", b"c"]));
    assert_eq!(a, ring.keyed_hash(HashPurpose::Csrf, &[b"ab", b"c"]));
}

#[test]
fn master_key_hex_round_trip() {
    let k = MasterKey::generate(&OsRng);
    let back = MasterKey::from_hex(&k.to_hex().to_uppercase()).expect("hex");
    assert_eq!(back.to_hex(), k.to_hex());
    assert!(MasterKey::from_hex("abcd").is_none());
}

#[test]
fn sec24_a_retiring_key_opens_and_verifies_but_never_seals() {
    let old = MasterKey::generate(&OsRng);
    let new = MasterKey::generate(&OsRng);
    let before = Keyring::new(&old);
    let sealed_old = before.seal(b"seed", field("a"), &OsRng);
    let hash_old = before.keyed_hash(HashPurpose::RecoveryCodeLookup, &[b"code"]);

    let during = Keyring::with_keys(&new, &[MasterKey::from_hex(&old.to_hex()).expect("hex")]);
    assert_eq!(during.open(&sealed_old, field("a")).expect("old opens"), b"seed");
    let sealed_new = during.seal(b"seed", field("a"), &OsRng);
    assert_eq!(KeyId::of_sealed(&sealed_new), Some(new.id()));
    assert_eq!(during.current_id(), new.id());
    assert_eq!(during.key_ids(), vec![new.id(), old.id()]);
    assert!(during.verify_keyed_hash(HashPurpose::RecoveryCodeLookup, &[b"code"], &hash_old));
    assert_ne!(during.keyed_hash(HashPurpose::RecoveryCodeLookup, &[b"code"]), hash_old);
    assert!(!during.verify_keyed_hash(HashPurpose::Csrf, &[b"code"], &hash_old));

    // The rotation finished: the old key is gone, and what it sealed with it.
    during.replace(&[MasterKey::from_hex(&new.to_hex()).expect("hex")]);
    assert_eq!(during.open(&sealed_old, field("a")), Err(CryptoError::UnknownKey));
    assert!(!during.verify_keyed_hash(HashPurpose::RecoveryCodeLookup, &[b"code"], &hash_old));
    assert_eq!(during.open(&sealed_new, field("a")).expect("new opens"), b"seed");
}

/// A source that hands out a fixed key list and counts how often it is asked.
struct Fixed(std::sync::Mutex<(Vec<String>, usize)>);

impl KeySource for Fixed {
    fn reload(&self) -> Option<Vec<MasterKey>> {
        let mut g = self.0.lock().expect("lock");
        g.1 += 1;
        g.0.iter().map(|h| MasterKey::from_hex(h)).collect()
    }
}

#[test]
fn an_unknown_key_id_reloads_the_source_once_before_refusing() {
    let old = MasterKey::generate(&OsRng);
    let new = MasterKey::generate(&OsRng);
    let other_instance = Keyring::with_keys(&new, &[MasterKey::from_hex(&old.to_hex()).expect("hex")]);
    let sealed = other_instance.seal(b"x", field("a"), &OsRng);

    let source = std::sync::Arc::new(Fixed(std::sync::Mutex::new((vec![new.to_hex(), old.to_hex()], 0))));
    let lagging = Keyring::new(&old).with_source(source.clone());
    assert_eq!(lagging.open(&sealed, field("a")).expect("opens after reload"), b"x");
    assert_eq!(lagging.current_id(), new.id());
    assert_eq!(source.0.lock().expect("lock").1, 1);

    // A value under a key nobody has: one more reload, then a refusal.
    let stranger = Keyring::new(&MasterKey::generate(&OsRng)).seal(b"x", field("a"), &OsRng);
    assert_eq!(lagging.open(&stranger, field("a")), Err(CryptoError::UnknownKey));
    assert_eq!(source.0.lock().expect("lock").1, 2);
}

#[test]
fn replacing_with_nothing_keeps_the_keys_and_ids_round_trip_as_hex() {
    let k = MasterKey::generate(&OsRng);
    let ring = Keyring::new(&k);
    ring.replace(&[]);
    assert_eq!(ring.current_id(), k.id());
    assert_eq!(KeyId::from_hex(&k.id().to_string()), Some(k.id()));
    assert_eq!(KeyId::of_sealed(&[1, 2]), None);
}
