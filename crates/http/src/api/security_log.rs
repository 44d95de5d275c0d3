//! The security log as people read it (`audit::readable`): a sign-in's
//! steps as one entry, in words, what needs attention marked, filtered by
//! category and paged by cursor. The raw log stays at
//! `/api/v1/me/security-log` (`security.rs`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use serde::Serialize;
use twostep_domain::audit::readable::{Category, Readable};
use twostep_domain::audit::{LogPage, LogQuery};

use super::ApiErrorBody;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiSession;

#[derive(utoipa::IntoParams)]
#[expect(dead_code, reason = "documents the query for OpenAPI; parsed by hand for contract errors")]
pub struct ReadableQuery {
    /// Only one category: `sign-ins`, `changes`, `devices` or `warnings`
    /// (entries that need attention, of any category).
    kind: Option<String>,
    /// The `older` cursor of the previous page.
    before: Option<i64>,
    /// At most this many entries (1–100, default 20).
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReadableEntry {
    /// When it began.
    at: String,
    /// What happened, in words: "Signed in with an authenticator app from Chrome on Linux, 127.0.0.1".
    title: String,
    /// What else happened on the way ("1 wrong code").
    notes: Vec<String>,
    /// What to do about it, for failures and warnings.
    advice: Option<String>,
    attention: bool,
    success: bool,
    /// `sign-ins`, `changes` or `devices`.
    category: String,
    ip: String,
    /// The browser, or the companion device's name.
    device: String,
    /// The raw events in it, oldest first (`event` in the raw log).
    events: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReadablePage {
    entries: Vec<ReadableEntry>,
    /// Pass as `before` for the next (older) page; null on the last.
    older: Option<i64>,
}

impl From<Readable> for ReadableEntry {
    fn from(e: Readable) -> Self {
        Self {
            at: e.at.rfc3339(),
            title: e.title,
            notes: e.notes,
            advice: e.advice,
            attention: e.attention,
            success: e.success,
            category: e.category.as_str().to_owned(),
            ip: e.ip,
            device: e.device,
            events: e.kinds,
        }
    }
}

/// `before` as a row id, or a 400 saying what it must be.
pub fn cursor(q: &HashMap<String, String>) -> Result<Option<i64>, ApiError> {
    match q.get("before") {
        None => Ok(None),
        Some(b) => b
            .parse::<i64>()
            .ok()
            .filter(|b| *b > 0)
            .map(Some)
            .ok_or_else(|| ApiError::InvalidRequest("before must be an entry id or an older cursor".into())),
    }
}

/// The account's security log as people read it, newest first.
#[utoipa::path(get, path = "/api/v1/me/security-log/readable", tag = "sessions", security(("bearer" = [])),
    params(ReadableQuery),
    responses((status = 200, body = ReadablePage), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody)))]
pub async fn readable(
    State(s): State<AppState>,
    ApiSession(me): ApiSession,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<ReadablePage>> {
    let category = match q.get("kind") {
        None => None,
        Some(k) => Some(Category::parse(k).ok_or_else(|| {
            ApiError::InvalidRequest("kind must be one of sign-ins, changes, devices, warnings".into())
        })?),
    };
    let size = match q.get("limit") {
        None => 20,
        Some(v) => v.parse::<usize>().map_err(|_| ApiError::InvalidRequest("limit must be a whole number".into()))?,
    };
    let query = LogQuery { category, before: cursor(&q)?, size: size.clamp(1, 100) };
    let LogPage { entries, older } = s.twostep.readable_security_log(&me, query).await?;
    Ok(Json(ReadablePage { entries: entries.into_iter().map(ReadableEntry::from).collect(), older }))
}
