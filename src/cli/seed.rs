//! `twostep dev …`: BENCHMARKING TOOLS ONLY (`scripts/bench`, issue 8).
//!
//! `dev seed` bulk-loads an EMPTY, throwaway database with accounts
//! `bench<i>@bench.invalid` (password [`BENCH_PASSWORD`]), optionally with an
//! authenticator and a recovery-code set each, in large transactions of
//! multi-row INSERTs: one Argon2id hash computed once and shared, secrets
//! sealed with the real keyring and row-id associated data exactly as
//! `totp.rs` and `recovery.rs` do. Everything an account holds is derived
//! from its index `i` by a seeded ChaCha stream, so `dev login-tokens` can
//! print valid TOTP codes for the load generator. Ids are UUID-shaped but
//! sort in seeding order (see `ordered_uuid`). `dev sessions` and
//! `dev login-tokens` insert bearer tokens (stored as SHA-256, as the domain
//! does) and write the plaintext tokens to a file for wrk's Lua scripts.
//! `dev hash-rate` and `dev commit-rate` measure the two physical limits the
//! load figures are compared with. Never point these at a real database.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use rand::{RngCore, SeedableRng};
use twostep_domain::accounts::email::Email;
use twostep_domain::accounts::password::{Password, PasswordHashing};
use twostep_domain::accounts::store::{AccountRecord, AccountStore};
use twostep_domain::crypto::{HashPurpose, Keyring, SealedField};
use twostep_domain::error::StoreError;
use twostep_domain::factors::recovery::code::generate_set;
use twostep_domain::factors::store::{AuthenticatorRecord, RecoveryCodeRecord};
use twostep_domain::factors::totp::otp::{OtpAlgorithm, TotpParams, hotp, time_step};
use twostep_domain::ids::{AccountId, AuthenticatorId, RecoveryCodeId};
use twostep_domain::ports::{Clock, Rng, SystemClock};
use twostep_domain::sessions::store::{LoginTokenRecord, SessionKind, SessionRecord};
use twostep_domain::time::Timestamp;
use twostep_domain::token::Token;
use twostep_store::{Backend, SqlStore};

use crate::config::Config;

/// The password of every seeded account.
pub const BENCH_PASSWORD: &str = "bench password 0123456789";
/// Login tokens made here live an hour (the server's own live 5 minutes),
/// long enough for any bounded run.
const LOGIN_TOKEN_SECS: i64 = 3600;
/// TOTP codes printed per login token: steps S0 … S0+9, S0 being the step
/// before the one at generation, so a token file stays usable for about four
/// minutes (a line may need the code of the step after "now").
const CODES_PER_LINE: u64 = 10;

#[derive(Subcommand, Debug)]
pub enum DevCommand {
    /// Benchmarking only: bulk-load N accounts into an EMPTY throwaway database.
    Seed(SeedArgs),
    /// Benchmarking only: create live sessions for seeded accounts; bearer tokens to a file.
    Sessions(TokenArgs),
    /// Benchmarking only: create login tokens (password step done) for seeded accounts with
    /// TOTP; writes `token account s0 wrong_code code(s0) … code(s0+9)` lines to a file.
    LoginTokens(TokenArgs),
    /// Benchmarking only: bare Argon2id verifications per second at the configured cost.
    HashRate {
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Threads hashing at once (default: the number of cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Benchmarking only: replay-guard commits per second on one connection (needs `seed --totp`).
    CommitRate {
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// SQLite `synchronous = FULL` instead of the shipped NORMAL.
        #[arg(long)]
        full: bool,
    },
}

#[derive(Args, Debug)]
pub struct SeedArgs {
    /// How many accounts.
    #[arg(long)]
    accounts: u64,
    /// Give each account a confirmed TOTP authenticator (two-factor on).
    #[arg(long)]
    totp: bool,
    /// Also give each account a set of 10 recovery codes, as confirming TOTP does.
    #[arg(long, requires = "totp")]
    recovery_codes: bool,
    /// Accounts per transaction.
    #[arg(long, default_value_t = 5_000)]
    batch: u64,
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// How many accounts `dev seed` made (tokens are spread evenly over them).
    #[arg(long)]
    accounts: u64,
    /// How many tokens.
    #[arg(long)]
    count: u64,
    /// Where to write the plaintext tokens.
    #[arg(long)]
    out: PathBuf,
}

pub async fn run(config: &Config, cmd: DevCommand) -> Result<(), Box<dyn std::error::Error>> {
    let resolved = config.resolve()?;
    let keys = Arc::new(Keyring::new(&resolved.master_key));
    let now = SystemClock.now();
    match cmd {
        DevCommand::HashRate { seconds, threads } => {
            hash_rate(&resolved.settings, Duration::from_secs(seconds), threads)?;
            return Ok(());
        }
        DevCommand::Seed(args) => {
            let store = crate::startup::open_store(&resolved.database_url, resolved.sqlite_synchronous).await?;
            seed(&store, &resolved.settings, keys, now, &args).await?;
        }
        DevCommand::Sessions(args) => {
            let store = crate::startup::open_store(&resolved.database_url, resolved.sqlite_synchronous).await?;
            sessions(&store, &resolved.settings, now, &args).await?;
        }
        DevCommand::LoginTokens(args) => {
            let store = crate::startup::open_store(&resolved.database_url, resolved.sqlite_synchronous).await?;
            login_tokens(&store, now, &args).await?;
        }
        DevCommand::CommitRate { seconds, full } => {
            let store = crate::startup::open_store(&resolved.database_url, resolved.sqlite_synchronous).await?;
            let ids: Vec<AuthenticatorId> = (0..64).map(|i| Derived::new(i).authenticator).collect();
            let step = time_step(now.secs(), TotpParams::DEFAULT.period).cast_signed() + 1;
            let (commits, elapsed) =
                store.replay_guard_commit_rate(full, &ids, step, now, Duration::from_secs(seconds)).await?;
            println!(
                "commit_rate backend={} synchronous={} commits={commits} seconds={:.2} per_sec={:.0}",
                store.backend_name(),
                if full { "FULL" } else { "NORMAL" },
                elapsed.as_secs_f64(),
                per_sec(commits, elapsed)
            );
        }
    }
    Ok(())
}

fn per_sec(n: u64, elapsed: Duration) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
    let n = n as f64;
    n / elapsed.as_secs_f64().max(1e-9)
}

/// A deterministic random stream behind the domain's `Rng` port.
struct Seeded(Mutex<rand::rngs::StdRng>);

impl Seeded {
    fn for_account(i: u64) -> Self {
        Self(Mutex::new(rand::rngs::StdRng::seed_from_u64(i)))
    }

    /// Seeded from the OS: for nonces and bearer tokens.
    fn fresh() -> Self {
        Self(Mutex::new(rand::rngs::StdRng::from_entropy()))
    }
}

impl Rng for Seeded {
    fn fill(&self, buf: &mut [u8]) {
        self.0.lock().expect("the random stream is never poisoned").fill_bytes(buf);
    }
}

/// What account `i` holds, derived from `i` alone.
struct Derived {
    id: AccountId,
    secret: [u8; 20],
    authenticator: AuthenticatorId,
    /// The rest of the stream (recovery codes).
    rng: Seeded,
}

impl Derived {
    fn new(i: u64) -> Self {
        let rng = Seeded::for_account(i);
        let mut secret = [0u8; 20];
        rng.fill(&mut secret);
        let id = AccountId::from_stored(ordered_uuid(i, 0, &rng));
        let authenticator = AuthenticatorId::from_stored(ordered_uuid(i, 1, &rng));
        Self { id, secret, authenticator, rng }
    }
}

/// A version-4-shaped UUID whose first 12 hex digits are `i` and `k`, the
/// rest random. The server makes fully random ones; these sort in seeding
/// order, so a million rows append to the indexes instead of dirtying every
/// page of them in every transaction (which made seeding superlinear).
/// Lookups by id cost the same either way: same key length, same depth.
fn ordered_uuid(i: u64, k: u64, rng: &Seeded) -> String {
    let mut r = [0u8; 10];
    rng.fill(&mut r);
    let hex = data_encoding::HEXLOWER.encode(&r);
    let variant = ["8", "9", "a", "b"][usize::from(r[0] & 3)];
    format!("{i:08x}-{k:04x}-4{}-{variant}{}-{}", &hex[0..3], &hex[3..6], &hex[6..18])
}

/// Zero-padded, so the e-mail index also fills in order.
fn email(i: u64) -> String {
    format!("bench{i:07}@bench.invalid")
}

/// The `k`th of `used` accounts spread evenly over `total`.
fn spread(k: u64, used: u64, total: u64) -> u64 {
    let a = u128::from(k) * u128::from(total) / u128::from(used.max(1));
    u64::try_from(a).unwrap_or(0)
}

#[derive(Default)]
struct Batch {
    accounts: Vec<AccountRecord>,
    authenticators: Vec<AuthenticatorRecord>,
    codes: Vec<RecoveryCodeRecord>,
}

fn build_batch(range: Range<u64>, keys: &Keyring, hash: &str, now: Timestamp, totp: bool, codes: bool) -> Batch {
    let nonces = Seeded::fresh();
    let mut b = Batch::default();
    for i in range {
        let d = Derived::new(i);
        b.accounts.push(AccountRecord {
            id: d.id.clone(),
            email: Email::from_stored(email(i)),
            password_hash: hash.to_owned(),
            created_at: now,
            disabled_at: None,
            last_sign_in_at: None,
            email_verified_at: None,
            admin_since: None,
        });
        if !totp {
            continue;
        }
        let field = SealedField { table: "authenticators", column: "secret_sealed", row_id: d.authenticator.as_str() };
        b.authenticators.push(AuthenticatorRecord {
            secret_sealed: keys.seal(&d.secret, field, &nonces),
            id: d.authenticator.clone(),
            account_id: d.id.clone(),
            kind: "totp".to_owned(),
            name: "Bench authenticator".to_owned(),
            last_step: 0,
            created_at: now,
            last_used_at: None,
        });
        if !codes {
            continue;
        }
        for (code, position) in generate_set(&d.rng).iter().zip(0_u64..) {
            let id = RecoveryCodeId::from_stored(ordered_uuid(i, 2 + position, &d.rng));
            let field = SealedField { table: "recovery_codes", column: "code_sealed", row_id: id.as_str() };
            b.codes.push(RecoveryCodeRecord {
                lookup: keys.keyed_hash(HashPurpose::RecoveryCodeLookup, &[code.expose().as_bytes()]).to_vec(),
                code_sealed: keys.seal(code.expose().as_bytes(), field, &nonces),
                id,
                account_id: d.id.clone(),
                position: position.cast_signed(),
                created_at: now,
                used_at: None,
            });
        }
    }
    b
}

async fn seed(
    store: &SqlStore,
    settings: &twostep_domain::settings::Settings,
    keys: Arc<Keyring>,
    now: Timestamp,
    args: &SeedArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    if !store.list_accounts(1).await?.is_empty() {
        return Err("dev seed fills only an empty, throwaway database; this one has accounts".into());
    }
    let started = Instant::now();
    let hashing = PasswordHashing::new(settings.hash_cost, &Seeded::fresh())?;
    let password = Password::for_sign_in(BENCH_PASSWORD).ok_or("bench password too long")?;
    let hash: Arc<str> = hashing.hash(&password, &Seeded::fresh())?.into();
    let batch = args.batch.max(1);
    let spawn = |start: u64| {
        let (keys, hash) = (Arc::clone(&keys), Arc::clone(&hash));
        let (totp, codes) = (args.totp, args.recovery_codes);
        let range = start..(start + batch).min(args.accounts);
        tokio::task::spawn_blocking(move || build_batch(range, &keys, &hash, now, totp, codes))
    };
    // Build the next batch on one core while the database takes this one;
    // PostgreSQL takes two batches at once on two connections (SQLite has
    // one writer, so a second would only wait).
    let parallel = if store.backend() == Backend::Postgres { 2 } else { 1 };
    let mut inserts: VecDeque<tokio::task::JoinHandle<Result<u64, StoreError>>> = VecDeque::new();
    let mut next = (args.accounts > 0).then(|| spawn(0));
    let mut built = 0_u64;
    let mut done = 0_u64;
    let mut reported = 0_u64;
    loop {
        if let Some(pending) = next.take() {
            let b = pending.await?;
            built += b.accounts.len() as u64;
            if built < args.accounts {
                next = Some(spawn(built));
            }
            let store = store.clone();
            inserts.push_back(tokio::spawn(async move {
                store.bulk_insert_accounts(&b.accounts, &b.authenticators, &b.codes).await?;
                Ok(b.accounts.len() as u64)
            }));
            if inserts.len() < parallel && next.is_some() {
                continue;
            }
        }
        let Some(oldest) = inserts.pop_front() else { break };
        done += oldest.await??;
        if done - reported >= 100_000 || done == args.accounts {
            reported = done;
            eprintln!("dev seed: {done} accounts after {:.1} s", started.elapsed().as_secs_f64());
        }
    }
    let elapsed = started.elapsed();
    println!(
        "seeded backend={} accounts={} totp={} recovery_codes={} seconds={:.1} accounts_per_sec={:.0}",
        store.backend_name(),
        args.accounts,
        args.totp,
        args.recovery_codes,
        elapsed.as_secs_f64(),
        per_sec(args.accounts, elapsed)
    );
    Ok(())
}

fn write_lines(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(text.as_bytes())?;
    f.flush()
}

async fn sessions(
    store: &SqlStore,
    settings: &twostep_domain::settings::Settings,
    now: Timestamp,
    args: &TokenArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let rng = Seeded::fresh();
    let mut out = String::new();
    let mut rows = Vec::new();
    for k in 0..args.count {
        let i = spread(k % args.accounts.max(1), args.count.min(args.accounts), args.accounts);
        let token = Token::generate(&rng);
        rows.push(SessionRecord {
            id: token.hash(),
            account_id: Derived::new(i).id,
            kind: SessionKind::Full,
            created_at: now,
            last_seen_at: now,
            expires_at: now.plus_secs(settings.session_absolute_secs),
            password_at: Some(now),
            second_factor_at: Some(now),
            ip: "127.0.0.1".to_owned(),
            user_agent: "twostep-bench".to_owned(),
        });
        writeln!(out, "{}", token.expose())?;
        if rows.len() == 10_000 {
            store.bulk_insert_tokens(&rows, &[]).await?;
            rows.clear();
        }
    }
    store.bulk_insert_tokens(&rows, &[]).await?;
    write_lines(&args.out, &out)?;
    println!("sessions={} out={}", args.count, args.out.display());
    Ok(())
}

/// Line `j` of `count` is for the `j % used`th of `used` accounts spread
/// over all of them, so one account's lines are `used` lines apart: with ±1
/// step accepted, an account can sign in up to three times within one
/// 30-second step (codes of steps now-1, now, now+1, in rising order, each
/// once), which `scripts/bench.d/verify_valid.lua` does. A line is
/// `token account s0 wrong_code code(s0) … code(s0+9)`.
async fn login_tokens(store: &SqlStore, now: Timestamp, args: &TokenArgs) -> Result<(), Box<dyn std::error::Error>> {
    let rng = Seeded::fresh();
    let used = args.count.min(args.accounts).max(1);
    let period = TotpParams::DEFAULT.period;
    let s0 = time_step(now.secs(), period).saturating_sub(1);
    let mut out = String::new();
    let mut rows = Vec::new();
    for j in 0..args.count {
        let i = spread(j % used, used, args.accounts);
        let d = Derived::new(i);
        let token = Token::generate(&rng);
        rows.push(LoginTokenRecord {
            id: token.hash(),
            account_id: d.id.clone(),
            created_at: now,
            expires_at: now.plus_secs(LOGIN_TOKEN_SECS),
            failures: 0,
        });
        let codes: Vec<String> = (s0..s0 + CODES_PER_LINE).map(|s| hotp(OtpAlgorithm::Sha1, &d.secret, s, 6)).collect();
        // A code that no step near these matches: certainly wrong.
        let near: Vec<String> = (s0.saturating_sub(2)..s0 + CODES_PER_LINE + 2)
            .map(|s| hotp(OtpAlgorithm::Sha1, &d.secret, s, 6))
            .collect();
        // At most 14 codes are near, so one of the first 15 candidates is free.
        let wrong = (0..15_u32).map(|n| format!("{n:06}")).find(|c| !near.contains(c)).unwrap_or_default();
        writeln!(out, "{} {i} {s0} {wrong} {}", token.expose(), codes.join(" "))?;
        if rows.len() == 10_000 {
            store.bulk_insert_tokens(&[], &rows).await?;
            rows.clear();
        }
    }
    store.bulk_insert_tokens(&[], &rows).await?;
    write_lines(&args.out, &out)?;
    println!("login_tokens={} accounts_used={used} out={}", args.count, args.out.display());
    Ok(())
}

fn hash_rate(
    settings: &twostep_domain::settings::Settings,
    duration: Duration,
    threads: Option<usize>,
) -> Result<(), Box<dyn std::error::Error>> {
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    let hashing = Arc::new(PasswordHashing::new(settings.hash_cost, &Seeded::fresh())?);
    let password = || Password::for_sign_in(BENCH_PASSWORD).expect("bench password is short");
    let stored: Arc<str> = hashing.hash(&password(), &Seeded::fresh())?.into();
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (hashing, stored) = (Arc::clone(&hashing), Arc::clone(&stored));
            std::thread::spawn(move || {
                let mut n = 0_u64;
                while started.elapsed() < duration {
                    assert!(hashing.verify(&password(), Some(&stored)), "the bench password verifies");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.join().map_err(|_| "hashing thread panicked")?;
    }
    let elapsed = started.elapsed();
    let cost = settings.hash_cost;
    println!(
        "hash_rate m={} t={} p={} threads={threads} verifications={total} seconds={:.2} per_sec={:.1} per_sec_per_thread={:.1}",
        cost.memory_kib,
        cost.iterations,
        cost.parallelism,
        elapsed.as_secs_f64(),
        per_sec(total, elapsed),
        per_sec(total, elapsed) / f64::from(u32::try_from(threads).unwrap_or(u32::MAX))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_derived_from_their_index_alone() {
        let (a, b) = (Derived::new(42), Derived::new(42));
        assert_eq!(a.id, b.id);
        assert_eq!(a.secret, b.secret);
        assert_ne!(Derived::new(43).id, a.id);
        assert!(Email::parse(&email(42)).is_ok_and(|e| e.as_str() == email(42)));
        let id = ordered_uuid(0x1234, 3, &Seeded::for_account(1));
        assert!(id.starts_with("00001234-0003-4"), "{id}");
        assert_eq!(id.len(), 36);
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }

    #[test]
    fn spread_covers_the_range_evenly() {
        assert_eq!((0..4).map(|k| spread(k, 4, 1000)).collect::<Vec<_>>(), [0, 250, 500, 750]);
        assert_eq!(spread(9, 10, 10), 9);
    }
}
