//! The security log page (`/security/log?kind=…&before=…`): the account's
//! readable log (`audit::readable`), one filter at a time, paged by cursor.
//! The Security page shows its latest few entries with the same rows.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use twostep_domain::audit::readable::{Category, Readable};
use twostep_domain::audit::{LogPage, LogQuery};

use super::error::internal;
use super::pages::{LogFilter, LogRow, Message, SecurityLog, human_time};
use super::{WebSession, render};
use crate::AppState;

pub const PATH: &str = "/security/log";
/// Entries on one page of the log.
const PAGE: usize = 20;
/// Entries on the Security page.
pub const LATEST: usize = 5;

impl From<Readable> for LogRow {
    fn from(e: Readable) -> Self {
        Self {
            place_in_title: e.title.contains(&e.device) && e.title.contains(&e.ip),
            when: human_time(e.at),
            title: e.title,
            notes: e.notes,
            advice: e.advice,
            attention: e.attention,
            ok: e.success,
            ip: e.ip,
            device: e.device,
        }
    }
}

/// The log's address for a filter and a cursor.
fn href(kind: Option<Category>, before: Option<i64>) -> String {
    let mut query = Vec::new();
    if let Some(k) = kind {
        query.push(format!("kind={}", k.as_str()));
    }
    if let Some(b) = before {
        query.push(format!("before={b}"));
    }
    if query.is_empty() { PATH.to_owned() } else { format!("{PATH}?{}", query.join("&")) }
}

/// `?kind=` and `?before=` as typed: an unknown filter or a cursor that is
/// not a row id is a 400 page that says so, never a 500.
fn parse(q: &HashMap<String, String>) -> Result<(Option<Category>, Option<i64>), &'static str> {
    let kind = match q.get("kind").map(String::as_str) {
        None | Some("" | "all") => None,
        Some(k) => Some(Category::parse(k).ok_or("There is no such filter. Pick one of the filters on the log page.")?),
    };
    let before = match q.get("before").map(String::as_str) {
        None | Some("") => None,
        Some(b) => Some(b.parse::<i64>().ok().filter(|b| *b > 0).ok_or("That page of the log does not exist.")?),
    };
    Ok((kind, before))
}

pub async fn page(
    State(s): State<AppState>,
    session: WebSession,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (kind, before) = match parse(&q) {
        Ok(parsed) => parsed,
        Err(why) => {
            let message = Message::new(session.nav(), "Security log", why).with_link(PATH, "Back to the security log");
            return render(StatusCode::BAD_REQUEST, &message);
        }
    };
    let query = LogQuery { category: kind, before, size: PAGE };
    let LogPage { entries, older } = match s.twostep.readable_security_log(&session.me, query).await {
        Ok(p) => p,
        Err(e) => return internal(&e),
    };
    let all = LogFilter { label: "Everything", href: href(None, None), current: kind.is_none() };
    let filters = std::iter::once(all)
        .chain(Category::ALL.into_iter().map(|c| LogFilter {
            label: c.label(),
            href: href(Some(c), None),
            current: kind == Some(c),
        }))
        .collect();
    render(
        StatusCode::OK,
        &SecurityLog {
            nav: session.nav(),
            entries: entries.into_iter().map(LogRow::from).collect(),
            filters,
            showing: kind.map(Category::label),
            older: older.map(|o| href(kind, Some(o))),
            newest: before.map(|_| href(kind, None)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn filters_and_cursors_parse_or_say_why() {
        assert_eq!(parse(&q(&[])), Ok((None, None)));
        assert_eq!(parse(&q(&[("kind", "warnings"), ("before", "42")])), Ok((Some(Category::Warnings), Some(42))));
        assert!(parse(&q(&[("kind", "everything")])).is_err());
        for bad in ["x", "-1", "0", "99999999999999999999999"] {
            assert!(parse(&q(&[("before", bad)])).is_err(), "{bad}");
        }
        assert_eq!(href(Some(Category::SignIns), Some(7)), "/security/log?kind=sign-ins&before=7");
    }
}
