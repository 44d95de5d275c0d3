//! One-time codes sent out of band, by SMS, voice call or e-mail
//! (security.md §2.8, SEC-26, SEC-35).
//!
//! A code is 6 digits from the CSPRNG, lives 10 minutes, and only the
//! latest one sent for a purpose is valid (the store keeps one row per
//! account and purpose). It is bound to its purpose, destination and to the
//! login token or session it was sent for, stored only as a keyed hash,
//! works once, and 5 wrong tries void it. Sending is capped so reloading a
//! page never floods an inbox or a phone bill: one send per 30 s per login
//! and per destination, 5 an hour per account and per destination, 10 a
//! day per destination.

pub mod store;

use crate::audit::{AuditKind, AuditKindInfo, Category, RequestContext};
use crate::crypto::HashPurpose;
use crate::crypto::{SealedColumn, SealedField};
use crate::error::{InternalError, StoreError};
use crate::factors::sent_code::store::{CodePurpose, OobCodeRecord, SendCheck, SendCount, SendFilter, SendRecord};
use crate::ids::AccountId;
use crate::notify::notice::mail;
use crate::notify::store::{Channel, Outbound};
use crate::ports::Rng;
use crate::service::{AuditEvent, Twostep};
use crate::time::Timestamp;

pub const CODE_DIGITS: usize = 6;

/// What a wrong, old or used sent code is told, whichever way it came.
pub const SENT_CODE_REFUSED: &str =
    "That code didn't work. Check you typed the latest code we sent, or ask for a new one.";
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// Why a code was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("a code was sent moments ago; wait {retry_after} seconds before asking again")]
    Throttled { retry_after: i64 },
    /// The cooldown holds for a code sent moments ago for another sign-in
    /// (or re-auth) than this one: that code does not work here.
    #[error(
        "a code was sent moments ago for an earlier sign-in, and it does not work for this one; wait {retry_after} \
         seconds, then ask for a new one"
    )]
    SentForEarlier { retry_after: i64 },
    #[error("this method is not available for this account")]
    MethodUnavailable,
    #[error("{0}")]
    InvalidPhone(String),
    #[error("the sign-in has expired; start again")]
    LoginExpired,
    #[error("confirm your password and second factor first")]
    ReauthRequired,
    #[error("this method is locked after too many wrong codes; use a recovery code")]
    FactorLocked,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for SendError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// Where a code went, as the API shows it.
#[derive(Clone, Debug)]
pub struct SentCode {
    pub channel: Channel,
    /// The destination, masked (`+1 ••• ••• ••12`, `a•••@example.com`).
    pub sent_to: String,
    pub expires_in: i64,
}

/// A code to send.
pub(crate) struct CodeRequest<'a> {
    pub account: &'a AccountId,
    pub purpose: CodePurpose,
    pub channel: Channel,
    /// E.164 number or e-mail address.
    pub destination: &'a str,
    /// The number's calling code, for SMS and voice (the §2.8 caps per
    /// calling code).
    pub calling_code: Option<u16>,
    /// Keep the destination, sealed, with the code (phone verification
    /// reads the new number back from it).
    pub keep_destination: bool,
    pub masked: String,
    /// The login token's or session's hash the code is bound to.
    pub binding: &'a str,
    pub lifetime_secs: i64,
    /// A page that takes the code from its query string (e-mail
    /// verification); the code is appended.
    pub link: Option<String>,
}

/// The wait before another send, from each cap's `(window, cap)` and the
/// sends counted for it; `None` when every cap has room.
fn send_wait(limits: &[(i64, i64)], counts: &[SendCount], now: Timestamp) -> Option<i64> {
    let mut wait = 0;
    for (&(window, cap), c) in limits.iter().zip(counts) {
        if c.count >= cap {
            // The window frees a slot when its oldest send leaves it.
            let oldest = if cap == 1 { c.latest } else { c.earliest };
            let until = oldest.map_or(now.secs() + 1, |t| t.secs() + window);
            wait = wait.max((until - now.secs()).max(1));
        }
    }
    (wait > 0).then_some(wait)
}

/// Where a kept destination is sealed: its code's row.
pub(crate) fn destination_field(id: &str) -> SealedField<'_> {
    SealedColumn::PhoneDestination.field(id)
}

/// 6 digits, uniform: rejection sampling keeps `% 10^6` free of bias.
pub(crate) fn six_digits(rng: &dyn Rng) -> String {
    const LIMIT: u32 = 4_294_000_000; // the largest multiple of 10^6 below 2^32
    loop {
        let mut b = [0u8; 4];
        rng.fill(&mut b);
        let v = u32::from_le_bytes(b);
        if v < LIMIT {
            return format!("{:06}", v % 1_000_000);
        }
    }
}

/// Digits only: users paste codes with spaces or dashes.
fn normalise(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    (digits.len() == CODE_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// `a•••@example.com`: enough to recognise one's own address.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_owned(),
    }
}

fn message_for(req: &CodeRequest<'_>, code: &str, minutes: i64) -> Outbound {
    let what = match req.purpose {
        CodePurpose::Login => "sign-in",
        CodePurpose::PhoneVerify => "phone verification",
        CodePurpose::EmailVerify => "e-mail verification",
        CodePurpose::Reauth => "confirmation",
    };
    match req.channel {
        Channel::Sms | Channel::Voice => Outbound {
            id: String::new(),
            channel: req.channel,
            to: req.destination.to_owned(),
            subject: String::new(),
            text: format!("Your twostep {what} code is {code}. It expires in {minutes} minutes. Never share it."),
            html: String::new(),
            code: Some(code.to_owned()),
            expires_at: Timestamp::default(),
        },
        Channel::Email if req.link.is_some() => {
            let link = format!("{}&code={code}", req.link.as_deref().unwrap_or_default());
            let hours = (minutes / 60).max(1);
            mail(
                req.destination,
                "Confirm your e-mail address",
                &format!(
                    "Confirm that this address belongs to your twostep account by opening this link within {hours} \
                     hours:\n\n{link}\n\nOr enter the code {code} on the Security page. If you did not create an \
                     account, ignore this e-mail."
                ),
                "",
                Some(code.to_owned()),
            )
        }
        Channel::Email => mail(
            req.destination,
            &format!("Your twostep {what} code: {code}"),
            &format!(
                "Your {what} code is {code}. It expires in {minutes} minutes and works once.\n\nNever share this \
                 code: twostep staff will never ask for it. If you did not ask for a code, someone knows your \
                 password: change it."
            ),
            "",
            Some(code.to_owned()),
        ),
    }
}

fn code_hash_parts<'a>(id: &'a str, purpose: CodePurpose, destination: &'a str, code: &'a str) -> [&'a [u8]; 4] {
    [id.as_bytes(), purpose.as_str().as_bytes(), destination.as_bytes(), code.as_bytes()]
}

impl Twostep {
    fn code_hash(&self, id: &str, purpose: CodePurpose, destination: &str, code: &str) -> Vec<u8> {
        self.keys.keyed_hash(HashPurpose::OneTimeCode, &code_hash_parts(id, purpose, destination, code)).to_vec()
    }

    /// A keyed hash standing for a phone number or e-mail address in the
    /// send log and with pending codes: the caps can count per destination
    /// without the database holding numbers in the clear.
    pub(crate) fn destination_key(&self, destination: &str) -> String {
        let mac = self.keys.keyed_hash(HashPurpose::ThrottleKey, &[b"destination", destination.as_bytes()]);
        data_encoding::HEXLOWER.encode(&mac[..20])
    }

    /// Sends a fresh code, voiding the earlier one of the same purpose.
    ///
    /// The §2.8 caps are checked and the send recorded in one transaction
    /// serialised with every other send, so a burst on any number of
    /// instances gets exactly what requests one after another would.
    pub(crate) async fn send_code(&self, req: CodeRequest<'_>, ctx: &RequestContext) -> Result<SentCode, SendError> {
        let now = self.now();
        let s = &self.settings;
        let destination = self.destination_key(req.destination);
        let calling_code = req.calling_code.map(|c| c.to_string()).unwrap_or_default();
        let phone = matches!(req.channel, Channel::Sms | Channel::Voice);
        let since = |window: i64| now.plus_secs(-window);
        // (what to count, window, cap); the order of `checks` below.
        let mut caps: Vec<(SendFilter<'_>, i64, i64)> = vec![
            (SendFilter { binding: Some(req.binding), ..SendFilter::default() }, s.resend_cooldown_secs, 1),
            (SendFilter { destination: Some(&destination), ..SendFilter::default() }, s.resend_cooldown_secs, 1),
            (SendFilter { account: Some(req.account), ..SendFilter::default() }, HOUR, s.sends_per_hour),
            (SendFilter { destination: Some(&destination), ..SendFilter::default() }, HOUR, s.sends_per_hour),
            (SendFilter { destination: Some(&destination), ..SendFilter::default() }, DAY, s.sends_per_day),
        ];
        if phone {
            caps.push((
                SendFilter { calling_code: Some(&calling_code), phone_only: true, ..SendFilter::default() },
                HOUR,
                s.phone_sends_per_hour_per_calling_code,
            ));
            caps.push((SendFilter { phone_only: true, ..SendFilter::default() }, HOUR, s.phone_sends_per_hour));
        }
        let checks: Vec<SendCheck<'_>> = caps
            .iter()
            .map(|(filter, window, _)| SendCheck { filter: filter.clone(), since: since(*window) })
            .collect();
        let limits: Vec<(i64, i64)> = caps.iter().map(|(_, window, cap)| (*window, *cap)).collect();
        let decide = |counts: &[SendCount]| send_wait(&limits, counts, now);

        let code = zeroize::Zeroizing::new(six_digits(self.rng()));
        let id = crate::ids::AuthenticatorId::generate(self.rng()).to_string();
        let expires_at = now.plus_secs(req.lifetime_secs);
        let record = OobCodeRecord {
            code_hash: self.code_hash(&id, req.purpose, &destination, &code),
            destination_sealed: req
                .keep_destination
                .then(|| self.keys.seal(req.destination.as_bytes(), destination_field(&id), self.rng())),
            id,
            account_id: req.account.clone(),
            purpose: req.purpose,
            channel: req.channel,
            destination: destination.clone(),
            binding: req.binding.to_owned(),
            created_at: now,
            expires_at,
            failures: 0,
        };
        let send = SendRecord { calling_code: &calling_code };
        if let Some(retry_after) = self.store.insert_oob_code_capped(&record, &send, &checks, &decide).await? {
            crate::meters::throttle_refusal(crate::meters::cap::CODE_SEND);
            self.audit(
                AuditEvent::user(AuditKind::CodeSendThrottled, req.account).failed().details(format!(
                    "{} {}",
                    req.channel.as_str(),
                    req.purpose.as_str()
                )),
                ctx,
            )
            .await;
            if retry_after <= s.resend_cooldown_secs {
                let latest = self.store.oob_code(req.account, req.purpose).await?;
                if latest.is_some_and(|c| c.binding != req.binding && now < c.expires_at) {
                    return Err(SendError::SentForEarlier { retry_after });
                }
            }
            return Err(SendError::Throttled { retry_after });
        }
        let message = message_for(&req, &code, (req.lifetime_secs / 60).max(1));
        self.enqueue(Some(req.account), &message, expires_at).await?;
        self.audit(
            AuditEvent::user(AuditKind::CodeSent, req.account).details(format!(
                "{} to {} ({})",
                req.channel.as_str(),
                req.masked,
                req.purpose.as_str()
            )),
            ctx,
        )
        .await;
        Ok(SentCode { channel: req.channel, sent_to: req.masked, expires_in: req.lifetime_secs })
    }

    /// Checks a code of `purpose` bound to `binding`. Returns the code's
    /// record when it was right, live and not yet used, and spends it;
    /// `accept` further restricts which destinations count (an `sms` answer
    /// must match a code sent to the phone, not one sent by e-mail).
    pub(crate) async fn check_code(
        &self,
        account: &AccountId,
        purpose: CodePurpose,
        binding: &str,
        accept: impl Fn(&OobCodeRecord) -> bool,
        code: &str,
    ) -> Result<Option<OobCodeRecord>, StoreError> {
        let Some(record) = self.store.oob_code(account, purpose).await? else { return Ok(None) };
        if record.binding != binding || !accept(&record) || self.now() >= record.expires_at {
            return Ok(None);
        }
        // The try is counted before the code is compared, in one statement,
        // so a burst gets no more than the 5 tries a sequence gets.
        let max = self.settings.oob_max_failures;
        let Some(tries) = self.store.count_oob_attempt(&record.id, max).await? else {
            self.store.take_oob_code(&record.id).await?;
            return Ok(None);
        };
        let presented = normalise(code).unwrap_or_default();
        // Under every key held: a code sent just before a key rotation
        // reached this instance still counts.
        let parts = code_hash_parts(&record.id, purpose, &record.destination, &presented);
        let matches = self.keys.verify_keyed_hash(HashPurpose::OneTimeCode, &parts, &record.code_hash);
        if !presented.is_empty() && matches {
            // Single use: of racing requests, one deletes the row.
            return Ok(self.store.take_oob_code(&record.id).await?.then_some(record));
        }
        if tries >= max {
            self.store.take_oob_code(&record.id).await?;
        }
        Ok(None)
    }
}

/// Where a factor's sent code goes (see `Twostep::send_challenge_code`).
pub(crate) struct SendTo<'a> {
    pub channel: Channel,
    /// E.164 number or e-mail address.
    pub address: &'a str,
    pub calling_code: Option<u16>,
    pub masked: String,
}

impl Twostep {
    /// Sends the code a sign-in or re-auth challenge asks for, unless the
    /// factor is locked (its own counter `lock` or the account's
    /// `second_factor`): what every factor whose proof is a sent code does.
    pub(crate) async fn send_challenge_code(
        &self,
        req: &crate::factors::Begin<'_>,
        lock: crate::abuse::throttle::Scope,
        to: SendTo<'_>,
    ) -> Result<crate::factors::Challenge, crate::factors::ChallengeError> {
        if self.factor_locked(&lock, req.account).await.map_err(SendError::from)? {
            return Err(SendError::FactorLocked.into());
        }
        let request = CodeRequest {
            account: req.account,
            purpose: req.bound.purpose,
            channel: to.channel,
            destination: to.address,
            calling_code: to.calling_code,
            keep_destination: false,
            masked: to.masked,
            binding: req.bound.id,
            lifetime_secs: self.settings.oob_code_secs,
            link: None,
        };
        Ok(crate::factors::Challenge::Sent(self.send_code(request, req.ctx).await?))
    }
}

#[allow(non_upper_case_globals)]
impl AuditKind {
    pub const CodeSent: AuditKind =
        AuditKind::of(&AuditKindInfo::new("code_sent", Category::SignIns, "A sign-in code was sent").joins_sign_in());
    pub const CodeSendThrottled: AuditKind = AuditKind::of(
        &AuditKindInfo::new("code_send_throttled", Category::SignIns, "A code was not sent: asked for too often")
            .advice("Wait a minute before asking for another code.")
            .joins_sign_in(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(std::sync::atomic::AtomicU32);
    impl Rng for Counter {
        fn fill(&self, buf: &mut [u8]) {
            let v = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for (i, b) in buf.iter_mut().enumerate() {
                *b = v.to_le_bytes()[i % 4];
            }
        }
    }

    #[test]
    fn six_digits_are_zero_padded_and_numeric() {
        let rng = Counter(std::sync::atomic::AtomicU32::new(7));
        assert_eq!(six_digits(&rng), "000007");
        let os = crate::ports::OsRng;
        for _ in 0..1000 {
            let c = six_digits(&os);
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn values_above_the_last_full_million_are_redrawn() {
        // 4_294_967_295 would bias the low codes; the next draw (0) is used.
        let rng = Counter(std::sync::atomic::AtomicU32::new(u32::MAX));
        assert_eq!(six_digits(&rng), "000000");
    }

    #[test]
    fn codes_accept_spaces_and_dashes_only_around_six_digits() {
        assert_eq!(normalise("123 456").as_deref(), Some("123456"));
        assert_eq!(normalise("123-456").as_deref(), Some("123456"));
        assert_eq!(normalise("12345"), None);
        assert_eq!(normalise("1234567"), None);
        assert_eq!(normalise("12345a"), None);
        assert_eq!(normalise("１２３４５６"), None);
    }

    #[test]
    fn sec35_a_full_cap_waits_until_its_oldest_send_leaves_the_window() {
        let now = Timestamp::from_secs(10_000);
        let sent = |count, earliest: i64, latest: i64| SendCount {
            count,
            earliest: Some(Timestamp::from_secs(earliest)),
            latest: Some(Timestamp::from_secs(latest)),
        };
        // Cooldown (cap 1): from the latest send.
        assert_eq!(send_wait(&[(30, 1)], &[sent(1, 9_990, 9_995)], now), Some(25));
        assert_eq!(send_wait(&[(30, 1)], &[SendCount::default()], now), None);
        // Hourly cap: from the earliest send in the window.
        assert_eq!(send_wait(&[(3600, 5)], &[sent(5, 7_000, 9_999)], now), Some(600));
        assert_eq!(send_wait(&[(3600, 5)], &[sent(4, 7_000, 9_999)], now), None);
        // The longest wait of all full caps, never less than a second.
        let limits = [(30, 1), (3600, 5)];
        assert_eq!(send_wait(&limits, &[sent(1, 9_990, 9_995), sent(5, 7_000, 9_999)], now), Some(600));
        assert_eq!(send_wait(&[(3600, 2)], &[sent(2, 6_400, 6_400)], now), Some(1));
    }

    #[test]
    fn emails_are_masked_to_the_first_letter() {
        assert_eq!(mask_email("alice@example.com"), "a•••@example.com");
        assert_eq!(mask_email("bogus"), "•••");
    }
}
