//! What an audit event is (`AuditKind`) and everything the log needs to
//! know about it, as data (`AuditKindInfo`): its stored name, its words,
//! its part in a sign-in. The general kinds are in `kinds.rs`; a factor's
//! own kinds are in its module, so adding a factor adds its kinds there and
//! one line in `factors::registry::AUDIT_KINDS`, not arms in the log's code.
//!
//! The names are stored in the audit table: one never changes, or rows
//! already written stop reading as what they were.

use super::AuditEntry;
use super::readable::FactorNames;
use super::wording::{Category, Words};

/// What happened. `AuditKind::SignInSucceeded` and the like are
/// associated constants, defined beside the code that records them.
#[derive(Clone, Copy)]
pub struct AuditKind(&'static AuditKindInfo);

/// One kind of audit event, described.
#[derive(Debug)]
pub struct AuditKindInfo {
    /// The stored name (`"sign_in_succeeded"`).
    pub name: &'static str,
    /// The log's filter it belongs to.
    pub category: Category,
    /// Whether its owner should look at it whatever it says.
    pub attention: bool,
    /// How it reads, when that does not depend on the row.
    pub title: &'static str,
    /// What to do about it.
    pub advice: Option<&'static str>,
    /// How it reads when the outcome, the details or the device change the
    /// words: used instead of `title` and `advice`.
    pub reword: Option<fn(&Said<'_>) -> Sentence>,
    pub sign_in: SignInPart,
    /// Whether its details are the name it gave the factor it points at (a
    /// companion paired or renamed), so removed ones are still named.
    pub names_factor: bool,
}

/// One row, as a kind's `reword` reads it.
#[derive(Clone, Copy, Debug)]
pub struct Said<'a> {
    pub kind: &'a str,
    pub success: bool,
    pub details: &'a str,
    /// The name of the factor the row points at, when known.
    pub device: Option<&'a str>,
}

/// What a row says on its own.
#[derive(Clone, Debug)]
pub struct Sentence {
    pub title: String,
    pub advice: Option<&'static str>,
}

impl Sentence {
    pub fn new(title: impl Into<String>) -> Self {
        Self { title: title.into(), advice: None }
    }

    #[must_use]
    pub fn advice(mut self, advice: &'static str) -> Self {
        self.advice = Some(advice);
        self
    }
}

/// How a kind takes part in a sign-in's entry: the steps of one sign-in are
/// written over several requests and joined into one entry by these.
#[derive(Clone, Copy, Debug, Default)]
pub struct SignInPart {
    /// A second step may write it, so it joins the sign-in before it.
    pub joins: bool,
    pub companion: Companion,
    /// What the entry notes when the sign-in holds it.
    pub note: Option<Note>,
    /// Why a sign-in whose password was right did not finish, when it
    /// holds this kind.
    pub stop: Option<Stop>,
}

/// Whether a kind involves a companion device: its answer comes from the
/// device, not from the browser that signed in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Companion {
    #[default]
    No,
    /// Sent to the companions: their answers may follow.
    Asks,
    /// A companion's answer; `success` says whether it approved.
    Answers,
}

/// A sign-in entry's note for the rows of one kind. Notes are shown by
/// `rank`, lowest first, whichever module defines the kind.
#[derive(Clone, Copy, Debug)]
pub struct Note {
    pub rank: u8,
    pub says: fn(&Steps<'_>) -> Vec<String>,
}

/// Why a sign-in stopped. When several kinds say so, the lowest `rank`
/// is told.
#[derive(Clone, Copy, Debug)]
pub struct Stop {
    pub rank: u8,
    /// Ends "the password was right, …".
    pub says: &'static str,
    /// Whether someone other than the owner may have got this far.
    pub alarming: bool,
}

/// The rows of one kind in a sign-in, oldest first, for its note.
pub struct Steps<'a> {
    pub rows: Vec<&'a AuditEntry>,
    /// The browser that signed in ("Chrome on Linux").
    pub browser: &'a str,
    pub(super) names: &'a FactorNames,
}

impl Steps<'_> {
    /// The name of the factor a row points at (a companion device), when known.
    pub fn factor_name(&self, row: &AuditEntry) -> Option<&str> {
        self.names.of(row.factor_id.as_deref())
    }
}

impl AuditKindInfo {
    /// A kind that reads `title` whatever happened; the builders below add
    /// the rest.
    pub const fn new(name: &'static str, category: Category, title: &'static str) -> Self {
        Self {
            name,
            category,
            attention: false,
            title,
            advice: None,
            reword: None,
            sign_in: SignInPart { joins: false, companion: Companion::No, note: None, stop: None },
            names_factor: false,
        }
    }

    /// A kind whose words depend on the row; `title` and `advice` are unused.
    pub const fn reworded(name: &'static str, category: Category, reword: fn(&Said<'_>) -> Sentence) -> Self {
        let mut info = Self::new(name, category, "");
        info.reword = Some(reword);
        info
    }

    #[must_use]
    pub const fn advice(mut self, advice: &'static str) -> Self {
        self.advice = Some(advice);
        self
    }

    #[must_use]
    pub const fn attention(mut self) -> Self {
        self.attention = true;
        self
    }

    #[must_use]
    pub const fn joins_sign_in(mut self) -> Self {
        self.sign_in.joins = true;
        self
    }

    #[must_use]
    pub const fn companion(mut self, companion: Companion) -> Self {
        self.sign_in.companion = companion;
        self
    }

    #[must_use]
    pub const fn note(mut self, rank: u8, says: fn(&Steps<'_>) -> Vec<String>) -> Self {
        self.sign_in.note = Some(Note { rank, says });
        self
    }

    #[must_use]
    pub const fn stops(mut self, rank: u8, says: &'static str, alarming: bool) -> Self {
        self.sign_in.stop = Some(Stop { rank, says, alarming });
        self
    }

    #[must_use]
    pub const fn names_factor(mut self) -> Self {
        self.names_factor = true;
        self
    }
}

impl AuditKind {
    pub const fn of(info: &'static AuditKindInfo) -> Self {
        Self(info)
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    pub fn info(self) -> &'static AuditKindInfo {
        self.0
    }

    /// A kind this server knows, by its stored name; `None` for a name it
    /// does not (a row of an older version), which still reads as words.
    pub fn parse(s: &str) -> Option<Self> {
        all().find(|k| k.as_str() == s)
    }

    /// How a row of this kind reads on its own.
    pub fn words(self, said: &Said<'_>) -> Words {
        let Sentence { title, advice } = match self.0.reword {
            Some(reword) => reword(said),
            None => Sentence { title: self.0.title.to_owned(), advice: self.0.advice },
        };
        Words { title, advice, attention: self.0.attention, category: self.0.category }
    }
}

/// Every kind this server knows: the general ones, then the factors'.
pub fn all() -> impl Iterator<Item = AuditKind> {
    super::kinds::GENERAL.iter().chain(crate::factors::registry::AUDIT_KINDS).copied()
}

impl PartialEq for AuditKind {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for AuditKind {}

impl std::fmt::Debug for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

#[cfg(test)]
#[path = "kind_tests.rs"]
mod tests;
