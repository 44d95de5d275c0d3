//! The IP allow-list editor (story P3): one address or range per line, an
//! optional label after it. Opening it needs a recent re-auth, like every
//! sensitive page; a list that leaves out the current address is saved only
//! once the "sign me out" box is ticked.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use twostep_domain::policy::allowlist::{AllowEntry, AllowlistError, EntryInput, MAX_ENTRIES, in_any};

use super::error::{self, Reply, internal};
use super::pages::{AllowRow, Nav};
use super::{SignedForm, WebSession, render, see_other, with_cookie};
use crate::extract::Ctx;
use crate::{AppState, cookies};

pub const PATH: &str = "/security/ip-allowlist";

#[derive(Template)]
#[template(path = "allowlist.html")]
pub struct AllowlistPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    /// The textarea: the saved list, or what was sent when it was refused.
    pub text: String,
    pub rows: Vec<AllowRow>,
    pub current_ip: String,
    /// Whether the saved list admits the current address (always, if empty).
    pub current_listed: bool,
    pub error: Option<String>,
    /// The sent list would shut out the current address: ask to confirm.
    pub lockout: bool,
    pub max: usize,
}

/// The list as the textarea holds it.
fn as_text(entries: &[AllowEntry]) -> String {
    entries
        .iter()
        .map(|e| if e.label.is_empty() { e.range.to_string() } else { format!("{} {}", e.range, e.label) })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One entry per line: the address or range, then an optional label. Blank
/// lines and `#` comments are skipped.
pub fn parse_lines(text: &str) -> Vec<EntryInput> {
    text.lines()
        .map(|l| l.split_once('#').map_or(l, |(before, _)| before).trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (cidr, label) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            EntryInput { cidr: cidr.trim_end_matches(',').to_owned(), label: label.trim().to_owned() }
        })
        .collect()
}

struct Shown {
    text: Option<String>,
    error: Option<String>,
    lockout: bool,
    status: StatusCode,
}

async fn show(s: &AppState, session: &WebSession, ip: String, v: Shown) -> Response {
    let entries = match s.twostep.allowlist_of(&session.me).await {
        Ok(e) => e,
        Err(e) => return error::allowlist(e, PATH).or_page(|r| internal(&r.message)),
    };
    let ranges: Vec<_> = entries.iter().map(|e| e.range).collect();
    let current_listed = ranges.is_empty() || in_any(&ranges, &ip);
    render(
        v.status,
        &AllowlistPage {
            nav: session.nav(),
            csrf: session.csrf.clone(),
            text: v.text.unwrap_or_else(|| as_text(&entries)),
            rows: entries.iter().map(AllowRow::from).collect(),
            current_ip: ip,
            current_listed,
            error: v.error,
            lockout: v.lockout,
            max: MAX_ENTRIES,
        },
    )
}

pub async fn page(State(s): State<AppState>, Ctx(ctx): Ctx, session: WebSession) -> Response {
    match s.twostep.reauth_needs(&session.me).await {
        Ok((false, false)) => {}
        Ok(_) => return error::reauth_first(PATH),
        Err(e) => return internal(&e),
    }
    let shown = Shown { text: None, error: None, lockout: false, status: StatusCode::OK };
    show(&s, &session, ctx.ip, shown).await
}

#[derive(Deserialize)]
pub struct AllowlistForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    entries: String,
    confirm_lockout: Option<String>,
}

pub async fn save(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    SignedForm(session, f): SignedForm<AllowlistForm>,
) -> Response {
    let entries = parse_lines(&f.entries);
    let confirm = f.confirm_lockout.is_some();
    let refused =
        |status, error: String, lockout| Shown { text: Some(f.entries.clone()), error: Some(error), lockout, status };
    let shown = match s.twostep.set_allowlist(&session.me, &entries, confirm, &ctx).await {
        // Leaving an enrolment-only session is a privilege change: the
        // domain gave the session a new id, so the cookie follows (§2.11).
        Ok(saved) => {
            let res = see_other("/security?notice=allowlist_saved");
            return match saved.session_token {
                Some(token) => with_cookie(res, cookies::set(&s.web, s.web.session_cookie(), token.expose(), None)),
                None => res,
            };
        }
        Err(e) => {
            let lockout = matches!(e, AllowlistError::WouldLockOut { .. });
            match error::allowlist(e, PATH) {
                Reply::Inline(r) => refused(r.status, r.message, lockout),
                Reply::Page(res) => return res,
            }
        }
    };
    show(&s, &session, ctx.ip, shown).await
}

super::csrf_field!(AllowlistForm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_entries() {
        let e = parse_lines("203.0.113.7 Home office\n\n  10.0.0.0/8,  VPN # the company\n# a comment\n2001:db8::/48");
        let got: Vec<(&str, &str)> = e.iter().map(|e| (e.cidr.as_str(), e.label.as_str())).collect();
        assert_eq!(got, [("203.0.113.7", "Home office"), ("10.0.0.0/8", "VPN"), ("2001:db8::/48", "")]);
        assert!(parse_lines(" \n#only\n").is_empty());
    }
}
