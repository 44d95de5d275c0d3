//! `twostep audit`: read the audit log, newest first.

use clap::Args;
use twostep_domain::audit::AuditFilter;

use crate::config::Config;

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only this account's events.
    #[arg(long)]
    email: Option<String>,
    /// Only this kind of event (e.g. sign_in_succeeded).
    #[arg(long)]
    event: Option<String>,
    /// At most this many entries.
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

pub async fn run(config: &Config, args: &AuditArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (_, twostep) = super::open(config).await?;
    let account_id = match &args.email {
        Some(e) => Some(twostep.account_by_email(e).await?.id),
        None => None,
    };
    let entries = twostep
        .audit_entries(&AuditFilter { account_id, kind: args.event.clone(), limit: args.limit.clamp(1, 10_000) })
        .await?;
    for e in entries {
        if args.json {
            let v = serde_json::json!({
                "at": e.at.rfc3339(), "event": e.kind, "account_id": e.account_id.map(|a| a.to_string()),
                "email": e.email, "actor": e.actor, "factor_id": e.factor_id, "success": e.success,
                "ip": e.ip, "user_agent": e.user_agent, "request_id": e.request_id, "details": e.details,
            });
            println!("{v}");
        } else {
            println!(
                "{}  {:<26} {:<7} {:<30} {:<15} {}{}",
                e.at.rfc3339(),
                e.kind,
                if e.success { "ok" } else { "FAILED" },
                e.email.as_deref().unwrap_or("-"),
                e.ip,
                e.details,
                e.factor_id.map(|f| format!(" factor={f}")).unwrap_or_default(),
            );
        }
    }
    Ok(())
}
