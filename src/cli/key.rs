//! `twostep key`: rotate the master key online, see which key seals what.
//!
//! With a key file (the default), `rotate` does it all: it writes a new key
//! in front of the old one, waits for running servers to load it (they look
//! at the file every two seconds), re-seals every value under it, and then
//! removes the old key from the file. Killed part-way, it is run again and
//! resumes. With `secret_key` in the configuration, the operator puts the
//! new key there and the old one in `retiring_secret_keys` on every
//! instance first (`twostep key generate` makes one).

use std::time::Duration;

use clap::{Args, Subcommand};
use twostep_domain::crypto::{KeyId, Keyring, MasterKey};
use twostep_domain::ports::{OsRng, SystemClock};
use twostep_domain::rotation::{KeyRotation, Report};

use crate::config::{Config, KeySource, Resolved};
use crate::keyfile;

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Introduce a new master key and re-seal every stored secret under it.
    Rotate(RotateArgs),
    /// Which keys are held, and how many stored values each one seals.
    Status(StatusArgs),
    /// Print a fresh master key (for `secret_key` in the configuration).
    Generate,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// Values re-sealed per batch (progress is saved after each).
    #[arg(long, default_value_t = 200)]
    batch: i64,
    /// Seconds to wait after a new key is written, so running servers load
    /// it before anything is sealed under it (0 when none runs).
    #[arg(long, default_value_t = 5)]
    settle: u64,
    /// A pause after each batch, to go easy on a busy database.
    #[arg(long, default_value_t = 0)]
    pause_ms: u64,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long)]
    json: bool,
}

pub async fn run(config: &Config, cmd: KeyCommand) -> Result<(), Box<dyn std::error::Error>> {
    match cmd {
        KeyCommand::Generate => {
            println!("{}", MasterKey::generate(&OsRng).to_hex());
            Ok(())
        }
        KeyCommand::Status(args) => status(config, &args).await,
        KeyCommand::Rotate(args) => rotate(config, &args).await,
    }
}

async fn rotate(config: &Config, args: &RotateArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (mut resolved, store) = super::existing(config).await?;
    let file = match &resolved.key_source {
        KeySource::File(p) | KeySource::Generated(p) => Some(p.clone()),
        KeySource::Config | KeySource::NotYet(_) => None,
    };
    if resolved.retiring_keys.is_empty() {
        let Some(path) = &file else {
            return Err("the master key is set in the configuration (secret_key): put a new key there \
                        (`twostep key generate`) and the current one in retiring_secret_keys on every \
                        instance, restart them, then run `twostep key rotate` again"
                .into());
        };
        let new = MasterKey::generate(&OsRng);
        keyfile::write(path, &new, &[&resolved.master_key])
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!(
            "new master key {} written to {} (the old key {} stays in it, read only, until the rotation finishes)",
            new.id(),
            path.display(),
            resolved.master_key.id()
        );
        let old = std::mem::replace(&mut resolved.master_key, new);
        resolved.retiring_keys.push(old);
    } else {
        println!(
            "resuming the rotation to key {} (retiring: {})",
            resolved.master_key.id(),
            ids(resolved.retiring_keys.iter().map(MasterKey::id))
        );
    }
    if args.settle > 0 {
        println!("waiting {}s for running servers to load the new key", args.settle);
        tokio::time::sleep(Duration::from_secs(args.settle)).await;
    }

    let keys = Keyring::with_keys(&resolved.master_key, &resolved.retiring_keys);
    let rotation = KeyRotation::new(&store, &keys, &SystemClock, &OsRng);
    // Paired companions' push subscriptions are bound to the VAPID key,
    // derived from the original master key: it is kept before that key goes.
    let original = resolved.retiring_keys.last().unwrap_or(&resolved.master_key);
    if rotation.pin_vapid_seed(&original.vapid_seed()).await? {
        println!("the Web Push (VAPID) key is now stored sealed, so paired companions keep working");
    }
    let pause = Duration::from_millis(args.pause_ms);
    let report = rotation
        .run(args.batch, &mut |column, n| {
            println!("re-sealed {n} in {}", column.name());
            if !pause.is_zero() {
                // The command does nothing else meanwhile.
                std::thread::sleep(pause);
            }
        })
        .await?;
    print_report(&report);
    finish(&resolved, file.as_deref())?;
    Ok(())
}

fn print_report(report: &Report) {
    if report.was_finished {
        println!("the rotation to this key had finished; {} stragglers re-sealed", report.resealed);
    } else {
        println!("rotation finished: {} values re-sealed", report.resealed);
    }
    for (column, id) in &report.unreadable {
        eprintln!(
            "warning: {}.{} of row {id} opens under no key held (it was unreadable before); left as it is",
            column.table(),
            column.column()
        );
    }
}

/// Drops the retiring keys: from the key file, which running servers
/// reload, or by telling the operator to edit the configuration.
fn finish(resolved: &Resolved, file: Option<&std::path::Path>) -> Result<(), Box<dyn std::error::Error>> {
    match file {
        Some(path) => {
            keyfile::write(path, &resolved.master_key, &[])
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!(
                "old key {} removed from {}; running servers stop accepting it within seconds",
                ids(resolved.retiring_keys.iter().map(MasterKey::id)),
                path.display()
            );
        }
        None => println!(
            "every value is sealed under {}: remove retiring_secret_keys from every instance's configuration \
             and restart them",
            resolved.master_key.id()
        ),
    }
    Ok(())
}

async fn status(config: &Config, args: &StatusArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (resolved, store) = super::existing(config).await?;
    let keys = Keyring::with_keys(&resolved.master_key, &resolved.retiring_keys);
    let rotation = KeyRotation::new(&store, &keys, &SystemClock, &OsRng);
    let census = rotation.census(500).await?;
    let last = rotation.last_rotation().await?;
    let current = resolved.master_key.id();
    let held: Vec<KeyId> = keys.key_ids();
    let name = |k: Option<KeyId>| k.map_or_else(|| "malformed".to_owned(), |k| k.to_string());
    if args.json {
        let values: Vec<_> = census
            .rows
            .iter()
            .map(|(c, k, n)| {
                serde_json::json!({"table": c.table(), "key": name(*k), "held": k.is_some_and(|k| held.contains(&k)), "count": n})
            })
            .collect();
        let out = serde_json::json!({
            "current": current.to_string(),
            "retiring": resolved.retiring_keys.iter().map(|k| k.id().to_string()).collect::<Vec<_>>(),
            "not_under_current": census.not_under(current),
            "not_openable": census.rows.iter().filter(|(_, k, _)| !k.is_some_and(|k| held.contains(&k))).map(|(_, _, n)| n).sum::<u64>(),
            "values": values,
            "last_rotation": last.map(|r| serde_json::json!({
                "target": r.target,
                "started_at": r.started_at.rfc3339(),
                "finished_at": r.finished_at.map(twostep_domain::time::Timestamp::rfc3339),
                "resealed": r.resealed,
            })),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("current key:   {current}");
    println!("retiring keys: {}", ids(resolved.retiring_keys.iter().map(MasterKey::id)));
    match last {
        Some(r) => println!(
            "last rotation: to {} started {}, {} ({} values re-sealed)",
            r.target,
            r.started_at.rfc3339(),
            r.finished_at.map_or_else(
                || format!("unfinished, at {} after {:?}", r.column, r.cursor),
                |t| format!("finished {}", t.rfc3339())
            ),
            r.resealed
        ),
        None => println!("last rotation: none"),
    }
    for (column, key, n) in &census.rows {
        let mark = match key {
            Some(k) if *k == current => "",
            Some(k) if held.contains(k) => " (retiring)",
            _ => " (NOT OPENABLE with the keys held)",
        };
        println!("{:<18} {:>8} under {}{mark}", column.table(), n, name(*key));
    }
    Ok(())
}

fn ids(keys: impl Iterator<Item = KeyId>) -> String {
    let list: Vec<String> = keys.map(|k| k.to_string()).collect();
    if list.is_empty() { "none".to_owned() } else { list.join(", ") }
}
