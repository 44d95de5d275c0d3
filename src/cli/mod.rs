//! Command-line interface: one subcommand per file.

mod access;
mod admin;
mod audit;
mod companion;
mod config_check;
mod key;
mod migrate;
mod oidc;
mod ops;
mod seed;
mod serve;
mod user;

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{Config, LogFormat, Overrides, Resolved};

#[derive(Parser, Debug)]
#[command(name = "twostep", version, about = "Self-hosted accounts with strong two-factor authentication")]
pub struct Cli {
    /// Configuration file (default: ./twostep.toml when present).
    #[arg(long, global = true, env = "TWOSTEP_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [env: TWOSTEP_LISTEN] (default 127.0.0.1:8080).
    #[arg(long, global = true)]
    listen: Option<String>,
    /// sqlite://PATH or postgres://… [env: TWOSTEP_DATABASE_URL].
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Where the SQLite database and the key file live [env: TWOSTEP_DATA_DIR].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Log lines as human text or JSON [env: TWOSTEP_LOG_FORMAT].
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Ask a running server's /readyz (or /livez); exit 0 when it answers 200.
    Healthcheck(ops::HealthcheckArgs),
    /// Copy the live SQLite database, consistently, while the server runs.
    Backup(ops::BackupArgs),
    /// Put a backup in place of the SQLite database (server stopped).
    Restore(ops::RestoreArgs),
    /// Manage accounts.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Grant or revoke the administrator role.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Explain the forward-auth rules (`[access]`) for a URL.
    #[command(subcommand)]
    Access(access::AccessCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(config_check::ConfigCommand),
    /// Rotate the master key; see which key seals what.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Read the audit log.
    Audit(audit::AuditArgs),
    /// The OpenID Connect provider: its clients and signing keys.
    #[command(subcommand)]
    Oidc(oidc::OidcCommand),
    /// A companion device in this terminal: approve or deny sign-ins (push).
    #[command(subcommand)]
    Companion(companion::CompanionCommand),
    /// Benchmarking tools (scripts/bench): bulk-load a THROWAWAY database. Never use on a real one.
    #[command(subcommand)]
    Dev(seed::DevCommand),
}

/// The server's options, given to every command (`global`).
const SERVER_OPTIONS: [&str; 5] = ["config", "listen", "database_url", "data_dir", "log_format"];

/// Parses the command line. `companion` is a client of some server, not
/// the server: its help leaves the server's options out (it ignores them).
/// clap gives a global option to a subcommand only where that subcommand
/// has no option of the same id, so hidden copies there keep them out of
/// its help while the command line stays the same.
pub fn parse() -> Cli {
    let cmd = Cli::command();
    let server: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| SERVER_OPTIONS.contains(&a.get_id().as_str()))
        .map(|a| a.clone().global(false).hide(true))
        .collect();
    let matches = cmd.mut_subcommand("companion", |c| hide_server_options(c, &server)).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn hide_server_options(c: clap::Command, server: &[clap::Arg]) -> clap::Command {
    let c = server.iter().fold(c, |c, a| c.arg(a.clone()));
    let names: Vec<String> = c.get_subcommands().map(|s| s.get_name().to_owned()).collect();
    names.iter().fold(c, |c, n| c.mut_subcommand(n, |sc| hide_server_options(sc, server)))
}

pub async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    // A client of some server: no configuration, no logging set-up.
    if let Command::Companion(cmd) = cli.command {
        return companion::run(cmd).await;
    }
    let overrides = Overrides {
        listen: cli.listen.clone(),
        database_url: cli.database_url.clone(),
        data_dir: cli.data_dir.clone(),
        log_format: cli.log_format,
    };
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    init_logging(config.log_format);
    match cli.command {
        Command::Serve => serve::run(&config).await,
        Command::Migrate => migrate::run(&config).await,
        Command::Healthcheck(args) => ops::healthcheck(&config, &args).await,
        Command::Backup(args) => ops::backup(&config, &args).await,
        Command::Restore(args) => ops::restore(&config, &args).await,
        Command::User(cmd) => user::run(&config, cmd).await,
        Command::Admin(cmd) => admin::run(&config, cmd).await,
        Command::Config(cmd) => config_check::run(&config, &cmd),
        Command::Access(cmd) => access::run(&config, cmd).await,
        Command::Audit(args) => audit::run(&config, &args).await,
        Command::Key(cmd) => key::run(&config, cmd).await,
        Command::Oidc(cmd) => oidc::run(&config, cmd).await,
        Command::Dev(cmd) => seed::run(&config, cmd).await,
        Command::Companion(_) => Ok(()),
    }
}

/// Logs go to stderr (stdout carries command output and the URL line).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The resolved configuration and the domain over a migrated store, for
/// commands that work on data.
pub(crate) async fn open(
    config: &Config,
) -> Result<(Resolved, std::sync::Arc<twostep_domain::service::Twostep>), Box<dyn std::error::Error>> {
    let (resolved, store) = existing(config).await?;
    let twostep = crate::startup::domain(
        &store,
        &resolved,
        std::sync::Arc::new(twostep_domain::ports::SystemClock),
        resolved.settings.clone(),
        None,
    )?;
    Ok((resolved, twostep))
}

/// The configuration and store of an installation that exists: a command
/// run from the wrong folder must say so, not create a new database and a
/// new master key beside nothing (and exit 0).
pub(crate) async fn existing(
    config: &Config,
) -> Result<(Resolved, twostep_store::SqlStore), Box<dyn std::error::Error>> {
    let url = config.database_url();
    if let Some(db) = twostep_store::backup::sqlite_path(&url)
        && !db.exists()
    {
        return Err(format!(
            "no twostep database at {}; run from the server's folder or pass --data-dir",
            db.display()
        )
        .into());
    }
    let resolved = config.resolve_with(crate::config::KeyMode::MustExist)?;
    let store = twostep_store::SqlStore::connect_with(&resolved.database_url, resolved.sqlite_synchronous).await?;
    if !store.is_initialised().await {
        return Err(format!(
            "no twostep tables in {}; start the server (or run `twostep migrate`) first",
            crate::config::mask_url_password(&resolved.database_url)
        )
        .into());
    }
    store.migrate().await?;
    Ok((resolved, store))
}

pub(crate) fn cli_context() -> twostep_domain::audit::RequestContext {
    twostep_domain::audit::RequestContext {
        ip: "cli".into(),
        user_agent: "twostep-cli".into(),
        request_id: String::new(),
    }
}
