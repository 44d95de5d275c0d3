//! Stored secrets and the master key (`crypto`): `MasterKey::from_hex` on arbitrary text (the key
//! file and the `secret_key` setting), `Keyring::open` on arbitrary bytes (a sealed column as read
//! from the database, which a backup thief or an SQL bug could have altered), and the seal → open
//! round trip, which must fail once the ciphertext has a flipped bit or is moved to another row.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use twostep_domain::crypto::{CryptoError, Keyring, MasterKey, SealedField};
use twostep_domain::ports::Rng;

/// A 46-byte header, then bytes (they take the rest of the input) that serve as the key file's
/// text, as a sealed column and as a plaintext to seal; `fuzz/make_seeds.py` writes seed files.
#[derive(Arbitrary, Debug)]
struct Input<'a> {
    master: [u8; 32],
    nonce: [u8; 12],
    flip: u16,
    bytes: &'a [u8],
}

struct Replay([u8; 12]);

impl Rng for Replay {
    fn fill(&self, buf: &mut [u8]) {
        for (b, r) in buf.iter_mut().zip(self.0.iter().cycle()) {
            *b = *r;
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let key_hex = String::from_utf8_lossy(input.bytes);
    if let Some(key) = MasterKey::from_hex(&key_hex) {
        assert_eq!(key.to_hex(), key_hex.trim().to_ascii_lowercase(), "{key_hex:?}");
    }

    let keyring = Keyring::new(&MasterKey::from_bytes(input.master));
    let field = SealedField { table: "authenticators", column: "secret", row_id: "0b6f1c8e-row" };
    match keyring.open(input.bytes, field) {
        Ok(_) => panic!("opened bytes that were never sealed: {:?}", input.bytes),
        Err(CryptoError::Malformed | CryptoError::UnknownKey | CryptoError::Forged) => {}
    }

    let sealed = keyring.seal(input.bytes, field, &Replay(input.nonce));
    assert_eq!(keyring.open(&sealed, field).as_deref(), Ok(input.bytes));
    let mut tampered = sealed.clone();
    let i = usize::from(input.flip) % tampered.len();
    tampered[i] ^= 1 << (input.flip >> 13);
    assert!(keyring.open(&tampered, field).is_err(), "a flipped bit at {i} still opens");
    let other_row = format!("{}x", field.row_id);
    let moved = SealedField { row_id: &other_row, ..field };
    assert_eq!(keyring.open(&sealed, moved), Err(CryptoError::Forged), "opened in another row");
});
