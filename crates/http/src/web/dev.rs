//! Development-only pages. They answer exactly like an unknown path unless
//! dev mode is on: the outbox shows codes and links in clear.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::error::{internal, not_found_page};
use super::pages::{DevOutbox, OutboxRow};
use super::render;
use crate::AppState;

const SHOWN: i64 = 50;

/// The latest messages, so a developer can sign in with SMS, voice and
/// e-mail codes without any provider. No sign-in: the messages are
/// everyone's, which is fine only on a developer's machine.
pub async fn outbox(State(s): State<AppState>) -> Response {
    if !s.web.dev_mode {
        return not_found_page();
    }
    let records = match s.twostep.recent_outbox(SHOWN).await {
        Ok(r) => r,
        Err(e) => return internal(&e),
    };
    let rows = records
        .iter()
        .map(|r| {
            let (to, subject, text) = match s.twostep.open_outbox(r) {
                Ok(m) => (m.to, m.subject, m.text),
                Err(e) => (String::new(), String::new(), format!("(cannot be opened: {e})")),
            };
            OutboxRow {
                when: r.created_at.rfc3339().replace('T', " ").replace('Z', " UTC"),
                channel: r.channel.as_str(),
                to,
                subject,
                text,
                status: r.status.as_str(),
                attempts: r.attempts,
                error: r.last_error.clone().unwrap_or_default(),
            }
        })
        .collect();
    render(StatusCode::OK, &DevOutbox { nav: None, rows })
}
