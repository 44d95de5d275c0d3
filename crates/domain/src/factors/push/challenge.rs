//! Push challenges: raised at sign-in or re-auth under the fatigue caps,
//! answered by a device with number matching, read by the sign-in page.

#[allow(clippy::wildcard_imports)]
use super::*;
use std::time::Duration;

use subtle::ConstantTimeEq;

use crate::abuse::throttle::{Scope, Verdict};
use crate::audit::{AuditKind, RequestContext};
use crate::error::FactorError;
use crate::factors::Proven;
use crate::factors::push::store::{PushChallengeRecord, PushCounts, PushDeviceRecord, PushStatus};
use crate::ids::AccountId;
use crate::meters::{self, PushOutcome};
use crate::notify::notice::Notice;
use crate::service::{AuditEvent, Twostep};

/// §2.9: at most this many pending-or-denied pushes…
const FATIGUE_MAX: i64 = 3;
/// …per this many seconds…
const FATIGUE_WINDOW_SECS: i64 = 10 * 60;
/// …and at most this many since the last successful sign-in.
const MAX_SINCE_SUCCESS: i64 = 10;

/// A sign-in request as the device shows it.
#[derive(Clone, Debug)]
pub struct PushRequestView {
    pub id: String,
    pub email: String,
    pub ip: String,
    /// The browser and system, as `device::describe` names them.
    pub client: String,
    pub place: Option<String>,
    pub created_at: crate::time::Timestamp,
    pub expires_in: i64,
}

/// The device's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

/// A push raised at sign-in.
#[derive(Debug)]
pub struct PushStarted {
    pub challenge_id: String,
    /// 0–99, shown as two digits.
    pub number: i64,
    pub expires_in: i64,
    /// The devices asked, by name.
    pub sent_to: String,
}

/// Where a challenge stands, as the sign-in page sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushState {
    Pending,
    Approved,
    Denied,
    Expired,
    /// Approved and already turned into a session.
    Used,
}

impl PushState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Used => "used",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct PushStatusView {
    pub state: PushState,
    pub number: i64,
    pub expires_in: i64,
}

/// A uniform 0–99 by rejection sampling (no modulo bias).
fn two_digits(rng: &dyn crate::ports::Rng) -> i64 {
    loop {
        let mut b = [0u8; 1];
        rng.fill(&mut b);
        if b[0] < 200 {
            return i64::from(b[0] % 100);
        }
    }
}

fn challenge_id(rng: &dyn crate::ports::Rng) -> String {
    let mut b = [0u8; 16];
    rng.fill(&mut b);
    data_encoding::BASE64URL_NOPAD.encode(&b)
}

/// §2.9's caps on the counts so far: `Some(retry_after)` refuses a raise.
fn fatigue_wait(counts: &PushCounts, now: crate::time::Timestamp) -> Option<i64> {
    if counts.unapproved_recent >= FATIGUE_MAX {
        Some(counts.oldest_recent.map_or(FATIGUE_WINDOW_SECS, |t| t.secs() + FATIGUE_WINDOW_SECS - now.secs()).max(1))
    } else if counts.since_last_success >= MAX_SINCE_SUCCESS {
        Some(FATIGUE_WINDOW_SECS)
    } else {
        None
    }
}

impl Twostep {
    /// The account's pending requests; waits up to `wait` for one to arrive.
    pub async fn device_pending(
        &self,
        device: &PushDeviceRecord,
        wait: Duration,
    ) -> Result<Vec<PushRequestView>, PushError> {
        let account = &device.authenticator.account_id;
        let (now, pending) = self
            .long_poll(wait, || async {
                let now = self.now();
                let pending = self.store.pending_push_challenges(account, now).await?;
                let settled = !pending.is_empty();
                Ok(((now, pending), settled))
            })
            .await?;
        let email = match pending.first() {
            Some(_) => self.store.account_by_id(account).await?.map(|a| a.email.as_str().to_owned()),
            None => None,
        }
        .unwrap_or_default();
        Ok(pending
            .into_iter()
            .map(|c| PushRequestView {
                client: crate::abuse::device::describe(&c.user_agent),
                email: email.clone(),
                expires_in: (c.expires_at.secs() - now.secs()).max(0),
                id: c.id,
                ip: c.ip,
                place: c.place,
                created_at: c.created_at,
            })
            .collect())
    }

    /// Reads with `read` until it says the answer is settled or `wait` (at
    /// most `MAX_WAIT_SECS`) has passed. A change on this instance wakes it
    /// at once (the waiter is registered before each read, so none is
    /// missed); other instances' changes are seen by reading again every
    /// second.
    async fn long_poll<T, Fut>(&self, wait: Duration, mut read: impl FnMut() -> Fut) -> Result<T, PushError>
    where
        Fut: std::future::Future<Output = Result<(T, bool), PushError>>,
    {
        // The wait is bounded in one-second rounds rather than against a
        // wall-clock deadline, so nothing here reads time past the `Clock`;
        // a wake-up by a change only ends a round early.
        let mut rounds = wait.min(Duration::from_secs(MAX_WAIT_SECS)).as_secs();
        loop {
            let changed = self.push_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (value, settled) = read().await?;
            if settled || rounds == 0 || self.is_draining() {
                return Ok(value);
            }
            rounds -= 1;
            let _ = tokio::time::timeout(Duration::from_secs(1), changed).await;
        }
    }

    /// The device's answer to one challenge.
    pub async fn answer_push(
        &self,
        device: &PushDeviceRecord,
        challenge_id: &str,
        decision: Decision,
        number: Option<i64>,
        not_me: bool,
        ctx: &RequestContext,
    ) -> Result<(), PushError> {
        let account = &device.authenticator.account_id;
        let device_id = &device.authenticator.id;
        let c = self.store.push_challenge(challenge_id).await?.filter(|c| &c.account_id == account);
        let Some(c) = c else { return Err(PushError::NotFound) };
        let now = self.now();
        if c.status != PushStatus::Pending || now >= c.expires_at {
            if c.status == PushStatus::Pending {
                meters::push_challenge(PushOutcome::Expired);
            }
            return Err(PushError::Closed);
        }
        let right_number = number.is_some_and(|n| n.to_be_bytes().ct_eq(&c.number.to_be_bytes()).into());
        let (status, outcome) = match decision {
            Decision::Approve if right_number => (PushStatus::Approved, Ok(())),
            Decision::Approve => (PushStatus::Denied, Err(PushError::WrongNumber)),
            Decision::Deny => (PushStatus::Denied, Ok(())),
        };
        if !self.store.answer_push_challenge(&c.id, status, device_id, not_me, now).await? {
            return Err(PushError::Closed);
        }
        self.push_changed.notify_waiters();
        meters::push_challenge(match (decision, &outcome) {
            (Decision::Approve, Ok(())) => PushOutcome::Approved,
            (Decision::Approve, Err(_)) => PushOutcome::WrongNumber,
            (Decision::Deny, _) => PushOutcome::Denied,
        });
        let event = |kind| AuditEvent::user(kind, account).factor(device_id.to_string());
        match (decision, &outcome) {
            (Decision::Approve, Ok(())) => self.audit(event(AuditKind::PushApproved), ctx).await,
            (Decision::Approve, Err(_)) => {
                self.audit(event(AuditKind::PushDenied).failed().details("wrong number"), ctx).await;
                // A wrong number is a wrong code (§2.9, §2.5).
                self.count_wrong_code(account, &[Scope::SecondFactor(account.clone())], ctx).await?;
            }
            (Decision::Deny, _) => {
                let details = if not_me { "denied: not me" } else { "denied" };
                self.audit(event(AuditKind::PushDenied).failed().details(details), ctx).await;
                self.notify(account, Notice::push_denied(&device.authenticator.name, not_me), ctx).await;
            }
        }
        outcome
    }

    // ----- the sign-in side ----------------------------------------------

    /// Raises a push bound to `binding` (a login token's or session's hash).
    pub(crate) async fn raise_push(
        &self,
        account: &AccountId,
        binding: &str,
        place: Option<String>,
        ctx: &RequestContext,
    ) -> Result<PushStarted, PushError> {
        // The place comes from a proxy header: shown to the user, so bounded
        // and printable.
        let place = place
            .map(|p| p.chars().filter(|c| !c.is_control()).take(64).collect::<String>())
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty());
        let now = self.now();
        let devices = self.store.push_devices(account).await?;
        if devices.is_empty() {
            return Err(PushError::MethodUnavailable);
        }
        let scope = Scope::SecondFactor(account.clone());
        let verdict = self.throttle_check(&scope).await?;
        if verdict != Verdict::Allow {
            meters::throttle_refusal(scope.kind());
            meters::push_challenge(PushOutcome::Refused);
        }
        match verdict {
            Verdict::Locked => return Err(PushError::FactorLocked),
            Verdict::Wait { retry_after } => return Err(PushError::Throttled { retry_after }),
            Verdict::Allow => {}
        }
        let challenge = PushChallengeRecord {
            id: challenge_id(self.rng()),
            account_id: account.clone(),
            login_token: binding.to_owned(),
            number: two_digits(self.rng()),
            status: PushStatus::Pending,
            created_at: now,
            expires_at: now.plus_secs(self.settings.push_secs),
            answered_at: None,
            device_id: None,
            not_me: false,
            used_at: None,
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.chars().take(512).collect(),
            place,
        };
        self.insert_unless_fatigued(&challenge, ctx).await?;
        meters::push_challenge(PushOutcome::Raised);
        self.push_changed.notify_waiters();
        self.audit(AuditEvent::user(AuditKind::PushSent, account).details(format!("{} device(s)", devices.len())), ctx)
            .await;
        self.wake_devices(&devices, &challenge.id);
        let sent_to = match devices.as_slice() {
            [one] => one.authenticator.name.clone(),
            [first, rest @ ..] => format!("{} and {} more", first.authenticator.name, rest.len()),
            [] => String::new(),
        };
        Ok(PushStarted {
            challenge_id: challenge.id,
            number: challenge.number,
            expires_in: self.settings.push_secs,
            sent_to,
        })
    }

    /// Stores the challenge unless §2.9's caps refuse it, as one step with
    /// the count; a refusal is audited like every throttle.
    async fn insert_unless_fatigued(
        &self,
        challenge: &PushChallengeRecord,
        ctx: &RequestContext,
    ) -> Result<(), PushError> {
        let account = &challenge.account_id;
        let now = challenge.created_at;
        let last_success = self.store.account_by_id(account).await?.and_then(|a| a.last_sign_in_at);
        let decide = |counts: &PushCounts| fatigue_wait(counts, now);
        let since = now.plus_secs(-FATIGUE_WINDOW_SECS);
        let Some(retry_after) = self
            .store
            .insert_push_challenge_capped(challenge, since, last_success.unwrap_or_default(), &decide)
            .await?
        else {
            return Ok(());
        };
        meters::throttle_refusal(meters::cap::PUSH_FATIGUE);
        meters::push_challenge(PushOutcome::Refused);
        self.audit(AuditEvent::user(AuditKind::Throttled, account).failed().details("push"), ctx).await;
        Err(PushError::Throttled { retry_after })
    }

    /// The sign-in page's view of a challenge; waits up to `wait` while it
    /// is pending. Knowing the id (128 random bits, given only to the page
    /// that raised it) is what it takes: the answer holds no secret, and
    /// only the login token turns an approval into a session.
    pub async fn push_status(&self, challenge_id: &str, wait: Duration) -> Result<PushStatusView, PushError> {
        self.long_poll(wait, || async {
            let now = self.now();
            let c = self.store.push_challenge(challenge_id).await?.ok_or(PushError::NotFound)?;
            let state = match c.status {
                PushStatus::Pending if now >= c.expires_at => PushState::Expired,
                PushStatus::Pending => PushState::Pending,
                PushStatus::Approved if c.used_at.is_some() => PushState::Used,
                PushStatus::Approved => PushState::Approved,
                PushStatus::Denied => PushState::Denied,
            };
            let expires_in = (c.expires_at.secs() - now.secs()).max(0);
            Ok((PushStatusView { state, number: c.number, expires_in }, state != PushState::Pending))
        })
        .await
    }

    /// The second step with method `push`: `code` is the challenge id. An
    /// approved challenge of this login token becomes a proof, once.
    pub(crate) async fn use_push_approval(
        &self,
        account: &AccountId,
        challenge_id: &str,
        login_token: &str,
    ) -> Result<Option<Proven>, FactorError> {
        let Some(c) = self.store.push_challenge(challenge_id.trim()).await? else { return Ok(None) };
        if &c.account_id != account || c.login_token != login_token || c.status != PushStatus::Approved {
            return Ok(None);
        }
        if !self.store.use_push_challenge(&c.id, login_token, self.now()).await? {
            return Ok(None);
        }
        meters::push_challenge(PushOutcome::Used);
        Ok(Some(Proven::new(c.device_id.map(|d| d.to_string()).unwrap_or_default())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sec44_fatigue_refuses_a_fourth_unapproved_push_and_an_eleventh_since_success() {
        let now = crate::time::Timestamp::from_secs(10_000);
        let counts = |recent, since| PushCounts {
            unapproved_recent: recent,
            oldest_recent: Some(crate::time::Timestamp::from_secs(9_700)),
            since_last_success: since,
        };
        assert_eq!(fatigue_wait(&counts(2, 2), now), None);
        // The oldest of the three leaves the 10-minute window in 5 minutes.
        assert_eq!(fatigue_wait(&counts(3, 3), now), Some(300));
        assert_eq!(fatigue_wait(&counts(0, 9), now), None);
        assert_eq!(fatigue_wait(&counts(0, 10), now), Some(FATIGUE_WINDOW_SECS));
    }

    #[test]
    fn two_digit_numbers_cover_00_to_99_evenly() {
        struct Counter(std::sync::atomic::AtomicU8);
        impl crate::ports::Rng for Counter {
            fn fill(&self, buf: &mut [u8]) {
                for b in buf {
                    *b = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        let rng = Counter(std::sync::atomic::AtomicU8::new(0));
        let mut seen = [0u32; 100];
        for _ in 0..200 {
            let n = two_digits(&rng);
            seen[usize::try_from(n).unwrap()] += 1;
        }
        // 256 byte values, 200 kept: each number exactly twice.
        assert!(seen.iter().all(|&c| c == 2), "{seen:?}");
    }
}
