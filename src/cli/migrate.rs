//! `twostep migrate`: apply pending migrations and exit.

use crate::config::{Config, KeySource};

pub async fn run(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    // A new installation gets its key with its database, so the commands
    // after it (`user create`, `admin grant`) find both.
    if let KeySource::Generated(path) = config.ensure_master_key()? {
        println!("made a new master key at {}: back it up apart from the database", path.display());
    }
    let url = config.database_url();
    let store = twostep_store::SqlStore::connect_with(&url, config.sqlite_synchronous).await?;
    let report = store.migrate().await?;
    if report.applied.is_empty() {
        println!("database is up to date (schema version {})", report.current);
    } else {
        for m in &report.applied {
            println!("applied {m}");
        }
        println!("schema version {}", report.current);
    }
    Ok(())
}
