//! Failure counters, backoff and lock-out (`security.md` §2.5 and §2.12).
//!
//! Counters live in the database, keyed by scope, so they hold across
//! restarts, login tokens, addresses and every instance sharing the store.
//! After 5 consecutive failures in a scope, attempts wait until the last
//! failure + min(2^(n−5) s, 15 min) and are answered 429 without being
//! evaluated; at 100 a lockable scope locks until an out-of-band unlock.
//! Recovery codes back off but never lock, so the owner always has a way in.
//! Source addresses get a separate cap: 100 failed passwords an hour.

use crate::ids::AccountId;
use crate::time::Timestamp;
use crate::token::TokenHash;

pub const BACKOFF_FROM: i64 = 5;
pub const LOCK_AT: i64 = 100;
pub const MAX_DELAY_SECS: i64 = 15 * 60;
/// Failed passwords per source address per hour (password spraying).
pub const ADDRESS_CAP_PER_HOUR: i64 = 100;

/// A scope's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    pub failures: i64,
    pub last_failure_at: Timestamp,
    pub window_start: Timestamp,
}

/// What to do with an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Answer 429 with this `Retry-After`, without evaluating the attempt.
    Wait {
        retry_after: i64,
    },
    Locked,
}

/// An attempt judged and, when admitted, counted in one atomic step
/// (`ThrottleStore::admit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    /// `Allow` when the attempt was admitted and counted.
    pub verdict: Verdict,
    /// Each scope's failures after counting this attempt (as read, when refused).
    pub counts: Vec<i64>,
    /// The login token's try, when one was asked to be counted with it.
    pub token: TokenTried,
}

/// One try of a login token (sign-in's second step, §2.6), counted in the
/// same atomic step as the attempt's throttles: a try they refuse
/// unevaluated is not one of the token's, and a token expired or worn out
/// admits nothing.
#[derive(Clone, Copy, Debug)]
pub struct TokenTry<'a> {
    pub id: &'a TokenHash,
    pub max_failures: i64,
}

/// What became of a `TokenTry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenTried {
    /// None was asked for, or the throttles refused first.
    NotCounted,
    /// Counted: the token's tries after this one.
    Counted { failures: i64 },
    /// Expired, spent or worn out: nothing was counted.
    Gone,
}

/// How long to wait after `n` consecutive failures.
pub fn delay_secs(n: i64) -> i64 {
    if n < BACKOFF_FROM {
        0
    } else {
        let exp = u32::try_from((n - BACKOFF_FROM).min(20)).unwrap_or(20);
        (1_i64 << exp).min(MAX_DELAY_SECS)
    }
}

pub fn verdict(counter: Option<Counter>, now: Timestamp, lockable: bool) -> Verdict {
    let Some(c) = counter else { return Verdict::Allow };
    if lockable && c.failures >= LOCK_AT {
        return Verdict::Locked;
    }
    let until = c.last_failure_at.plus_secs(delay_secs(c.failures));
    if now < until { Verdict::Wait { retry_after: until.secs() - now.secs() } } else { Verdict::Allow }
}

/// The source address cap: an hourly window rather than consecutive failures.
pub fn address_verdict(counter: Counter, now: Timestamp) -> Verdict {
    if now.secs() - counter.window_start.secs() < 3600 && counter.failures >= ADDRESS_CAP_PER_HOUR {
        Verdict::Wait { retry_after: counter.window_start.secs() + 3600 - now.secs() }
    } else {
        Verdict::Allow
    }
}

/// Several scopes' verdicts as one: locked if any is, else the longest wait.
pub fn combine(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let mut out = Verdict::Allow;
    for v in verdicts {
        out = match (out, v) {
            (Verdict::Locked, _) | (_, Verdict::Locked) => Verdict::Locked,
            (Verdict::Wait { retry_after: a }, Verdict::Wait { retry_after: b }) => {
                Verdict::Wait { retry_after: a.max(b) }
            }
            (Verdict::Wait { retry_after }, Verdict::Allow) | (Verdict::Allow, Verdict::Wait { retry_after }) => {
                Verdict::Wait { retry_after }
            }
            (Verdict::Allow, Verdict::Allow) => Verdict::Allow,
        };
    }
    out
}

/// A factor's own counter, named by the factor that keeps it: the name is
/// the stored key's prefix and the metrics label, so it never changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FactorCounter {
    pub name: &'static str,
    /// Whether enough failures lock the factor; one that never locks (a
    /// recovery code, §2.5) only backs off.
    pub locks: bool,
}

/// The counted things.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Password sign-in of an account.
    Password(AccountId),
    /// Password sign-in of an e-mail with no account (keyed hash, so the
    /// table does not list addresses people tried).
    UnknownEmail(String),
    /// Failed passwords from one address (IPv6: its /64), hourly.
    Address(String),
    /// All code factors of an account together.
    SecondFactor(AccountId),
    /// One factor's tries of an account, kept by that factor (the app's
    /// codes, the phone's, the e-mail's, the recovery codes).
    Factor(FactorCounter, AccountId),
}

impl Scope {
    pub fn key(&self) -> String {
        match self {
            Self::Password(a) => format!("password:{a}"),
            Self::UnknownEmail(h) => format!("password:unknown:{h}"),
            Self::Address(ip) => format!("address:{ip}"),
            Self::SecondFactor(a) => format!("second_factor:{a}"),
            Self::Factor(c, a) => format!("{}:{a}", c.name),
        }
    }

    /// The kind of counter, without what it counts for: a metrics label
    /// (issue 19), so it never names the account, e-mail or address.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Password(_) => "password",
            Self::UnknownEmail(_) => "unknown_email",
            Self::Address(_) => "address",
            Self::SecondFactor(_) => "second_factor",
            Self::Factor(c, _) => c.name,
        }
    }

    pub fn lockable(&self) -> bool {
        match self {
            Self::Factor(c, _) => c.locks,
            Self::Address(_) => false,
            Self::Password(_) | Self::UnknownEmail(_) | Self::SecondFactor(_) => true,
        }
    }

    /// How long a run of failures counts: the address cap is hourly, the
    /// others run until a success resets them.
    pub fn window_secs(&self) -> i64 {
        if matches!(self, Self::Address(_)) { 3600 } else { i64::MAX / 2 }
    }

    /// The verdict on one more attempt given this scope's counter.
    pub fn judge(&self, counter: Counter, now: Timestamp) -> Verdict {
        match self {
            Self::Address(_) => address_verdict(counter, now),
            _ => verdict(Some(counter), now, self.lockable()),
        }
    }
}

/// The address a spraying counter is kept for: IPv4 as is, IPv6 by /64.
pub fn address_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[expect(clippy::unnecessary_wraps, reason = "shaped like the store's answer")]
    fn c(failures: i64, last: i64) -> Option<Counter> {
        Some(Counter { failures, last_failure_at: Timestamp::from_secs(last), window_start: Timestamp::from_secs(0) })
    }

    #[test]
    fn sec31_backoff_starts_at_five_and_caps_at_fifteen_minutes() {
        let now = Timestamp::from_secs(1000);
        assert_eq!(verdict(c(4, 1000), now, true), Verdict::Allow);
        assert_eq!(verdict(c(5, 1000), now, true), Verdict::Wait { retry_after: 1 });
        assert_eq!(verdict(c(5, 999), now, true), Verdict::Allow);
        assert_eq!(verdict(c(8, 1000), now, true), Verdict::Wait { retry_after: 8 });
        assert_eq!(verdict(c(30, 1000), now, true), Verdict::Wait { retry_after: 900 });
        assert_eq!(verdict(c(99, 100), now, true), Verdict::Allow);
        assert_eq!(verdict(c(100, 0), now, true), Verdict::Locked);
        // Recovery codes never lock (SEC-34).
        assert_eq!(verdict(c(500, 0), now, false), Verdict::Allow);
    }

    #[test]
    fn the_documented_schedule_holds() {
        // Time from the 5th failure to the 100th when every wait is used in full.
        let total: i64 = (BACKOFF_FROM..LOCK_AT).map(delay_secs).sum();
        assert!(total >= 21 * 3600 + 30 * 60, "{total}");
        // Failures that fit in the first hour: 5 at once, then doubling waits.
        let mut t = 0;
        let mut n = BACKOFF_FROM;
        while t + delay_secs(n) <= 3600 {
            t += delay_secs(n);
            n += 1;
        }
        // security.md §2.5: "17 attempts fit in the first hour".
        assert_eq!(n, 17);
    }

    #[test]
    fn sec32_the_address_cap_is_hourly() {
        let at = |failures, window_start| Counter {
            failures,
            last_failure_at: Timestamp::from_secs(window_start),
            window_start: Timestamp::from_secs(window_start),
        };
        let now = Timestamp::from_secs(10_000);
        assert_eq!(address_verdict(at(99, 9_000), now), Verdict::Allow);
        assert_eq!(address_verdict(at(100, 9_000), now), Verdict::Wait { retry_after: 2_600 });
        // A window that has run out starts over.
        assert_eq!(address_verdict(at(500, 6_400), now), Verdict::Allow);
        // Never locks, however many.
        let addr = Scope::Address("192.0.2.7".into());
        assert_eq!(addr.judge(at(10_000, 9_999), now), Verdict::Wait { retry_after: 3_599 });
        assert_eq!(addr.window_secs(), 3600);
    }

    #[test]
    fn an_absent_counter_locked_at_zero_admits() {
        // `ThrottleStore::admit` hands a missing counter over as zeros.
        let zero =
            Counter { failures: 0, last_failure_at: Timestamp::from_secs(0), window_start: Timestamp::from_secs(0) };
        let now = Timestamp::from_secs(1_000);
        for scope in [Scope::Password(AccountId::from_stored("a")), Scope::Address("x".into())] {
            assert_eq!(scope.judge(zero, now), Verdict::Allow);
        }
    }

    #[test]
    fn scopes_combine_to_the_strictest_verdict() {
        let w = |s| Verdict::Wait { retry_after: s };
        assert_eq!(combine([]), Verdict::Allow);
        assert_eq!(combine([Verdict::Allow, Verdict::Allow]), Verdict::Allow);
        assert_eq!(combine([Verdict::Allow, w(3)]), w(3));
        assert_eq!(combine([w(8), w(3)]), w(8));
        assert_eq!(combine([w(8), Verdict::Locked, Verdict::Allow]), Verdict::Locked);
    }

    #[test]
    fn a_scope_kind_names_the_counter_not_what_it_counts() {
        let a = AccountId::from_stored("acct-secret");
        let scopes = [
            Scope::Password(a.clone()),
            Scope::UnknownEmail("0123abcd".into()),
            Scope::Address("192.0.2.7".into()),
            Scope::SecondFactor(a.clone()),
            Scope::Factor(FactorCounter { name: "app", locks: true }, a.clone()),
            Scope::Factor(FactorCounter { name: "list", locks: false }, a),
        ];
        let mut kinds: Vec<&str> = scopes.iter().map(Scope::kind).collect();
        for kind in &kinds {
            assert!(!kind.contains("acct") && !kind.contains("192.0") && !kind.contains("0123"), "{kind}");
        }
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), scopes.len(), "one kind per variant and factor");
    }

    #[test]
    fn ipv6_addresses_count_by_slash_64() {
        assert_eq!(address_key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2:ffff::1"), "2001:db8:1:2::/64");
        assert_eq!(address_key("192.0.2.7"), "192.0.2.7");
    }
}
