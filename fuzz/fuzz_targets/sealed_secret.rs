//! Stored secrets and the master key (`crypto`): `MasterKey::from_hex` on arbitrary text (the key
//! file and the `secret_key` setting), `Keyring::open` on arbitrary bytes (a sealed column as read
//! from the database, which a backup thief or an SQL bug could have altered), and the seal → open
//! round trip, which must fail once the ciphertext is moved to another row.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use twostep_domain::crypto::{CryptoError, Keyring, MasterKey, SealedField};
use twostep_domain::ports::Rng;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    key_hex: &'a str,
    master: [u8; 32],
    nonce: [u8; 12],
    sealed: &'a [u8],
    plaintext: &'a [u8],
    table: &'a str,
    column: &'a str,
    row_id: &'a str,
    flip: u16,
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
    if let Some(key) = MasterKey::from_hex(input.key_hex) {
        assert_eq!(key.to_hex(), input.key_hex.trim().to_ascii_lowercase(), "{:?}", input.key_hex);
    }

    let keyring = Keyring::new(&MasterKey::from_bytes(input.master));
    let field = SealedField { table: input.table, column: input.column, row_id: input.row_id };
    match keyring.open(input.sealed, field) {
        Ok(_) => panic!("opened bytes that were never sealed: {:?}", input.sealed),
        Err(CryptoError::Malformed | CryptoError::UnknownKey | CryptoError::Forged) => {}
    }

    let sealed = keyring.seal(input.plaintext, field, &Replay(input.nonce));
    assert_eq!(keyring.open(&sealed, field).as_deref(), Ok(input.plaintext));
    let mut tampered = sealed.clone();
    let i = usize::from(input.flip) % tampered.len();
    tampered[i] ^= 1 << (input.flip >> 13);
    assert!(keyring.open(&tampered, field).is_err(), "a flipped bit at {i} still opens");
    let other_row = format!("{}x", input.row_id);
    let moved = SealedField { row_id: &other_row, ..field };
    assert_eq!(keyring.open(&sealed, moved), Err(CryptoError::Forged), "opened in another row");
});
