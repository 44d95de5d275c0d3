//! The security log as its owner reads it (issue 20, item 4): the audit
//! rows of one account turned into entries a person understands.
//!
//! A sign-in writes several rows over several requests (the password, each
//! code tried, the push sent and answered, the session): they become one
//! entry that says how it ended, how, from where, and what went wrong on the
//! way. The rows carry no sign-in id, so the steps are joined by what they
//! do carry: a step belongs to the sign-in just before it when it comes from
//! the same browser (user agent) within `SIGN_IN_WINDOW_SECS` of the last
//! step, or is a companion's answer to its push; rows of one request (same
//! request id, same browser, within seconds) always stay together.
//!
//! Entries are runs of consecutive rows, never interleaved, so a page of
//! entries ends at a row and the next page starts below it (see
//! `log_page.rs`). Pure: no I/O, no clock, so every rule is unit-tested.

use std::collections::HashMap;

use super::kind::{AuditKind, AuditKindInfo, Companion, Steps};
use super::kinds::is;
pub use super::wording::Category;
use super::wording::{method_of, method_words, single};
use crate::abuse::device::describe;
use crate::audit::AuditEntry;
use crate::factors::Method;
use crate::time::Timestamp;

/// How long after a sign-in's last step a next step still belongs to it:
/// the login token lives 5 minutes, and a push may be answered late in it.
pub const SIGN_IN_WINDOW_SECS: i64 = 10 * 60;

/// Rows sharing a request id join only this close together: the id comes
/// from the client's `X-Request-Id` when it sends one, so it is a hint.
const SAME_REQUEST_SECS: i64 = 5;

const KNOWS_PASSWORD: &str = "If this wasn't you, change your password now: whoever tried knows it.";

/// One entry of the readable log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readable {
    /// The newest and oldest row in it: the paging cursor is `oldest_id`.
    pub newest_id: i64,
    pub oldest_id: i64,
    /// When it began.
    pub at: Timestamp,
    pub title: String,
    /// What else happened on the way ("1 wrong code first").
    pub notes: Vec<String>,
    pub advice: Option<String>,
    pub attention: bool,
    pub success: bool,
    pub ip: String,
    /// The browser ("Chrome on Linux"), or the companion device's name for
    /// what a companion did.
    pub device: String,
    pub category: Category,
    /// The audit kinds in it, oldest first (for API clients and tests).
    pub kinds: Vec<String>,
}

impl Readable {
    /// Whether the `?kind=` filter shows it.
    pub fn belongs_to(&self, filter: Category) -> bool {
        match filter {
            Category::Warnings => self.attention,
            other => self.category == other,
        }
    }
}

/// Second factors' names by id (companion devices, apps), so an entry says
/// "approved on Pixel 8" where the row only holds an id.
#[derive(Clone, Debug, Default)]
pub struct FactorNames(HashMap<String, String>);

impl FactorNames {
    pub fn insert(&mut self, id: impl Into<String>, name: impl Into<String>) {
        self.0.insert(id.into(), name.into());
    }

    pub(super) fn of(&self, id: Option<&str>) -> Option<&str> {
        id.and_then(|id| self.0.get(id)).map(String::as_str)
    }
}

/// What the row's kind is, when this version knows it.
fn info(e: &AuditEntry) -> Option<&'static AuditKindInfo> {
    AuditKind::parse(&e.kind).map(AuditKind::info)
}

fn companion(e: &AuditEntry) -> Companion {
    info(e).map_or(Companion::No, |i| i.sign_in.companion)
}

/// Kinds only a sign-in writes: a run holding one is a sign-in.
fn signs_in(e: &AuditEntry) -> bool {
    use AuditKind as K;
    [
        K::SignInPassword,
        K::SignInSecondFactor,
        K::SignInSucceeded,
        K::LoginTokenExhausted,
        K::PasswordLocked,
        K::NewDeviceSignIn,
        K::SignInOutsideAllowlist,
    ]
    .into_iter()
    .any(|k| is(e, k))
        || (is(e, K::Throttled) && e.details == "password")
}

/// A row that begins a new attempt rather than continuing one.
fn begins_attempt(e: &AuditEntry) -> bool {
    use AuditKind as K;
    is(e, K::SignInPassword)
        || is(e, K::PasswordLocked)
        || (is(e, K::SignInOutsideAllowlist) && e.details != "second step")
        || (is(e, K::Throttled) && e.details == "password")
        // A sign-in with the password alone writes only its success (and
        // the new-device row just before it, in the same request).
        || (is(e, K::SignInSucceeded) && method_of(&e.details).is_none())
}

/// A row a second step may write, after the password step.
fn continues(e: &AuditEntry) -> bool {
    info(e).is_some_and(|i| i.sign_in.joins)
}

/// A run of rows, oldest first.
struct Run<'a> {
    rows: Vec<&'a AuditEntry>,
    /// A sign-in that has ended (succeeded, refused, token spent).
    closed: bool,
}

impl<'a> Run<'a> {
    fn last(&self) -> &'a AuditEntry {
        self.rows[self.rows.len() - 1]
    }

    fn first(&self) -> &'a AuditEntry {
        self.rows[0]
    }

    fn is_sign_in(&self) -> bool {
        self.rows.iter().any(|r| signs_in(r))
    }

    fn same_request(&self, e: &AuditEntry) -> bool {
        let last = self.last();
        !e.request_id.is_empty()
            && e.request_id == last.request_id
            && e.user_agent == last.user_agent
            && e.at.secs() - last.at.secs() <= SAME_REQUEST_SECS
    }

    fn takes(&self, e: &AuditEntry) -> bool {
        if self.same_request(e) {
            return true;
        }
        if !self.is_sign_in() || self.closed || !continues(e) || begins_attempt(e) {
            return false;
        }
        if e.at.secs() - self.last().at.secs() > SIGN_IN_WINDOW_SECS {
            return false;
        }
        // The companion answers from its own device; every other step comes
        // from the browser that gave the password.
        let answer = companion(e) == Companion::Answers && self.rows.iter().any(|r| companion(r) == Companion::Asks);
        answer || e.user_agent == self.first().user_agent
    }

    fn push(&mut self, e: &'a AuditEntry) {
        use AuditKind as K;
        self.rows.push(e);
        let ends = is(e, K::SignInSucceeded)
            || is(e, K::LoginTokenExhausted)
            || ((is(e, K::SignInPassword) || is(e, K::SignInOutsideAllowlist))
                && !e.success
                && e.details != "second step");
        self.closed |= ends;
    }
}

/// The readable entries of `newest_first` (one account's rows, as the log
/// returns them), newest first.
pub fn group(newest_first: &[AuditEntry], known: &FactorNames) -> Vec<Readable> {
    let names = names_with_history(newest_first, known);
    let mut runs: Vec<Run<'_>> = Vec::new();
    for e in newest_first.iter().rev() {
        match runs.last_mut() {
            Some(run) if run.takes(e) => run.push(e),
            _ => {
                let mut run = Run { rows: Vec::new(), closed: false };
                run.push(e);
                runs.push(run);
            }
        }
    }
    runs.iter().rev().map(|run| if run.is_sign_in() { sign_in(run, &names) } else { other(run, &names) }).collect()
}

/// The names the caller knows (current factors), plus those of removed
/// companion devices as their pairing or renaming rows recorded them.
fn names_with_history(rows: &[AuditEntry], known: &FactorNames) -> FactorNames {
    let mut names = FactorNames::default();
    for e in rows.iter().rev() {
        if let (true, Some(id)) = (info(e).is_some_and(|i| i.names_factor), &e.factor_id) {
            names.insert(id.clone(), e.details.clone());
        }
    }
    for (id, name) in &known.0 {
        names.insert(id.clone(), name.clone());
    }
    names
}

/// The device a row came from: for what a companion did, the companion's
/// name (its requests often carry no user agent, which read as "Unknown
/// device"); for the rest, the browser.
pub fn device_of(e: &AuditEntry, names: &FactorNames) -> String {
    match names.of(e.factor_id.as_deref()) {
        Some(name) if companion(e) == Companion::Answers => name.to_owned(),
        _ => describe(&e.user_agent),
    }
}

fn entry(run: &Run<'_>, title: String, device: String) -> Readable {
    let first = run.first();
    Readable {
        newest_id: run.last().id,
        oldest_id: first.id,
        at: first.at,
        title,
        notes: Vec::new(),
        advice: None,
        attention: false,
        success: run.rows.iter().all(|r| r.success),
        ip: first.ip.clone(),
        device,
        category: Category::SignIns,
        kinds: run.rows.iter().map(|r| r.kind.clone()).collect(),
    }
}

/// One sign-in, all its steps.
fn sign_in(run: &Run<'_>, names: &FactorNames) -> Readable {
    let rows = &run.rows;
    let first = run.first();
    let device = describe(&first.user_agent);
    let place = format!("{device}, {}", first.ip);
    let of = |kind: AuditKind| rows.iter().filter(move |r| is(r, kind));
    let mut kinds: Vec<&'static AuditKindInfo> = Vec::new();
    for info in rows.iter().filter_map(|r| info(r)) {
        if !kinds.iter().any(|k| k.name == info.name) {
            kinds.push(info);
        }
    }

    // Each kind notes what it adds to the story, in the order the kinds ask.
    let mut noting: Vec<_> = kinds.iter().filter_map(|k| Some((k.sign_in.note?, k.name))).collect();
    noting.sort_by_key(|(note, _)| note.rank);
    let mut notes = Vec::new();
    for (note, name) in noting {
        let steps = Steps { rows: rows.iter().copied().filter(|r| r.kind == name).collect(), browser: &device, names };
        notes.extend((note.says)(&steps));
    }
    let mut attention = kinds.iter().any(|k| k.attention);
    let stops = || kinds.iter().filter_map(|k| k.sign_in.stop);

    let password_right = of(AuditKind::SignInPassword).any(|r| r.success)
        || of(AuditKind::SignInOutsideAllowlist).any(|r| r.details == "right password");
    let (title, advice) = if let Some(done) = of(AuditKind::SignInSucceeded).next_back() {
        let how = match method_of(&done.details) {
            Some(m) if Method::parse(m).is_some_and(Method::is_approval) => {
                let approved = || rows.iter().rev().find(|r| companion(r) == Companion::Answers && r.success);
                let by = done.factor_id.as_deref().or_else(|| approved()?.factor_id.as_deref());
                format!("a push approved on {}", names.of(by).unwrap_or("your companion device"))
            }
            Some(m) => method_words(m).to_owned(),
            None if done.details.contains("remembered browser") => "your password on a remembered browser".to_owned(),
            None if done.details.contains("enrolment") => "your password (a second factor must be set up)".to_owned(),
            None => "your password".to_owned(),
        };
        if of(AuditKind::AccountCreated).next().is_some() {
            // Signing up signs in, in the same request.
            (format!("Account created and signed in from {place}"), None)
        } else {
            (format!("Signed in with {how} from {place}"), attention.then_some(KNOWS_PASSWORD))
        }
    } else if let Some(out) = of(AuditKind::SignInOutsideAllowlist).next() {
        let advice = if password_right || out.details == "second step" {
            KNOWS_PASSWORD
        } else {
            "Nobody got in. If it was you, sign in from an address on your IP allow-list."
        };
        (format!("Sign-in refused from {place}: the address is not on your IP allow-list"), Some(advice))
    } else if let Some(refused) = of(AuditKind::SignInPassword).find(|r| !r.success) {
        let why = if refused.details == "account disabled" { "the account is disabled" } else { "wrong password" };
        let advice = "If this wasn't you, nobody got in; keep a strong password you use nowhere else.";
        (format!("Sign-in failed from {place}: {why}"), Some(advice))
    } else if password_right {
        let what = stops().min_by_key(|stop| stop.rank).map_or("the second step was not finished", |stop| stop.says);
        // Someone who is not you got past the password: that is news.
        attention |= stops().any(|stop| stop.alarming);
        (format!("Sign-in not completed from {place}: the password was right, {what}"), Some(KNOWS_PASSWORD))
    } else if of(AuditKind::Throttled).next().is_some() || of(AuditKind::PasswordLocked).next().is_some() {
        (format!("Sign-in refused from {place}: too many tries"), Some("Wait a moment and try again."))
    } else {
        (format!("Sign-in steps from {place}"), None)
    };
    let mut readable = entry(run, title, device);
    readable.success = of(AuditKind::SignInSucceeded).next().is_some();
    readable.notes = notes;
    readable.advice = advice.map(str::to_owned);
    readable.attention = attention;
    if of(AuditKind::AccountCreated).next().is_some() {
        readable.category = Category::Changes;
    }
    readable
}

/// Anything else: one action (the rows of one request), told by its most
/// telling row, the others as notes.
fn other(run: &Run<'_>, names: &FactorNames) -> Readable {
    let name = |r: &AuditEntry| names.of(r.factor_id.as_deref()).map(str::to_owned);
    let words: Vec<_> = run.rows.iter().map(|r| single(&r.kind, r.success, &r.details, name(r).as_deref())).collect();
    let lead = words.iter().position(|w| w.attention).unwrap_or(0);
    let row = run.rows[lead];
    let mut readable = entry(run, words[lead].title.clone(), device_of(row, names));
    readable.category = words[lead].category;
    readable.attention = words.iter().any(|w| w.attention);
    readable.advice = words[lead].advice.or_else(|| words.iter().find_map(|w| w.advice)).map(str::to_owned);
    for (i, w) in words.iter().enumerate() {
        if i != lead && !readable.notes.contains(&w.title) && w.title != words[lead].title {
            readable.notes.push(w.title.clone());
        }
    }
    readable
}

#[cfg(test)]
#[path = "readable_tests.rs"]
mod tests;
