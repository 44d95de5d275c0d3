//! Per-account IP allow-lists (story P3, seed 002; SEC-60, SEC-61).
//!
//! An account may list IPv4/IPv6 addresses and CIDR ranges (at most
//! `MAX_ENTRIES`, each with an optional label); an empty list restricts
//! nothing. Entries are normalised (host bits cleared, IPv4-mapped IPv6
//! written as IPv4), so a range is listed once whatever its spelling.
//!
//! - **Sign-in** from outside the list is refused with the same
//!   `invalid_credentials` as a wrong password, after the same Argon2id work,
//!   and it counts as a failed password for the throttles whether or not the
//!   password was right: neither the answer, its timing nor the backoff
//!   tells a right password from a wrong one. It is audited
//!   (`sign_in_outside_allowlist`, saying whether the password was right)
//!   and the owner is mailed, at most once an hour.
//! - **Every request**: a session used from an address outside the list is
//!   ended and the request answered 403 `ip_not_allowed` (later requests with
//!   the token get 401). Ending it, rather than only refusing, means a copied
//!   token is dead after one use elsewhere and the log and the owner hear of
//!   it once, not on every request.
//! - **Editing** needs a recent re-auth (§2.7), and a list that would shut out
//!   the address making the change is refused (409 `would_lock_out`) unless
//!   the caller confirms; the change is audited and notified.
//! - With `allowlist_satisfies_mandate`, a non-empty list meets the
//!   operator's 2FA mandate ("either 2FA or Whitelist IP"); organisation rules
//!   still need a real second factor. An enrolment-only session may then set
//!   up a list instead of a factor, and while the list is what meets the
//!   mandate it cannot be cleared (`two_factor_required_by_policy`).
//!
//! The client address is the socket's, or, behind a configured trusted
//! proxy, the right-most untrusted `X-Forwarded-For` entry (the HTTP crate
//! decides it; this module only compares).

use crate::audit::{Actor, RequestContext};
use crate::error::{FactorError, InternalError, SessionError, StoreError};
use crate::ids::AccountId;
use crate::policy::Mandate;
use crate::policy::store::AllowlistRecord;
use crate::service::Twostep;
use crate::sessions::SignedIn;
use crate::sessions::store::SessionKind;
use crate::time::Timestamp;
use crate::token::Token;

pub use crate::policy::ip_range::{IpRange, MIN_V4_PREFIX, MIN_V6_PREFIX, RangeError, in_any, parse_ip, parse_ranges};

/// Entries one account may list.
pub const MAX_ENTRIES: usize = 50;
/// Characters in a label.
pub const MAX_LABEL_CHARS: usize = 64;

/// One entry as given by a client.
#[derive(Clone, Debug, Default)]
pub struct EntryInput {
    pub cidr: String,
    pub label: String,
}

/// One entry of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowEntry {
    pub range: IpRange,
    pub label: String,
    pub created_at: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum AllowlistError {
    /// `entry` is the text as given.
    #[error("{error}")]
    InvalidRange { entry: String, error: RangeError },
    #[error("the label of {entry} is longer than 64 characters or holds control characters")]
    InvalidLabel { entry: String },
    #[error("an allow-list holds at most 50 entries")]
    TooManyEntries,
    #[error(
        "the list does not contain your current address {current_ip}: saving it would sign you out and refuse \
         your sign-ins from here; confirm to save it anyway"
    )]
    WouldLockOut { current_ip: String },
    #[error("confirm your password and second factor first")]
    ReauthRequired,
    #[error(
        "the operator requires two-factor authentication or an IP allow-list: set up two-factor \
         authentication before clearing the list"
    )]
    RequiredByPolicy,
    #[error("set up two-factor authentication first: this session may only do that")]
    EnrollmentRequired,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for AllowlistError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<FactorError> for AllowlistError {
    fn from(e: FactorError) -> Self {
        match e {
            FactorError::ReauthRequired => Self::ReauthRequired,
            FactorError::Internal(i) => Self::Internal(i),
            other => Self::Internal(InternalError(other.to_string())),
        }
    }
}

/// What a save did.
#[derive(Debug)]
pub struct SavedAllowlist {
    pub entries: Vec<AllowEntry>,
    /// The list met the mandate and turned an enrolment-only session into a
    /// full one, under a new id (§2.11, SEC-52).
    pub left_enrollment: bool,
    /// That full session's token; the presented one no longer works.
    pub session_token: Option<crate::token::Token>,
}

/// Checks and normalises what a client sent: ranges parse, labels fit,
/// duplicates (after normalisation) are dropped, the first label kept.
pub fn validate(entries: &[EntryInput]) -> Result<Vec<(IpRange, String)>, AllowlistError> {
    let mut out: Vec<(IpRange, String)> = Vec::new();
    for e in entries {
        let range = IpRange::parse(&e.cidr)
            .map_err(|error| AllowlistError::InvalidRange { entry: e.cidr.trim().to_owned(), error })?;
        let label = e.label.trim();
        if label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
            return Err(AllowlistError::InvalidLabel { entry: e.cidr.trim().to_owned() });
        }
        if !out.iter().any(|(r, _)| *r == range) {
            out.push((range, label.to_owned()));
        }
    }
    if out.len() > MAX_ENTRIES {
        return Err(AllowlistError::TooManyEntries);
    }
    Ok(out)
}

fn entry_of(r: AllowlistRecord) -> Option<AllowEntry> {
    match IpRange::parse_any(&r.cidr) {
        Ok(range) => Some(AllowEntry { range, label: r.label, created_at: r.created_at }),
        Err(e) => {
            tracing::error!(account = %r.account_id, error = %e, "unreadable allow-list entry skipped");
            None
        }
    }
}

impl Twostep {
    /// The account's list, in its saved order.
    pub async fn allowlist(&self, account: &AccountId) -> Result<Vec<AllowEntry>, InternalError> {
        Ok(self.allowlists.records(account).await?.into_iter().filter_map(entry_of).collect())
    }

    /// Whether `ip` may use the account: always when its list is empty.
    pub async fn address_allowed(&self, account: &AccountId, ip: &str) -> Result<bool, StoreError> {
        self.allowlists.allowed(account, ip).await
    }

    /// Whether a non-empty allow-list meets the operator's mandate for this
    /// account (`allowlist_satisfies_mandate` on, and a list set). Pages use
    /// it to tell such accounts that they need nothing more.
    pub async fn mandate_met_by_allowlist(&self, account: &AccountId) -> Result<bool, StoreError> {
        Ok(self.settings.allowlist_satisfies_mandate && !self.allowlists.records(account).await?.is_empty())
    }

    /// `authenticate`, then the account's IP allow-list (SEC-61; see
    /// `Allowlists::authenticate_from`). Every extractor that turns a token
    /// into a session goes through here.
    pub async fn authenticate_from(&self, token: &Token, ctx: &RequestContext) -> Result<SignedIn, SessionError> {
        self.allowlists.authenticate_from(token, ctx).await
    }

    /// Whether this session may edit the list: any full session; an
    /// enrolment-only one only where a list would meet what it lacks.
    async fn may_edit(&self, me: &SignedIn) -> Result<(), AllowlistError> {
        if me.session.kind == SessionKind::Enrollment
            && (!self.settings.allowlist_satisfies_mandate
                || self.store.org_requires_two_factor(&me.account.id).await?)
        {
            return Err(AllowlistError::EnrollmentRequired);
        }
        Ok(())
    }

    /// The list for the editor; an enrolment-only session reads it only
    /// where it may edit it.
    pub async fn allowlist_of(&self, me: &SignedIn) -> Result<Vec<AllowEntry>, AllowlistError> {
        self.may_edit(me).await?;
        Ok(self.allowlist(&me.account.id).await?)
    }

    /// Replaces the account's list (re-auth needed). `confirm_lockout`
    /// accepts a list that leaves out the address making the change; this
    /// session then ends on its next request.
    pub async fn set_allowlist(
        &self,
        me: &SignedIn,
        entries: &[EntryInput],
        confirm_lockout: bool,
        ctx: &RequestContext,
    ) -> Result<SavedAllowlist, AllowlistError> {
        self.may_edit(me).await?;
        let wanted = validate(entries)?;
        let account = &me.account.id;
        let old = self.allowlists.records(account).await?;
        // Policy refusals come before re-auth (§2.7).
        if wanted.is_empty()
            && !old.is_empty()
            && self.settings.allowlist_satisfies_mandate
            && self.operator_mandate() == Mandate::Enforced
            && self.store.authenticators(account).await?.is_empty()
        {
            return Err(AllowlistError::RequiredByPolicy);
        }
        self.require_recent_auth(me).await?;
        let here = parse_ip(&ctx.ip);
        if !wanted.is_empty() && !confirm_lockout && !here.is_some_and(|ip| wanted.iter().any(|(r, _)| r.contains(ip)))
        {
            return Err(AllowlistError::WouldLockOut { current_ip: ctx.ip.clone() });
        }
        let records = self.allowlists.save(account, &wanted, &old, ctx).await?;
        let left_enrollment = me.session.kind == SessionKind::Enrollment
            && !records.is_empty()
            && !self.two_factor_required(account).await?;
        let session_token = if left_enrollment { self.finish_enrollment(me).await? } else { None };
        Ok(SavedAllowlist {
            entries: records.into_iter().filter_map(entry_of).collect(),
            left_enrollment: session_token.is_some(),
            session_token,
        })
    }

    /// Lifts an account's IP allow-list on the operator's behalf (see
    /// `Allowlists::clear`). Returns how many entries there were.
    pub async fn clear_allowlist(
        &self,
        account: &AccountId,
        actor: Actor,
        ctx: &RequestContext,
    ) -> Result<usize, InternalError> {
        Ok(self.allowlists.clear(account, actor, ctx).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ip_range::allows;

    fn r(s: &str) -> IpRange {
        IpRange::parse(s).expect("valid")
    }

    #[test]
    fn addresses_and_ranges_are_normalised() {
        assert_eq!(r("203.0.113.7").to_string(), "203.0.113.7");
        assert_eq!(r(" 203.0.113.7/32 ").to_string(), "203.0.113.7");
        assert_eq!(r("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(r("2001:DB8::1").to_string(), "2001:db8::1");
        assert_eq!(r("2001:db8:0:0:1::/64").to_string(), "2001:db8::/64");
        assert_eq!(r("::ffff:192.0.2.9").to_string(), "192.0.2.9");
        assert_eq!(r("::ffff:192.0.2.9/120").to_string(), "192.0.2.0/24");
    }

    #[test]
    fn bad_and_broad_ranges_are_refused() {
        for bad in ["", "nonsense", "10.0.0.256", "10.0.0.0/33", "2001:db8::/129", "10.0.0.0/", "/8", "010.0.0.1"] {
            assert!(matches!(IpRange::parse(bad), Err(RangeError::Invalid(_))), "{bad:?} accepted");
        }
        for broad in ["0.0.0.0/0", "10.0.0.0/7", "::/0", "2001:db8::/31"] {
            assert!(matches!(IpRange::parse(broad), Err(RangeError::TooBroad(_))), "{broad:?} accepted");
            assert!(IpRange::parse_any(broad).is_ok(), "{broad:?} refused as a proxy range");
        }
    }

    #[test]
    fn containment_ignores_ipv4_mapping() {
        let net = r("203.0.113.0/24");
        assert!(net.contains(parse_ip("203.0.113.200").expect("ip")));
        assert!(net.contains(parse_ip("::ffff:203.0.113.5").expect("ip")));
        assert!(!net.contains(parse_ip("203.0.114.1").expect("ip")));
        assert!(r("2001:db8::/32").contains(parse_ip("2001:db8:ffff::1").expect("ip")));
        assert!(in_any(&[r("192.0.2.1")], "192.0.2.1"));
        assert!(!in_any(&[r("192.0.2.1")], "unknown"));
    }

    #[test]
    fn validation_dedupes_and_checks_labels() {
        let e = |cidr: &str, label: &str| EntryInput { cidr: cidr.into(), label: label.into() };
        let ok = validate(&[e("10.0.0.1", " office "), e("10.0.0.1/32", "dup"), e("10.0.0.0/8", "")]).expect("ok");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].1, "office");
        let err = validate(&[e("10.0.0.1", "ok"), e("10.0.0.300", "")]).expect_err("bad");
        assert!(matches!(err, AllowlistError::InvalidRange { ref entry, .. } if entry == "10.0.0.300"));
        assert!(err.to_string().contains("10.0.0.300"));
        let long = "x".repeat(65);
        assert!(matches!(validate(&[e("10.0.0.1", &long)]), Err(AllowlistError::InvalidLabel { .. })));
        assert!(matches!(validate(&[e("10.0.0.1", "a\nb")]), Err(AllowlistError::InvalidLabel { .. })));
        let many: Vec<EntryInput> = (0..=50).map(|i| e(&format!("10.0.0.{i}"), "")).collect();
        assert!(matches!(validate(&many), Err(AllowlistError::TooManyEntries)));
        assert_eq!(validate(&many[..50]).expect("fifty").len(), 50);
    }

    #[test]
    fn an_empty_list_allows_everyone_and_a_list_only_its_ranges() {
        let rec = |cidr: &str| AllowlistRecord {
            account_id: AccountId::from_stored("a"),
            cidr: cidr.into(),
            label: String::new(),
            created_at: Timestamp::from_secs(0),
        };
        assert!(allows(&[], "198.51.100.1"));
        assert!(allows(&[], "unknown"));
        let list = [rec("198.51.100.0/24"), rec("2001:db8::1")];
        assert!(allows(&list, "198.51.100.9"));
        assert!(allows(&list, "2001:db8::1"));
        assert!(!allows(&list, "2001:db8::2"));
        assert!(!allows(&list, "203.0.113.1"));
        assert!(!allows(&list, "unknown"));
    }

    #[test]
    fn proxy_lists_parse() {
        let list = parse_ranges("127.0.0.1/32, 10.0.0.0/8,,fc00::/7").expect("ok");
        assert_eq!(list.len(), 3);
        assert!(parse_ranges("127.0.0.1, bogus").is_err());
        assert!(parse_ranges("").expect("empty").is_empty());
    }
}
