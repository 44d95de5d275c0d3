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

pub use super::wording::Category;
use super::wording::{method_of, method_words, single};
use crate::abuse::device::describe;
use crate::audit::AuditEntry;
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

    fn of(&self, id: Option<&str>) -> Option<&str> {
        id.and_then(|id| self.0.get(id)).map(String::as_str)
    }
}

/// Kinds only a sign-in writes: a run holding one is a sign-in.
fn signs_in(e: &AuditEntry) -> bool {
    matches!(
        e.kind.as_str(),
        "sign_in_password"
            | "sign_in_second_factor"
            | "sign_in_succeeded"
            | "login_token_exhausted"
            | "password_locked"
            | "new_device_sign_in"
    ) || (e.kind == "sign_in_outside_allowlist")
        || (e.kind == "throttled" && e.details == "password")
}

/// A row that begins a new attempt rather than continuing one.
fn begins_attempt(e: &AuditEntry) -> bool {
    matches!(e.kind.as_str(), "sign_in_password" | "password_locked")
        || (e.kind == "sign_in_outside_allowlist" && e.details != "second step")
        || (e.kind == "throttled" && e.details == "password")
        // A sign-in with the password alone writes only its success (and
        // the new-device row just before it, in the same request).
        || (e.kind == "sign_in_succeeded" && method_of(&e.details).is_none())
}

/// A row a second step may write, after the password step.
fn continues(e: &AuditEntry) -> bool {
    matches!(
        e.kind.as_str(),
        "sign_in_second_factor"
            | "sign_in_succeeded"
            | "login_token_exhausted"
            | "throttled"
            | "factor_locked"
            | "factor_unlocked"
            | "code_sent"
            | "code_send_throttled"
            | "push_sent"
            | "push_approved"
            | "push_denied"
            | "recovery_code_used"
            | "totp_replay"
            | "webauthn_sign_count_regression"
            | "new_device_sign_in"
            | "browser_remembered"
            | "sign_in_outside_allowlist"
    )
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
        let companion = matches!(e.kind.as_str(), "push_approved" | "push_denied")
            && self.rows.iter().any(|r| r.kind == "push_sent");
        companion || e.user_agent == self.first().user_agent
    }

    fn push(&mut self, e: &'a AuditEntry) {
        self.rows.push(e);
        let ends = match e.kind.as_str() {
            "sign_in_succeeded" | "login_token_exhausted" => true,
            "sign_in_password" | "sign_in_outside_allowlist" => !e.success && e.details != "second step",
            _ => false,
        };
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
        if let ("push_device_added" | "authenticator_renamed", Some(id)) = (e.kind.as_str(), &e.factor_id) {
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
    let companion = matches!(e.kind.as_str(), "push_approved" | "push_denied");
    match names.of(e.factor_id.as_deref()) {
        Some(name) if companion => name.to_owned(),
        _ => describe(&e.user_agent),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
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
    let of = |kind: &'static str| rows.iter().filter(move |r| r.kind == kind);
    let companion = |r: &AuditEntry| names.of(r.factor_id.as_deref()).unwrap_or("a companion device").to_owned();

    let mut notes = Vec::new();
    let wrong = of("sign_in_second_factor").count();
    if wrong > 0 {
        notes.push(plural(wrong, "wrong code", "wrong codes"));
    }
    for r in of("push_denied") {
        let how = if r.details == "wrong number" { "Wrong number picked" } else { "Push denied" };
        notes.push(format!("{how} on {}", companion(r)));
    }
    let mut attention = rows.iter().any(|r| single(&r.kind, r.success, &r.details, None).attention);
    let extras = [
        ("totp_replay", "A code already used was refused"),
        ("throttled", "Some tries had to wait: too many in a row"),
        ("factor_locked", "Codes locked after too many wrong ones: a recovery code unlocks them"),
        ("password_locked", "Password sign-in locked after too many wrong passwords"),
        ("recovery_code_used", "A recovery code was used"),
        ("browser_remembered", "This browser was remembered for 30 days"),
    ];
    for (kind, note) in extras {
        if of(kind).next().is_some() {
            notes.push(note.to_owned());
        }
    }
    // Flagged either way; refused only under the operator's setting.
    for (refused, note) in [
        (true, "A security key that may have been copied was refused"),
        (false, "A security key that may have been copied was used"),
    ] {
        if of("webauthn_sign_count_regression").any(|r| r.success != refused) {
            notes.push(note.to_owned());
        }
    }
    if of("new_device_sign_in").next().is_some() {
        notes.push(format!("First sign-in from {device}"));
    }

    let password_right = of("sign_in_password").any(|r| r.success)
        || of("sign_in_outside_allowlist").any(|r| r.details == "right password");
    let (title, advice) = if let Some(done) = of("sign_in_succeeded").next_back() {
        let how = match method_of(&done.details) {
            Some("push") => {
                let by = done.factor_id.as_deref().or_else(|| of("push_approved").next_back()?.factor_id.as_deref());
                format!("a push approved on {}", names.of(by).unwrap_or("your companion device"))
            }
            Some(m) => method_words(m).to_owned(),
            None if done.details.contains("remembered browser") => "your password on a remembered browser".to_owned(),
            None if done.details.contains("enrolment") => "your password (a second factor must be set up)".to_owned(),
            None => "your password".to_owned(),
        };
        if of("account_created").next().is_some() {
            // Signing up signs in, in the same request.
            (format!("Account created and signed in from {place}"), None)
        } else {
            (format!("Signed in with {how} from {place}"), attention.then_some(KNOWS_PASSWORD))
        }
    } else if let Some(out) = of("sign_in_outside_allowlist").next() {
        let advice = if password_right || out.details == "second step" {
            KNOWS_PASSWORD
        } else {
            "Nobody got in. If it was you, sign in from an address on your IP allow-list."
        };
        (format!("Sign-in refused from {place}: the address is not on your IP allow-list"), Some(advice))
    } else if let Some(refused) = of("sign_in_password").find(|r| !r.success) {
        let why = if refused.details == "account disabled" { "the account is disabled" } else { "wrong password" };
        let advice = "If this wasn't you, nobody got in; keep a strong password you use nowhere else.";
        (format!("Sign-in failed from {place}: {why}"), Some(advice))
    } else if password_right {
        let what = if of("login_token_exhausted").next().is_some() {
            "stopped after too many wrong codes"
        } else if of("push_denied").next().is_some() {
            "the push was denied"
        } else if of("factor_locked").next().is_some() {
            "codes are locked"
        } else if wrong > 0 {
            "the code was wrong"
        } else {
            "the second step was not finished"
        };
        // Someone who is not you got past the password: that is news.
        attention |= wrong > 0 || of("push_denied").next().is_some();
        (format!("Sign-in not completed from {place}: the password was right, {what}"), Some(KNOWS_PASSWORD))
    } else if of("throttled").next().is_some() || of("password_locked").next().is_some() {
        (format!("Sign-in refused from {place}: too many tries"), Some("Wait a moment and try again."))
    } else {
        (format!("Sign-in steps from {place}"), None)
    };
    let mut readable = entry(run, title, device);
    readable.success = of("sign_in_succeeded").next().is_some();
    readable.notes = notes;
    readable.advice = advice.map(str::to_owned);
    readable.attention = attention;
    if of("account_created").next().is_some() {
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
