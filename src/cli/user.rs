//! `twostep user …`: create, list, show, disable and enable accounts, and
//! reset their two-factor authentication.

use std::io::{BufRead, IsTerminal, Write};

use clap::Subcommand;
use twostep_domain::audit::Actor;

use super::{cli_context, open};
use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account; the password is read from standard input.
    Create { email: String },
    /// List accounts.
    List {
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Show one account and its two-factor status.
    Show { email: String },
    /// Disable an account and end its sessions.
    Disable { email: String },
    /// Enable a disabled account.
    Enable { email: String },
    /// Clear the account's failure counters: unlocks password sign-in and locked code factors.
    Unlock { email: String },
    /// Remove every second factor and recovery code, end all sessions and remembered browsers,
    /// clear the factor lock-outs, and e-mail the user (for a user who lost their factors).
    #[command(name = "reset-2fa")]
    ResetTwoFactor { email: String },
    /// Empty the account's IP allow-list (a user who locked themselves out).
    #[command(name = "clear-allowlist")]
    ClearAllowlist { email: String },
}

fn read_password() -> std::io::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (input is shown): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

pub async fn run(config: &Config, cmd: UserCommand) -> Result<(), Box<dyn std::error::Error>> {
    let (_, twostep) = open(config).await?;
    let ctx = cli_context();
    match cmd {
        UserCommand::Create { email } => {
            let password = read_password()?;
            let a = twostep.sign_up(&email, &password, Actor::Cli, &ctx).await?;
            println!("created {} ({})", a.email, a.id);
        }
        UserCommand::List { limit } => {
            for a in twostep.list_accounts(limit).await? {
                let methods = twostep.methods_of(&a.id).await?;
                println!(
                    "{:<36}  {:<40} 2fa={:<3} {}",
                    a.id.to_string(),
                    a.email.to_string(),
                    if methods.is_empty() { "off" } else { "on" },
                    if a.disabled_at.is_some() { "disabled" } else { "active" }
                );
            }
        }
        UserCommand::Show { email } => {
            let a = twostep.account_by_email(&email).await?;
            let methods = twostep.methods_of(&a.id).await?;
            let authenticators = twostep.authenticators(&a.id).await?;
            println!("id:               {}", a.id);
            println!("email:            {}", a.email);
            if let Some(t) = a.admin_since {
                println!("administrator:    since {}", t.rfc3339());
            }
            println!("created:          {}", a.created_at.rfc3339());
            println!(
                "status:           {}",
                a.disabled_at.map_or("active".to_owned(), |t| format!("disabled since {}", t.rfc3339()))
            );
            println!(
                "last sign-in:     {}",
                a.last_sign_in_at.map_or("never".to_owned(), twostep_domain::time::Timestamp::rfc3339)
            );
            println!(
                "two-factor:       {}",
                if methods.is_empty() {
                    "off".to_owned()
                } else {
                    format!("on ({})", methods.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", "))
                }
            );
            for au in authenticators {
                println!("  authenticator:  {} \"{}\" added {}", au.kind, au.name, au.created_at.rfc3339());
            }
            println!("recovery codes:   {} left", twostep.recovery_codes_remaining(&a.id).await?);
        }
        UserCommand::Disable { email } => {
            let a = twostep.set_account_disabled(&email, true, Actor::Cli, &ctx).await?;
            println!("disabled {}; its sessions have ended", a.email);
        }
        UserCommand::Unlock { email } => {
            let a = twostep.unlock_account(&email, Actor::Cli, &ctx).await?;
            println!("unlocked {}", a.email);
        }
        UserCommand::ResetTwoFactor { email } => {
            let a = twostep.reset_two_factor(&email, Actor::Cli, &ctx).await?;
            println!(
                "reset two-factor authentication of {}: factors and recovery codes removed, sessions ended; \
                 they were notified by e-mail (sent by the running server)",
                a.email
            );
        }
        UserCommand::ClearAllowlist { email } => {
            let a = twostep.account_by_email(&email).await?;
            let removed = twostep.clear_allowlist(&a.id, Actor::Cli, &ctx).await?;
            println!("cleared the IP allow-list of {} ({removed} entries); they were notified by e-mail", a.email);
        }
        UserCommand::Enable { email } => {
            let a = twostep.set_account_disabled(&email, false, Actor::Cli, &ctx).await?;
            println!("enabled {}", a.email);
        }
    }
    Ok(())
}
