//! The readable log's rules on rows as the domain writes them, and its
//! paging over the in-memory log.

use std::sync::Arc;

use super::*;
use crate::audit::log_page::{LogPage, LogQuery};
use crate::audit::{AuditLog, Auditor};
use crate::ids::AccountId;
use crate::testing::ManualClock;
use crate::testing::audit::MemAudit;

const CHROME: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:130.0) Gecko/20100101 Firefox/130.0";

/// Rows of one account, appended oldest first as the domain writes them.
#[derive(Default)]
struct Log {
    rows: Vec<AuditEntry>,
    at: i64,
}

impl Log {
    /// A row `secs` after the last one, from `ua`, in request `req`.
    fn row(&mut self, secs: i64, req: &str, ua: &str, kind: &str, success: bool, details: &str) -> &mut AuditEntry {
        self.at += secs;
        self.rows.push(AuditEntry {
            id: i64::try_from(self.rows.len()).unwrap_or_default() + 1,
            at: Timestamp::from_secs(1_800_000_000 + self.at),
            kind: kind.to_owned(),
            account_id: Some(AccountId::from_stored("acc")),
            email: None,
            actor: "user".to_owned(),
            factor_id: None,
            success,
            ip: "127.0.0.1".to_owned(),
            user_agent: ua.to_owned(),
            request_id: req.to_owned(),
            details: details.to_owned(),
        });
        self.rows.last_mut().expect("just pushed")
    }

    fn ok(&mut self, secs: i64, req: &str, kind: &str, details: &str) -> &mut AuditEntry {
        self.row(secs, req, CHROME, kind, true, details)
    }

    fn failed(&mut self, secs: i64, req: &str, kind: &str, details: &str) -> &mut AuditEntry {
        self.row(secs, req, CHROME, kind, false, details)
    }

    /// Password, then the second step asked for.
    fn password(&mut self, req: &str) {
        self.ok(5, req, "sign_in_password", "second factor required");
    }

    fn grouped(&self, names: &FactorNames) -> Vec<Readable> {
        let newest_first: Vec<_> = self.rows.iter().rev().cloned().collect();
        group(&newest_first, names)
    }
}

fn pixel() -> FactorNames {
    let mut names = FactorNames::default();
    names.insert("dev1", "Pixel 8");
    names
}

#[test]
fn a_sign_in_with_a_wrong_code_is_one_entry() {
    let mut log = Log::default();
    log.ok(0, "r0", "account_created", "");
    log.password("r1");
    log.failed(20, "r2", "sign_in_second_factor", "method totp");
    log.ok(30, "r3", "sign_in_succeeded", "method totp").factor_id = Some("app1".into());
    let entries = log.grouped(&FactorNames::default());
    assert_eq!(entries.len(), 2, "{entries:#?}");
    let e = &entries[0];
    assert_eq!(e.title, "Signed in with an authenticator app from Chrome on Linux, 127.0.0.1");
    assert_eq!(e.kinds, ["sign_in_password", "sign_in_second_factor", "sign_in_succeeded"]);
    assert_eq!(e.notes, ["1 wrong code"]);
    assert!(e.success && !e.attention);
    assert_eq!((e.oldest_id, e.newest_id), (2, 4));
    assert_eq!(e.category, Category::SignIns);
    assert_eq!(entries[1].title, "Account created");
    assert_eq!(entries[1].category, Category::Changes);
}

#[test]
fn a_failed_password_is_its_own_entry_before_the_next_try() {
    let mut log = Log::default();
    log.failed(0, "r1", "sign_in_password", "wrong password");
    log.password("r2");
    log.ok(10, "r3", "sign_in_succeeded", "method recovery_code");
    let entries = log.grouped(&FactorNames::default());
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].title, "Sign-in failed from Chrome on Linux, 127.0.0.1: wrong password");
    assert!(!entries[1].success);
    assert!(entries[1].advice.as_deref().is_some_and(|a| a.contains("nobody got in")));
    assert_eq!(entries[0].title, "Signed in with a recovery code from Chrome on Linux, 127.0.0.1");
}

#[test]
fn a_right_password_and_a_spent_login_token_needs_attention() {
    let mut log = Log::default();
    log.password("r1");
    for (i, req) in ["r2", "r3", "r4"].into_iter().enumerate() {
        log.failed(10, req, "sign_in_second_factor", "method sms");
        if i == 2 {
            log.failed(0, req, "login_token_exhausted", "");
        }
    }
    log.ok(10, "r5", "sign_out", "");
    let entries = log.grouped(&FactorNames::default());
    assert_eq!(entries.len(), 2, "the sign-out is not part of it: {entries:#?}");
    let e = &entries[1];
    assert_eq!(
        e.title,
        "Sign-in not completed from Chrome on Linux, 127.0.0.1: the password was right, stopped after too many wrong codes"
    );
    assert_eq!(e.notes[0], "3 wrong codes");
    assert!(e.attention && !e.success);
    assert!(e.advice.as_deref().is_some_and(|a| a.contains("change your password")));
    assert!(e.belongs_to(Category::Warnings) && e.belongs_to(Category::SignIns));
    assert!(!e.belongs_to(Category::Changes));
}

#[test]
fn a_push_sign_in_names_the_companion_that_answered() {
    let mut log = Log::default();
    log.password("r1");
    log.ok(2, "r2", "push_sent", "1 device(s)");
    // The companion answers from its own device, with no browser agent.
    log.row(5, "c1", "", "push_denied", false, "denied").factor_id = Some("dev1".into());
    log.ok(3, "r3", "push_sent", "1 device(s)");
    log.row(5, "c2", "", "push_approved", true, "").factor_id = Some("dev1".into());
    log.ok(1, "r4", "sign_in_succeeded", "method push").factor_id = Some("dev1".into());
    let entries = log.grouped(&pixel());
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let e = &entries[0];
    assert_eq!(e.title, "Signed in with a push approved on Pixel 8 from Chrome on Linux, 127.0.0.1");
    assert_eq!(e.notes, ["Push denied on Pixel 8"]);
    assert!(e.attention, "a denied push needs attention");
    assert_eq!(e.device, "Chrome on Linux");
}

#[test]
fn a_companion_answer_on_its_own_is_named_not_an_unknown_device() {
    let mut log = Log::default();
    log.ok(0, "r1", "reauth", "password");
    log.row(5, "c1", "", "push_approved", true, "").factor_id = Some("dev1".into());
    let entries = log.grouped(&pixel());
    assert_eq!(entries[0].device, "Pixel 8");
    assert_eq!(entries[0].title, "A sign-in request was approved on Pixel 8");
    assert_eq!(entries[1].title, "Confirmed it was you with your password");
}

#[test]
fn a_removed_companion_is_named_from_its_pairing_row() {
    let mut log = Log::default();
    log.ok(0, "r1", "push_device_added", "Old phone").factor_id = Some("gone".into());
    log.ok(60, "r2", "authenticator_removed", "").factor_id = Some("gone".into());
    let entries = log.grouped(&FactorNames::default());
    assert_eq!(entries[0].title, "Second factor removed: Old phone");
    assert_eq!(entries[1].title, "Companion device paired: Old phone");
    assert_eq!(entries[1].category, Category::Devices);
}

#[test]
fn steps_from_another_browser_or_much_later_are_not_joined() {
    let mut log = Log::default();
    log.password("r1");
    log.row(5, "r2", FIREFOX, "sign_in_second_factor", false, "method totp");
    log.failed(SIGN_IN_WINDOW_SECS + 1, "r3", "sign_in_second_factor", "method totp");
    let entries = log.grouped(&FactorNames::default());
    assert_eq!(entries.len(), 3, "{entries:#?}");
    assert_eq!(
        entries[2].title,
        "Sign-in not completed from Chrome on Linux, 127.0.0.1: the password was right, the second step was not finished"
    );
    assert_eq!(entries[1].device, "Firefox on Windows");
}

#[test]
fn a_password_only_sign_in_from_a_new_device_is_one_entry_that_needs_attention() {
    let mut log = Log::default();
    log.ok(0, "r1", "new_device_sign_in", "Chrome on Linux");
    log.ok(0, "r1", "sign_in_succeeded", "password");
    log.ok(5, "r2", "password_changed", "");
    let entries = log.grouped(&FactorNames::default());
    assert_eq!(entries.len(), 2);
    let e = &entries[1];
    assert_eq!(e.title, "Signed in with your password from Chrome on Linux, 127.0.0.1");
    assert_eq!(e.notes, ["First sign-in from Chrome on Linux"]);
    assert!(e.attention);
    assert_eq!(entries[0].title, "Password changed");
}

#[test]
fn signing_up_reads_as_the_account_created() {
    let mut log = Log::default();
    log.ok(0, "r1", "account_created", "");
    log.ok(0, "r1", "sign_in_succeeded", "password");
    let entries = log.grouped(&FactorNames::default());
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].title, "Account created and signed in from Chrome on Linux, 127.0.0.1");
    assert_eq!(entries[0].category, Category::Changes);
}

#[test]
fn a_sign_in_refused_outside_the_allow_list_says_so() {
    let mut log = Log::default();
    log.failed(0, "r1", "sign_in_outside_allowlist", "right password");
    let e = &log.grouped(&FactorNames::default())[0];
    assert_eq!(e.title, "Sign-in refused from Chrome on Linux, 127.0.0.1: the address is not on your IP allow-list");
    assert!(e.attention);
    assert!(e.advice.as_deref().is_some_and(|a| a.contains("knows it")));
}

#[test]
fn a_repeated_request_id_does_not_glue_far_apart_rows() {
    let mut log = Log::default();
    log.ok(0, "same", "password_changed", "");
    log.ok(60, "same", "recovery_codes_revealed", "");
    let entries = log.grouped(&FactorNames::default());
    assert_eq!(entries.len(), 2);
    assert!(entries[0].attention);
}

async fn auditor_with(log: &Log) -> (Auditor, Arc<MemAudit>) {
    let mem = Arc::new(MemAudit::default());
    for r in &log.rows {
        mem.append(r).await.expect("append");
    }
    (Auditor::new(mem.clone(), ManualClock::at(0)), mem)
}

/// Every page, following `older`, as titles.
async fn all_pages(auditor: &Auditor, category: Option<Category>, size: usize) -> Vec<Vec<Readable>> {
    let account = AccountId::from_stored("acc");
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let LogPage { entries, older } =
            auditor.readable_page(&account, LogQuery { category, before, size }, &pixel()).await.expect("page");
        pages.push(entries);
        match older {
            Some(o) => before = Some(o),
            None => return pages,
        }
        assert!(pages.len() < 1000, "paging must end");
    }
}

/// 300 sign-ins of 3 rows and a password change every tenth: more than a
/// batch, so entries meet the batch edge.
fn busy_log() -> Log {
    let mut log = Log::default();
    for i in 0..300 {
        log.password(&format!("p{i}"));
        log.failed(10, &format!("w{i}"), "sign_in_second_factor", "method totp");
        log.ok(10, &format!("s{i}"), "sign_in_succeeded", "method totp");
        if i % 10 == 0 {
            log.ok(10, &format!("c{i}"), "password_changed", "");
        }
        log.at += 3600;
    }
    log
}

#[tokio::test]
async fn pages_cover_every_entry_once_and_never_cut_a_sign_in() {
    let log = busy_log();
    let (auditor, _) = auditor_with(&log).await;
    let pages = all_pages(&auditor, None, 25).await;
    let entries: Vec<_> = pages.iter().flatten().collect();
    assert_eq!(entries.len(), 330);
    assert!(pages.iter().all(|p| p.len() <= 25));
    for e in &entries {
        assert!(e.kinds.len() == 3 || e.kinds == ["password_changed"], "cut: {e:?}");
    }
    // Newest first, no row twice.
    for pair in entries.windows(2) {
        assert!(pair[0].oldest_id > pair[1].newest_id);
    }
    assert_eq!(entries.last().map(|e| e.oldest_id), Some(1));
}

#[tokio::test]
async fn a_filter_pages_through_what_matches_only() {
    let log = busy_log();
    let (auditor, _) = auditor_with(&log).await;
    let changes: Vec<_> = all_pages(&auditor, Some(Category::Changes), 7).await.into_iter().flatten().collect();
    assert_eq!(changes.len(), 30);
    assert!(changes.iter().all(|e| e.title == "Password changed"));
    let warnings: Vec<_> = all_pages(&auditor, Some(Category::Warnings), 7).await.into_iter().flatten().collect();
    assert!(warnings.is_empty());
}

#[tokio::test]
async fn a_cursor_is_stable_while_rows_are_appended() {
    let mut log = busy_log();
    let (auditor, mem) = auditor_with(&log).await;
    let account = AccountId::from_stored("acc");
    let q = LogQuery { size: 5, ..LogQuery::default() };
    let first = auditor.readable_page(&account, q, &pixel()).await.expect("page");
    let second = LogQuery { before: first.older, ..q };
    let before = auditor.readable_page(&account, second, &pixel()).await.expect("page");
    // New activity arrives; the older page is the same.
    log.rows.clear();
    log.ok(0, "new", "password_changed", "");
    for r in &log.rows {
        mem.append(r).await.expect("append");
    }
    let after = auditor.readable_page(&account, second, &pixel()).await.expect("page");
    assert_eq!(before.entries, after.entries);
    let top = auditor.readable_page(&account, q, &pixel()).await.expect("page");
    assert_eq!(top.entries[0].title, "Password changed");
}
