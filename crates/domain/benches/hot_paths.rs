//! Micro-benchmarks of the per-request hot paths (issue 8): one-time
//! passwords, recovery-code matching, sealed-secret decryption, Argon2id at
//! the shipped cost, and raw HMAC-SHA1 as the physical floor of a TOTP check.
//!
//! `cargo bench -p twostep-domain` runs them all in about a minute; each
//! group is time-boxed below so a run stays bounded on a 2-core machine.
//! Figures and the method are in docs/performance.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use twostep_domain::accounts::password::{HashCost, Password, PasswordHashing};
use twostep_domain::crypto::{HashPurpose, Keyring, MasterKey, SealedField, constant_time_eq};
use twostep_domain::factors::recovery::code::{RecoveryCode, generate_set};
use twostep_domain::factors::totp::otp::{self, OtpAlgorithm, TotpParams};
use twostep_domain::ports::OsRng;
use twostep_domain::token::Token;

/// A 160-bit TOTP secret, the size enrolment issues.
const SECRET: [u8; 20] = *b"12345678901234567890";
/// A fixed instant (RFC 6238's 1111111109), so runs compare.
const NOW: i64 = 1_111_111_109;

fn keyring() -> Keyring {
    Keyring::new(&MasterKey::from_bytes([7; 32]))
}

/// The same sealed field the authenticator rows use (see `totp.rs`).
fn authenticator_field(row_id: &str) -> SealedField<'_> {
    SealedField { table: "authenticators", column: "secret_sealed", row_id }
}

fn hmac_and_otp(c: &mut Criterion) {
    let mut g = c.benchmark_group("otp");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(1));
    // The floor: one HMAC-SHA1 over an 8-byte counter, no allocation.
    g.bench_function("hmac_sha1_raw", |b| {
        b.iter(|| {
            let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(black_box(&SECRET)).expect("HMAC takes any key");
            m.update(&black_box(37_037_036_u64).to_be_bytes());
            m.finalize().into_bytes()
        });
    });
    // What the engine calls (returns a Vec).
    g.bench_function("hmac_sha1_engine", |b| {
        b.iter(|| otp::hmac(OtpAlgorithm::Sha1, black_box(&SECRET), black_box(37_037_036)));
    });
    g.bench_function("hotp_6_digits", |b| {
        b.iter(|| otp::hotp(OtpAlgorithm::Sha1, black_box(&SECRET), black_box(37_037_036), 6));
    });
    g.bench_function("totp_generate", |b| {
        b.iter(|| otp::totp(black_box(&SECRET), black_box(NOW), TotpParams::DEFAULT));
    });
    let right = otp::totp(&SECRET, NOW, TotpParams::DEFAULT);
    let wrong = if right == "000000" { "000001" } else { "000000" };
    // ±1 step, constant time: three HOTP computations whatever the code.
    g.bench_function("totp_verify_window1_right", |b| {
        b.iter(|| otp::verify_totp(black_box(&SECRET), black_box(&right), NOW, TotpParams::DEFAULT, 1, None));
    });
    g.bench_function("totp_verify_window1_wrong", |b| {
        b.iter(|| otp::verify_totp(black_box(&SECRET), black_box(wrong), NOW, TotpParams::DEFAULT, 1, Some(0)));
    });
    g.finish();
}

fn recovery_codes(c: &mut Criterion) {
    let ring = keyring();
    let set = generate_set(&OsRng);
    // The stored rows' lookups, as `recovery.rs` keeps them: HMAC-SHA-256
    // of the normalised code under the lookup key.
    let rows: Vec<Vec<u8>> = set
        .iter()
        .map(|code| ring.keyed_hash(HashPurpose::RecoveryCodeLookup, &[code.expose().as_bytes()]).to_vec())
        .collect();
    let typed_right = set[7].display_grouped().to_uppercase();
    let typed_wrong = "abcd-efgh-jkmn-pqrs";
    let mut g = c.benchmark_group("recovery_code");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    // Parse, one keyed hash, then a constant-time compare against every
    // one of the 10 rows without stopping at a match (`use_recovery_code`).
    let matching = |typed: &str| {
        let code = RecoveryCode::parse(typed).expect("a well-formed code");
        let lookup = ring.keyed_hash(HashPurpose::RecoveryCodeLookup, &[code.expose().as_bytes()]);
        let mut found = None;
        for (i, row) in rows.iter().enumerate() {
            if constant_time_eq(row, &lookup) {
                found = Some(i);
            }
        }
        found
    };
    assert_eq!(matching(&typed_right), Some(7), "the bench must exercise a real match");
    g.bench_function("match_10_rows_hit", |b| b.iter(|| matching(black_box(&typed_right))));
    g.bench_function("match_10_rows_miss", |b| b.iter(|| matching(black_box(typed_wrong))));
    g.finish();
}

fn sealed_secrets(c: &mut Criterion) {
    let ring = keyring();
    let row = "0b7f3f0e-2f7c-4c47-9d0a-6f1f8d1f5a10";
    let sealed = ring.seal(&SECRET, authenticator_field(row), &OsRng);
    assert_eq!(ring.open(&sealed, authenticator_field(row)).expect("opens"), SECRET);
    let mut g = c.benchmark_group("aes_256_gcm");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    g.bench_function("open_20_byte_secret", |b| {
        b.iter(|| ring.open(black_box(&sealed), authenticator_field(black_box(row))));
    });
    g.bench_function("seal_20_byte_secret", |b| {
        b.iter(|| ring.seal(black_box(&SECRET), authenticator_field(black_box(row)), &OsRng));
    });
    g.finish();
    // The session lookup key: SHA-256 of the presented bearer token.
    let token = Token::generate(&OsRng);
    let mut g = c.benchmark_group("token");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    g.bench_function("sha256_hex_of_bearer", |b| b.iter(|| black_box(&token).hash()));
    g.finish();
}

fn argon2id(c: &mut Criterion) {
    let cost = HashCost::default();
    assert_eq!((cost.memory_kib, cost.iterations, cost.parallelism), (19_456, 2, 1), "the shipped cost");
    let hashing = PasswordHashing::new(cost, &OsRng).expect("argon2 parameters");
    let password = || Password::for_sign_in("correct horse battery staple").expect("short enough");
    let stored = hashing.hash(&password(), &OsRng).expect("hash");
    let mut g = c.benchmark_group("argon2id_m19456_t2_p1");
    // Tens of milliseconds each: 10 samples in about 5 s.
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    g.bench_function("hash", |b| {
        b.iter_batched(password, |p| hashing.hash(&p, &OsRng).expect("hash"), BatchSize::SmallInput);
    });
    g.bench_function("verify", |b| {
        b.iter_batched(password, |p| assert!(hashing.verify(&p, Some(&stored))), BatchSize::SmallInput);
    });
    g.finish();
}

criterion_group!(benches, hmac_and_otp, recovery_codes, sealed_secrets, argon2id);
criterion_main!(benches);
