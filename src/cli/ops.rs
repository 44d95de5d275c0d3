//! Operator commands: `healthcheck` (for images without curl), `backup`
//! and `restore` of a SQLite database.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct HealthcheckArgs {
    /// The server's base URL. Default: `listen` from the configuration
    /// (an unspecified address is asked on loopback).
    #[arg(long)]
    url: Option<String>,
    /// `readyz` (default: serving traffic) or `livez` (process answers).
    #[arg(long, default_value = "readyz", value_parser = ["readyz", "livez"])]
    probe: String,
}

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// Where to write the copy (a new file; see --force).
    #[arg(long)]
    out: PathBuf,
    /// Replace `--out` if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The backup to bring back (made by `twostep backup`).
    #[arg(long)]
    from: PathBuf,
    /// Replace the existing database. Stop the server first.
    #[arg(long)]
    force: bool,
}

/// The URL `healthcheck` asks when none is given.
pub fn default_base(listen: &str) -> Result<String, Box<dyn std::error::Error>> {
    let mut addr: std::net::SocketAddr = listen.parse()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    Ok(format!("http://{addr}"))
}

pub async fn healthcheck(config: &Config, args: &HealthcheckArgs) -> Result<(), Box<dyn std::error::Error>> {
    let base = match &args.url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => default_base(&config.listen)?,
    };
    let url = format!("{base}/{}", args.probe);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let r = client.get(&url).send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    if status.is_success() {
        println!("{url}: {body}");
        Ok(())
    } else {
        Err(format!("{url}: {status} {body}").into())
    }
}

fn sqlite_file(config: &Config) -> Result<PathBuf, Box<dyn std::error::Error>> {
    twostep_store::backup::sqlite_path(&config.database_url())
        .ok_or_else(|| twostep_store::backup::BackupError::NotSqlite.into())
}

pub async fn backup(config: &Config, args: &BackupArgs) -> Result<(), Box<dyn std::error::Error>> {
    let db = sqlite_file(config)?;
    let r = twostep_store::backup::backup_sqlite(&db, &args.out, args.force).await?;
    println!(
        "backed up {} to {} ({} bytes, schema version {}); integrity check ok",
        db.display(),
        args.out.display(),
        r.bytes,
        r.schema_version
    );
    println!("the master key is not in it: keep the key file (or secret_key) backed up apart");
    Ok(())
}

pub async fn restore(config: &Config, args: &RestoreArgs) -> Result<(), Box<dyn std::error::Error>> {
    let db = sqlite_file(config)?;
    let _alone = crate::server_lock::exclusive(&db)?;
    let r = twostep_store::backup::restore_sqlite(&args.from, &db, args.force).await?;
    println!(
        "restored {} to {} ({} bytes, schema version {}); integrity check ok",
        args.from.display(),
        db.display(),
        r.bytes,
        r.schema_version
    );
    println!("start the server with the master key this database was made with");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::default_base;

    #[test]
    fn an_unspecified_listen_address_is_asked_on_loopback() {
        assert_eq!(default_base("0.0.0.0:8080").expect("v4"), "http://127.0.0.1:8080");
        assert_eq!(default_base("[::]:8080").expect("v6"), "http://[::1]:8080");
        assert_eq!(default_base("10.1.2.3:80").expect("kept"), "http://10.1.2.3:80");
        assert!(default_base("nonsense").is_err());
    }
}
