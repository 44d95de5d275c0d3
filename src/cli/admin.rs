//! `twostep admin …`: the operator role. There is no administrator by
//! default (SEC-10); the first one is granted here, and only here.

use clap::Subcommand;
use twostep_domain::audit::Actor;

use super::{cli_context, open};
use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Make an account an administrator (the admin pages and API; it needs 2FA to use them).
    Grant { email: String },
    /// Take the administrator role away.
    Revoke { email: String },
    /// List the administrators.
    List,
}

pub async fn run(config: &Config, cmd: AdminCommand) -> Result<(), Box<dyn std::error::Error>> {
    let (_, twostep) = open(config).await?;
    let ctx = cli_context();
    match cmd {
        AdminCommand::Grant { email } => {
            let a = twostep.set_admin(&email, true, Actor::Cli, &ctx).await?;
            let two_factor = !twostep.methods_of(&a.id).await?.is_empty();
            println!("{} is an administrator", a.email);
            if !two_factor {
                println!("note: {} has no two-factor authentication yet; the admin pages need it", a.email);
            }
        }
        AdminCommand::Revoke { email } => {
            let a = twostep.set_admin(&email, false, Actor::Cli, &ctx).await?;
            println!("{} is no longer an administrator", a.email);
        }
        AdminCommand::List => {
            let admins = twostep.admins().await?;
            if admins.is_empty() {
                println!("no administrators yet; make one with `twostep admin grant EMAIL`");
            }
            for a in admins {
                let since = a.admin_since.map(twostep_domain::time::Timestamp::rfc3339).unwrap_or_default();
                println!("{:<36}  {:<40} since {since}", a.id.to_string(), a.email.to_string());
            }
        }
    }
    Ok(())
}
