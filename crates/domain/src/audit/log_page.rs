//! One page of an account's readable security log: newest first, filtered
//! by category, paged by a cursor (the oldest row id shown), never by an
//! offset, so rows appended while someone reads do not shift the pages.
//!
//! Entries are grouped from batches of rows. The oldest entry of a full
//! batch may continue below it, so it is left for the next batch, which
//! starts right under the last entry kept; an entry is therefore never cut
//! in two. A filter that matches little is bounded by `MAX_BATCHES`: the
//! page then holds what was found and its "older" cursor carries on.

use super::readable::{Category, FactorNames, Readable, group};
use crate::audit::{AuditFilter, Auditor};
use crate::error::StoreError;
use crate::ids::AccountId;

/// Rows read at once: many sign-ins' worth.
const BATCH: i64 = 200;
/// Batches read for one page at most (a filter that matches rarely).
const MAX_BATCHES: usize = 5;
/// The largest page anyone may ask for.
pub const MAX_PAGE: usize = 100;

/// What to show.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogQuery {
    pub category: Option<Category>,
    /// Only entries older than this row id (the last page's `older`).
    pub before: Option<i64>,
    /// Entries per page, 1..=`MAX_PAGE`.
    pub size: usize,
}

#[derive(Clone, Debug, Default)]
pub struct LogPage {
    pub entries: Vec<Readable>,
    /// The cursor of the next (older) page, when there may be one.
    pub older: Option<i64>,
}

impl Auditor {
    pub async fn readable_page(
        &self,
        account: &AccountId,
        q: LogQuery,
        names: &FactorNames,
    ) -> Result<LogPage, StoreError> {
        let size = q.size.clamp(1, MAX_PAGE);
        let mut cursor = q.before;
        let mut entries = Vec::new();
        for _ in 0..MAX_BATCHES {
            let filter = AuditFilter {
                account_id: Some(account.clone()),
                before_id: cursor,
                limit: BATCH,
                ..AuditFilter::default()
            };
            let rows = self.entries(&filter).await?;
            let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= BATCH;
            let mut groups = group(&rows, names);
            if full && groups.len() > 1 {
                // May continue below this batch: read whole with the next.
                groups.pop();
            }
            let mut rest = groups.into_iter().peekable();
            while let Some(g) = rest.next() {
                cursor = Some(g.oldest_id);
                if q.category.is_none_or(|c| g.belongs_to(c)) {
                    entries.push(g);
                }
                if entries.len() == size {
                    let more = full || rest.peek().is_some();
                    return Ok(LogPage { entries, older: cursor.filter(|_| more) });
                }
            }
            if !full {
                return Ok(LogPage { entries, older: None });
            }
        }
        Ok(LogPage { entries, older: cursor })
    }
}
