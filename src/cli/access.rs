//! `twostep access check URL [--user EMAIL]`: which forward-auth rule a
//! request meets and why, for operators debugging their `[access]` rules.

use clap::Subcommand;
use twostep_domain::policy::access::{Identity, Matched, Target};

use super::open;
use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum AccessCommand {
    /// Explain which rule decides a request, rule by rule.
    Check {
        /// The URL as the browser asked for it (https://app.example.com/path).
        url: String,
        /// The account asking (its organisations count for `org:` subjects);
        /// without it, the request is anonymous.
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value = "GET")]
        method: String,
        /// The client's address (for `networks`).
        #[arg(long)]
        ip: Option<String>,
    },
}

pub async fn run(config: &Config, cmd: AccessCommand) -> Result<(), Box<dyn std::error::Error>> {
    let AccessCommand::Check { url, user, method, ip } = cmd;
    let ip = match ip {
        Some(ip) => {
            Some(twostep_domain::policy::allowlist::parse_ip(&ip).ok_or(format!("{ip:?} is not an IP address"))?)
        }
        None => None,
    };
    let target = Target::from_url(&url, &method, ip).ok_or(format!("{url:?} is not an absolute http(s) URL"))?;
    // The rules alone need no database; a --user is looked up in it.
    let resolved = config.resolve_with(crate::config::KeyMode::Peek)?;
    let access = &resolved.settings.access;
    println!("host {}, path {} (as the rules see it), method {}", target.host, target.path, target.method);
    let (decision, why) = match &user {
        Some(email) => {
            let (_, twostep) = open(config).await?;
            let account = twostep.account_by_email(email).await?;
            let orgs = twostep.org_names_of(&account.id).await?;
            println!(
                "as {} (organisations: {})",
                account.email,
                if orgs.is_empty() { "none".into() } else { orgs.join(", ") }
            );
            access.explain(&target, Some(Identity { email: account.email.as_str(), orgs: &orgs }))
        }
        None => access.explain(&target, None),
    };
    for line in why {
        println!("  {line}");
    }
    let by = match decision.matched {
        Matched::Rule(i) => format!("rule {}", i + 1),
        Matched::Default => "the default".to_owned(),
    };
    let policy = decision.policy.as_str();
    if decision.needs_identity {
        println!("decision: sign-in needed ({by} names subjects; try --user)");
    } else {
        println!("decision: {policy} ({by})");
    }
    Ok(())
}
