//! `twostep audit`: read the audit log, newest first, with filters.

use clap::Args;
use twostep_domain::audit::AuditFilter;
use twostep_domain::policy::admin::parse_instant;
use twostep_domain::time::Timestamp;

use crate::config::Config;

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only this account's events (its e-mail address).
    #[arg(long, visible_alias = "email", value_name = "EMAIL")]
    user: Option<String>,
    /// Only this kind of event (e.g. sign_in_succeeded, two_factor_reset).
    #[arg(long, value_name = "KIND")]
    event: Option<String>,
    /// Only events at or after this time: RFC 3339 (2026-05-01T12:00:00Z) or a UTC date (2026-05-01).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only events before this time: RFC 3339, or a UTC date (that whole day included).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// At most this many entries.
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

fn bound(value: Option<&str>, flag: &str, end_of_day: bool) -> Result<Option<Timestamp>, String> {
    value
        .map(|v| {
            parse_instant(v, end_of_day)
                .ok_or_else(|| format!("--{flag} {v:?}: use RFC 3339 or a date like 2026-05-01"))
        })
        .transpose()
}

pub async fn run(config: &Config, args: &AuditArgs) -> Result<(), Box<dyn std::error::Error>> {
    let since = bound(args.since.as_deref(), "since", false)?;
    let until = bound(args.until.as_deref(), "until", true)?;
    let (_, twostep) = super::open(config).await?;
    let account_id = match &args.user {
        Some(e) => Some(twostep.account_by_email(e).await?.id),
        None => None,
    };
    let filter = AuditFilter {
        account_id,
        kind: args.event.clone(),
        since,
        until,
        limit: args.limit.clamp(1, 10_000),
        ..AuditFilter::default()
    };
    for e in twostep.audit_entries(&filter).await? {
        if args.json {
            let v = serde_json::json!({
                "at": e.at.rfc3339(), "event": e.kind, "account_id": e.account_id.map(|a| a.to_string()),
                "email": e.email, "actor": e.actor, "factor_id": e.factor_id, "success": e.success,
                "ip": e.ip, "user_agent": e.user_agent, "request_id": e.request_id, "details": e.details,
            });
            println!("{v}");
        } else {
            println!(
                "{}  {:<26} {:<7} {:<6} {:<30} {:<15} {}{}",
                e.at.rfc3339(),
                e.kind,
                if e.success { "ok" } else { "FAILED" },
                e.actor,
                e.email.as_deref().unwrap_or("-"),
                e.ip,
                e.details,
                e.factor_id.map(|f| format!(" factor={f}")).unwrap_or_default(),
            );
        }
    }
    Ok(())
}
