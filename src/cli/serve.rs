//! `twostep serve`: run the server until Ctrl-C or SIGTERM.

use std::sync::Arc;

use twostep_domain::ports::SystemClock;

use crate::config::{Config, KeySource};
use crate::startup;

pub async fn run(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let resolved = config.resolve()?;
    match &resolved.key_source {
        KeySource::Generated(p) => tracing::warn!(
            path = %p.display(),
            "generated a new master key; back it up apart from the database, without it stored secrets cannot be read"
        ),
        KeySource::File(p) => tracing::info!(path = %p.display(), "master key loaded from file"),
        KeySource::Config => tracing::info!("master key loaded from configuration"),
        KeySource::NotYet(_) => {}
    }
    if resolved.dev_mode && !resolved.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %resolved.listen,
            "DEV MODE ON A PUBLIC ADDRESS (dev_mode_public): /dev/outbox shows every message, codes and reset links included, to anyone who can reach this server"
        );
    }
    let options = config.shutdown_options()?;
    let server = startup::build(&resolved, Arc::new(SystemClock), resolved.settings.clone()).await?;
    // Held while serving, so `twostep restore` refuses to swap the file.
    let _serving = match twostep_store::backup::sqlite_path(&resolved.database_url) {
        Some(db) => Some(crate::server_lock::serving(&db)?),
        None => None,
    };
    if let Some(addr) = config.metrics_addr()? {
        let bound = crate::metrics::serve(addr, server.store.clone()).await?;
        tracing::info!(metrics = %format!("http://{bound}/metrics"), "metrics listener ready");
    }
    let url = server.url.clone();
    tracing::info!(%url, database = %server.store.backend_name(), "twostep is ready");
    // On stdout, for people and for scripts that wait for the URL.
    let bound = server.listener.local_addr()?;
    // A loopback URL is opened as localhost, where security keys work too.
    let open = twostep_domain::factors::webauthn::localhost_origin(&url).unwrap_or_else(|| url.clone());
    println!("twostep is listening on http://{bound} (open {open}/signup to create an account)");
    if resolved.dev_mode {
        println!("dev mode is on: messages without a provider show at {url}/dev/outbox and in this console");
    }
    server.serve_until(startup::shutdown_signal(), options).await?;
    Ok(())
}
