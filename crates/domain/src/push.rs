//! Push approval (story L2, security.md §2.9): a companion device approves
//! or denies a sign-in, with number matching, and no third party.
//!
//! - **Pairing.** A re-authenticated user asks for a pairing code (256 bits,
//!   10 minutes, single use) shown as a QR link. The device makes an ECDSA
//!   P-256 key pair (WebCrypto in the companion page, a 0600 file in the CLI
//!   companion), proves it holds the private key by signing the code, and
//!   becomes an authenticator of kind `push`.
//! - **Device requests** carry the device id, a timestamp and a signature
//!   over method, path, timestamp and the body's SHA-256
//!   ([`device_message`]); the server keeps only public keys, so a database
//!   leak gives nobody the power to approve.
//! - **Challenges.** Method `push` at sign-in records who asks (address,
//!   client, place if known) and a random number 00–99 shown on the sign-in
//!   page. The device signs `{challenge id (in the path), decision, number}`
//!   and the server checks the signature, the device, the number and that
//!   the challenge is still pending and younger than 60 s. Every state
//!   change is one conditional UPDATE, so answers are final and single use;
//!   a wrong number denies the push and counts as a wrong code (§2.5).
//! - **Fatigue.** At most 3 pending-or-denied pushes per 10 minutes and 10
//!   since the last successful sign-in; beyond, the method answers 429.
//! - **Waking.** Devices long-poll; installed companion pages are also woken
//!   through Web Push and operators may add a signed webhook (`PushWaker`).
//!   A wake-up carries the challenge id only.
//! - The browser learns the outcome from `push_status` and turns an approved
//!   challenge into a session through the normal second step
//!   (`verify_login` with method `push` and the challenge id as the code),
//!   which consumes it once, bound to its login token.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::{AuditKind, RequestContext};
use crate::crypto::SealedField;
use crate::error::{FactorError, InternalError, StoreError};
use crate::factors::Proof;
use crate::ids::{AccountId, AuthenticatorId};
use crate::notice::Notice;
use crate::ports::{AuthenticatorRecord, PushChallengeRecord, PushCounts, PushDeviceRecord, PushStatus, Store};
use crate::service::{AuditEvent, Twostep};
use crate::sessions::SignedIn;
use crate::throttle::{Scope, Verdict};
use crate::token::Token;

pub const PUSH_KIND: &str = "push";

/// §2.9: at most this many pending-or-denied pushes…
const FATIGUE_MAX: i64 = 3;
/// …per this many seconds…
const FATIGUE_WINDOW_SECS: i64 = 10 * 60;
/// …and at most this many since the last successful sign-in.
const MAX_SINCE_SUCCESS: i64 = 10;
/// How far a device's clock may be from ours. Device requests are reads or
/// final answers, so a replay inside the window achieves nothing new.
const DEVICE_CLOCK_SKEW_SECS: i64 = 5 * 60;
/// Challenges are kept this long for the "since the last success" count
/// and the security log's context, then swept.
pub const KEEP_CHALLENGES_SECS: i64 = 30 * 24 * 60 * 60;
/// The longest a long-poll may wait (under the server's 30 s request timeout).
pub const MAX_WAIT_SECS: u64 = 25;
const DEVICE_NAME_MAX: usize = 64;

/// The text a device signs for each request (see the module docs).
pub fn device_message(method: &str, path: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let digest = data_encoding::HEXLOWER.encode(&Sha256::digest(body));
    format!("twostep-device-v1\n{}\n{path}\n{timestamp}\n{digest}", method.to_ascii_uppercase()).into_bytes()
}

/// The text a device signs to prove it holds its key when pairing.
pub fn pairing_message(code: &str, public_key_b64: &str) -> Vec<u8> {
    format!("twostep-pair-v1\n{code}\n{public_key_b64}").into_bytes()
}

/// Parses a base64url (unpadded) SEC1 uncompressed P-256 point.
pub fn parse_public_key(b64: &str) -> Result<(Vec<u8>, VerifyingKey), PushError> {
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(b64.trim_end_matches('=').as_bytes())
        .map_err(|_| PushError::InvalidKey)?;
    if bytes.len() != 65 || bytes[0] != 4 {
        return Err(PushError::InvalidKey);
    }
    let key = VerifyingKey::from_sec1_bytes(&bytes).map_err(|_| PushError::InvalidKey)?;
    Ok((bytes, key))
}

/// Checks a base64url IEEE P1363 (r ‖ s, 64 bytes) signature, the format
/// WebCrypto produces.
pub fn signature_valid(key: &VerifyingKey, message: &[u8], signature_b64: &str) -> bool {
    let Ok(raw) = data_encoding::BASE64URL_NOPAD.decode(signature_b64.trim_end_matches('=').as_bytes()) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&raw) else { return false };
    // WebCrypto does not normalise s; both forms are the same signature.
    let sig = sig.normalize_s().unwrap_or(sig);
    key.verify(message, &sig).is_ok()
}

/// Real endpoints are a few hundred bytes; the cap keeps a hostile device
/// from parking megabytes in the database.
pub const MAX_ENDPOINT_LEN: usize = 4096;

/// Base64url, lenient on encoding (padding, `+` and `/`: some clients encode
/// with `btoa`); the callers are strict about what the bytes must be.
pub fn decode_b64url(text: &str) -> Option<Vec<u8>> {
    let text: String = text
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    data_encoding::BASE64URL_NOPAD.decode(text.as_bytes()).ok()
}

/// A browser's Web Push subscription (`PushSubscription.toJSON()`; other
/// fields such as `expirationTime` are ignored). Checked here when a device
/// registers it, and encrypted to by `twostep_delivery::webpush`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebPushSubscription {
    pub endpoint: String,
    pub keys: WebPushKeys,
}

/// The subscriber's half of the encryption (RFC 8291), both base64url.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebPushKeys {
    /// A 65-byte uncompressed P-256 point.
    pub p256dh: String,
    /// 16 random bytes; with the endpoint it reads messages that get past
    /// the push service, so it stays out of logs.
    pub auth: String,
}

impl std::fmt::Debug for WebPushKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebPushKeys").field("p256dh", &self.p256dh).field("auth", &"[redacted]").finish()
    }
}

impl WebPushKeys {
    /// The subscriber's public key and auth secret, or why they cannot be
    /// encrypted to. Only the uncompressed point is accepted: RFC 8291's key
    /// schedule hashes that form, and it is the only one browsers send.
    pub fn decode(&self) -> Result<(p256::PublicKey, zeroize::Zeroizing<[u8; 16]>), &'static str> {
        let point = decode_b64url(&self.p256dh).ok_or("p256dh is not base64url")?;
        if point.len() != 65 || point[0] != 0x04 {
            return Err("p256dh must be a 65-byte uncompressed P-256 point");
        }
        let public = p256::PublicKey::from_sec1_bytes(&point).map_err(|_| "p256dh is not a point on P-256")?;
        let auth = zeroize::Zeroizing::new(decode_b64url(&self.auth).ok_or("auth is not base64url")?);
        let auth: [u8; 16] = auth.as_slice().try_into().map_err(|_| "auth must be 16 bytes")?;
        Ok((public, zeroize::Zeroizing::new(auth)))
    }
}

impl WebPushSubscription {
    /// Whether a device may register this subscription: keys that can be
    /// encrypted to, and an https endpoint (http only with `allow_http`, for
    /// a local push service) without user name or password (reqwest would
    /// turn them into an `Authorization` header, clobbering VAPID's), at most
    /// `MAX_ENDPOINT_LEN` bytes. Without `allow_http`, IP addresses (in any
    /// spelling the URL parser reads as one) and `localhost` are refused:
    /// push services are public names, and an account holder must not aim
    /// our POSTs into the deployment's own network.
    pub fn check(&self, allow_http: bool) -> Result<(), PushError> {
        self.keys.decode().map_err(|_| PushError::InvalidSubscription)?;
        endpoint_problem(&self.endpoint, allow_http).map_or(Ok(()), |_| Err(PushError::InvalidSubscription))
    }
}

fn endpoint_problem(endpoint: &str, allow_http: bool) -> Option<&'static str> {
    if endpoint.len() > MAX_ENDPOINT_LEN {
        return Some("endpoint is too long");
    }
    let Ok(url) = url::Url::parse(endpoint) else { return Some("endpoint is not a URL") };
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Some("endpoint must be an https URL"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("endpoint must not carry a user name or password");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Some("endpoint has no host");
    }
    if allow_http {
        return None;
    }
    // `domain()` is None exactly when the host is an IP address.
    match url.domain().map(|d| d.trim_end_matches('.').to_ascii_lowercase()) {
        None => Some("endpoint must be a push service's public host, not an IP address"),
        Some(d) if d == "localhost" || d.ends_with(".localhost") => {
            Some("endpoint must be a push service's public host")
        }
        Some(_) => None,
    }
}

/// Whom a wake-up goes to.
#[derive(Clone, Debug)]
pub struct WakeTarget {
    pub device_id: AuthenticatorId,
    pub account_id: AccountId,
    pub subscription: Option<WebPushSubscription>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeOutcome {
    Sent,
    /// This waker has nothing to do for the device (no subscription).
    Skipped,
    /// The subscription is dead (404/410): forget it.
    Gone,
}

/// A way to wake a device for a new challenge beyond its own long-poll:
/// Web Push, or an operator's webhook (ntfy…). Best effort: the device's
/// long-poll still sees the challenge if a wake-up is lost.
#[async_trait]
pub trait PushWaker: Send + Sync {
    fn name(&self) -> &'static str;
    /// Carries the challenge id and nothing else. The error text never
    /// holds the subscription's secrets.
    async fn wake(&self, target: &WakeTarget, challenge_id: &str) -> Result<WakeOutcome, String>;
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("this pairing link is invalid, used or expired; add the device again")]
    InvalidPairing,
    #[error("the public key must be a base64url P-256 point (65 bytes, uncompressed)")]
    InvalidKey,
    #[error("the request signature is invalid")]
    InvalidSignature,
    #[error("the Web Push subscription is invalid")]
    InvalidSubscription,
    #[error("names are 1 to 64 characters")]
    InvalidName,
    #[error("no such sign-in request")]
    NotFound,
    #[error("this sign-in request was already answered or has expired")]
    Closed,
    #[error("that is not the number shown on the sign-in page; the request was denied")]
    WrongNumber,
    #[error("the sign-in has expired; start again")]
    LoginExpired,
    #[error("no companion device is set up for this account")]
    MethodUnavailable,
    #[error("too many sign-in requests; try again in {retry_after} seconds or use another method")]
    Throttled { retry_after: i64 },
    #[error("this method is locked after too many wrong codes; use a recovery code")]
    FactorLocked,
    #[error("confirm your password and second factor first")]
    ReauthRequired,
    #[error("set up an authenticator app or phone first; a companion device is an additional method")]
    TwoFactorNotEnabled,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for PushError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<FactorError> for PushError {
    fn from(e: FactorError) -> Self {
        match e {
            FactorError::Internal(i) => Self::Internal(i),
            FactorError::NotFound => Self::NotFound,
            FactorError::InvalidName => Self::InvalidName,
            _ => Self::ReauthRequired,
        }
    }
}

/// A pairing code, to show as a QR link.
#[derive(Debug)]
pub struct Pairing {
    pub code: Token,
    pub expires_in: i64,
}

/// What a device sends to pair.
#[derive(Debug)]
pub struct PairRequest<'a> {
    pub code: &'a str,
    pub name: &'a str,
    /// base64url SEC1 uncompressed P-256 point.
    pub public_key: &'a str,
    /// Its signature over `pairing_message(code, public_key)`.
    pub proof: &'a str,
    pub subscription: Option<WebPushSubscription>,
}

#[derive(Debug)]
pub struct Paired {
    pub device: AuthenticatorRecord,
    pub email: String,
}

/// The signed headers of a device request.
#[derive(Clone, Copy, Debug)]
pub struct DeviceRequest<'a> {
    pub device_id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
    pub method: &'a str,
    /// Path and query, exactly as sent.
    pub path: &'a str,
    pub body: &'a [u8],
}

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

fn subscription_field(id: &AuthenticatorId) -> SealedField<'_> {
    SealedField { table: "push_devices", column: "webpush_sealed", row_id: id.as_str() }
}

fn device_name(name: &str) -> Result<String, PushError> {
    let name = name.trim();
    let name = if name.is_empty() { "Companion device" } else { name };
    if name.chars().count() > DEVICE_NAME_MAX || name.chars().any(char::is_control) {
        return Err(PushError::InvalidName);
    }
    Ok(name.to_owned())
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
    // ----- pairing -------------------------------------------------------

    /// Issues a pairing code (re-auth; 2FA must already be on, so the
    /// recovery codes exist and are shown where the user can keep them).
    pub async fn start_push_pairing(&self, me: &SignedIn, ctx: &RequestContext) -> Result<Pairing, PushError> {
        if self.store.authenticators(&me.account.id).await?.is_empty() {
            return Err(PushError::TwoFactorNotEnabled);
        }
        self.require_recent_auth(me).await?;
        let code = Token::generate(self.rng());
        let now = self.now();
        let expires_at = now.plus_secs(self.settings.push_pairing_secs);
        self.store.replace_pairing(&code.hash(), &me.account.id, now, expires_at).await?;
        self.audit(AuditEvent::user(AuditKind::PushPairingStarted, &me.account.id), ctx).await;
        Ok(Pairing { code, expires_in: self.settings.push_pairing_secs })
    }

    /// Registers a device from a pairing code; the code works once.
    pub async fn pair_push_device(&self, req: PairRequest<'_>, ctx: &RequestContext) -> Result<Paired, PushError> {
        let name = device_name(req.name)?;
        let (public_key, key) = parse_public_key(req.public_key)?;
        if let Some(s) = &req.subscription {
            s.check(self.settings.webpush_allow_http)?;
        }
        let pairing = Token::presented(req.code).hash();
        let now = self.now();
        let Some(account_id) = self.store.pairing_account(&pairing, now).await? else {
            return Err(PushError::InvalidPairing);
        };
        if !signature_valid(&key, &pairing_message(req.code, req.public_key), req.proof) {
            return Err(PushError::InvalidSignature);
        }
        let account = self.store.account_by_id(&account_id).await?.ok_or(PushError::InvalidPairing)?;
        let id = AuthenticatorId::generate(self.rng());
        let webpush_sealed = match &req.subscription {
            Some(s) => Some(self.seal_subscription(&id, s)?),
            None => None,
        };
        let authenticator = AuthenticatorRecord {
            // The key is public; nothing secret lives in the authenticator row.
            secret_sealed: Vec::new(),
            id,
            account_id: account_id.clone(),
            kind: PUSH_KIND.to_owned(),
            name: name.clone(),
            last_step: 0,
            created_at: now,
            last_used_at: None,
        };
        let device = PushDeviceRecord { authenticator, public_key, webpush_sealed, last_seen_at: Some(now) };
        if !self.store.add_push_device(&pairing, now, &device).await? {
            return Err(PushError::InvalidPairing);
        }
        self.audit(
            AuditEvent::user(AuditKind::PushDeviceAdded, &account_id)
                .factor(device.authenticator.id.to_string())
                .details(name.clone()),
            ctx,
        )
        .await;
        self.notify(&account_id, Notice::AuthenticatorAdded { name }, ctx).await;
        Ok(Paired { device: device.authenticator, email: account.email.as_str().to_owned() })
    }

    fn seal_subscription(&self, id: &AuthenticatorId, s: &WebPushSubscription) -> Result<Vec<u8>, PushError> {
        let json = serde_json::to_vec(s).map_err(|e| InternalError(format!("subscription: {e}")))?;
        Ok(self.keys.seal(&json, subscription_field(id), self.rng()))
    }

    /// The account's companion devices, oldest first.
    pub async fn push_devices(&self, account: &AccountId) -> Result<Vec<PushDeviceRecord>, PushError> {
        Ok(self.store.push_devices(account).await?)
    }

    pub async fn rename_push_device(
        &self,
        me: &SignedIn,
        id: &str,
        name: &str,
        ctx: &RequestContext,
    ) -> Result<PushDeviceRecord, PushError> {
        let name = device_name(name)?;
        let id = AuthenticatorId::from_stored(id);
        let device = self.store.push_device(&id).await?.filter(|d| d.authenticator.account_id == me.account.id);
        let Some(mut device) = device else { return Err(PushError::NotFound) };
        self.store.rename_authenticator(&me.account.id, &id, &name).await?;
        self.audit(
            AuditEvent::user(AuditKind::PushDeviceRenamed, &me.account.id).factor(id.to_string()).details(name.clone()),
            ctx,
        )
        .await;
        device.authenticator.name = name;
        Ok(device)
    }

    /// Removes a device like any authenticator (re-auth, policy, notice);
    /// `NotFound` for an id that is not one of the account's devices.
    pub async fn remove_push_device(&self, me: &SignedIn, id: &str, ctx: &RequestContext) -> Result<(), FactorError> {
        let found = self.store.push_device(&AuthenticatorId::from_stored(id)).await?;
        if !found.is_some_and(|d| d.authenticator.account_id == me.account.id) {
            return Err(FactorError::NotFound);
        }
        self.remove_authenticator(me, id, ctx).await
    }

    // ----- device requests -----------------------------------------------

    /// Checks a device request's signature; the device for a valid one.
    /// Unknown, removed and wrongly signing devices get the same answer.
    pub async fn authenticate_device(&self, r: &DeviceRequest<'_>) -> Result<PushDeviceRecord, PushError> {
        let ts: i64 = r.timestamp.parse().map_err(|_| PushError::InvalidSignature)?;
        let now = self.now();
        if (now.secs() - ts).abs() > DEVICE_CLOCK_SKEW_SECS || r.device_id.is_empty() || r.device_id.len() > 64 {
            return Err(PushError::InvalidSignature);
        }
        let device = self.store.push_device(&AuthenticatorId::from_stored(r.device_id)).await?;
        let Some(device) = device else { return Err(PushError::InvalidSignature) };
        let key = VerifyingKey::from_sec1_bytes(&device.public_key)
            .map_err(|_| InternalError("stored device key unreadable".to_owned()))?;
        if !signature_valid(&key, &device_message(r.method, r.path, r.timestamp, r.body), r.signature) {
            return Err(PushError::InvalidSignature);
        }
        if device.last_seen_at.is_none_or(|t| now.secs() - t.secs() >= 60) {
            self.store.touch_push_device(&device.authenticator.id, now).await?;
        }
        Ok(device)
    }

    /// Sets or clears the device's Web Push subscription.
    pub async fn set_push_subscription(
        &self,
        device: &PushDeviceRecord,
        subscription: Option<WebPushSubscription>,
    ) -> Result<(), PushError> {
        let sealed = match &subscription {
            Some(s) => {
                s.check(self.settings.webpush_allow_http)?;
                Some(self.seal_subscription(&device.authenticator.id, s)?)
            }
            None => None,
        };
        Ok(self.store.set_push_subscription(&device.authenticator.id, sealed.as_deref()).await?)
    }

    /// The device removes itself ("forget this device" on the phone).
    /// The device's signature is the proof here, so no re-auth; policy
    /// still keeps an account's last factor.
    pub async fn forget_push_device(&self, device: &PushDeviceRecord, ctx: &RequestContext) -> Result<(), FactorError> {
        let (account, id) = (&device.authenticator.account_id, &device.authenticator.id);
        self.refuse_removing_last_factor(account, id).await?;
        self.delete_factor(account, id, "removed from the device itself", ctx).await
    }

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
                client: crate::device::describe(&c.user_agent),
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
        let deadline = tokio::time::Instant::now() + wait.min(Duration::from_secs(MAX_WAIT_SECS));
        loop {
            let changed = self.push_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (value, settled) = read().await?;
            if settled || self.is_draining() || tokio::time::Instant::now() >= deadline {
                return Ok(value);
            }
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
                let name = device.authenticator.name.clone();
                self.notify(account, Notice::PushDenied { device: name, not_me }, ctx).await;
            }
        }
        outcome
    }

    // ----- the sign-in side ----------------------------------------------

    /// Raises a push for this login token (`POST /login/challenge`, method
    /// `push`). `place` is the sign-in's approximate place when the
    /// operator's proxy tells it (a GeoIP header): shown beside the address.
    pub async fn login_push(
        &self,
        login_token: &str,
        place: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<PushStarted, PushError> {
        let place = place
            .map(|p| p.chars().filter(|c| !c.is_control()).take(64).collect::<String>())
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty());
        let token_hash = Token::presented(login_token).hash();
        let now = self.now();
        let token = self.store.login_token(&token_hash).await?;
        let Some(token) = token.filter(|t| self.login_token_usable(t, now)) else {
            return Err(PushError::LoginExpired);
        };
        self.raise_push(&token.account_id, token_hash.as_str(), place, ctx).await
    }

    /// A push to prove the second factor for re-auth (`POST /me/reauth/challenge`
    /// with method `push`), bound to this session; once approved, its id is
    /// the `code` of `POST /me/reauth` with method `push`.
    pub async fn reauth_push(&self, me: &SignedIn, ctx: &RequestContext) -> Result<PushStarted, PushError> {
        self.raise_push(&me.account.id, me.session.id.as_str(), None, ctx).await
    }

    /// Raises a push bound to `binding` (a login token's or session's hash).
    async fn raise_push(
        &self,
        account: &AccountId,
        binding: &str,
        place: Option<String>,
        ctx: &RequestContext,
    ) -> Result<PushStarted, PushError> {
        let now = self.now();
        let devices = self.store.push_devices(account).await?;
        if devices.is_empty() {
            return Err(PushError::MethodUnavailable);
        }
        match self.throttle_check(&Scope::SecondFactor(account.clone())).await? {
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
        self.audit(AuditEvent::user(AuditKind::Throttled, account).failed().details("push"), ctx).await;
        Err(PushError::Throttled { retry_after })
    }

    /// Starts the wake-ups and returns at once: the sign-in page must not
    /// wait for a push service.
    fn wake_devices(&self, devices: &[PushDeviceRecord], challenge_id: &str) {
        if self.push_wakers.is_empty() {
            return;
        }
        let targets: Vec<WakeTarget> = devices
            .iter()
            .map(|d| WakeTarget {
                device_id: d.authenticator.id.clone(),
                account_id: d.authenticator.account_id.clone(),
                subscription: d.webpush_sealed.as_ref().and_then(|sealed| {
                    let json = self.keys.open(sealed, subscription_field(&d.authenticator.id)).ok()?;
                    serde_json::from_slice(&json).ok()
                }),
            })
            .collect();
        let wakers = self.push_wakers.clone();
        let store = Arc::clone(&self.store);
        let challenge = challenge_id.to_owned();
        tokio::spawn(async move { wake_all(wakers, store, targets, challenge).await });
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
    ) -> Result<Option<Proof>, FactorError> {
        let Some(c) = self.store.push_challenge(challenge_id.trim()).await? else { return Ok(None) };
        if &c.account_id != account || c.login_token != login_token || c.status != PushStatus::Approved {
            return Ok(None);
        }
        if !self.store.use_push_challenge(&c.id, login_token, self.now()).await? {
            return Ok(None);
        }
        Ok(Some(Proof {
            factor_id: c.device_id.map(|d| d.to_string()).unwrap_or_default(),
            recovery_codes_remaining: None,
        }))
    }
}

async fn wake_all(wakers: Vec<Arc<dyn PushWaker>>, store: Arc<dyn Store>, targets: Vec<WakeTarget>, challenge: String) {
    for target in &targets {
        for waker in &wakers {
            match waker.wake(target, &challenge).await {
                Ok(WakeOutcome::Gone) => {
                    tracing::info!(device = %target.device_id, waker = waker.name(), "push subscription gone; forgetting it");
                    if let Err(e) = store.set_push_subscription(&target.device_id, None).await {
                        tracing::warn!(error = %e, "could not forget a dead push subscription");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(device = %target.device_id, waker = waker.name(), error = %e, "push wake-up failed");
                }
            }
        }
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
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;

    fn key() -> (SigningKey, String) {
        let sk = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let pk = sk.verifying_key().to_encoded_point(false);
        (sk, data_encoding::BASE64URL_NOPAD.encode(pk.as_bytes()))
    }

    fn sign(sk: &SigningKey, msg: &[u8]) -> String {
        let sig: Signature = sk.sign(msg);
        data_encoding::BASE64URL_NOPAD.encode(&sig.to_bytes())
    }

    #[test]
    fn a_signature_over_the_device_message_verifies_and_any_change_breaks_it() {
        let (sk, pk) = key();
        let (_, vk) = parse_public_key(&pk).unwrap();
        let msg = device_message("post", "/api/v1/push/challenges/x/answer", "1700000000", b"{\"n\":1}");
        let sig = sign(&sk, &msg);
        assert!(signature_valid(&vk, &msg, &sig));
        for other in [
            device_message("POST", "/api/v1/push/challenges/y/answer", "1700000000", b"{\"n\":1}"),
            device_message("POST", "/api/v1/push/challenges/x/answer", "1700000001", b"{\"n\":1}"),
            device_message("POST", "/api/v1/push/challenges/x/answer", "1700000000", b"{\"n\":2}"),
        ] {
            assert!(!signature_valid(&vk, &other, &sig));
        }
        assert!(!signature_valid(&vk, &msg, "not base64!"));
        assert!(!signature_valid(&vk, &msg, ""));
    }

    #[test]
    fn high_s_signatures_from_webcrypto_are_accepted() {
        let (sk, pk) = key();
        let (_, vk) = parse_public_key(&pk).unwrap();
        let msg = b"twostep";
        let sig: Signature = sk.sign(msg);
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r, -*s).unwrap();
        let b64 = data_encoding::BASE64URL_NOPAD.encode(&high.to_bytes());
        assert!(signature_valid(&vk, msg, &b64));
    }

    #[test]
    fn public_keys_must_be_uncompressed_p256_points() {
        let (_, pk) = key();
        assert!(parse_public_key(&pk).is_ok());
        assert!(matches!(parse_public_key("AAAA"), Err(PushError::InvalidKey)));
        let mut bytes = data_encoding::BASE64URL_NOPAD.decode(pk.as_bytes()).unwrap();
        bytes[64] ^= 1; // no longer on the curve
        assert!(parse_public_key(&data_encoding::BASE64URL_NOPAD.encode(&bytes)).is_err());
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

    /// RFC 8291's example subscriber key and auth secret.
    const UA_PUBLIC: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

    fn sub(endpoint: &str) -> WebPushSubscription {
        WebPushSubscription {
            endpoint: endpoint.to_owned(),
            keys: WebPushKeys { p256dh: UA_PUBLIC.to_owned(), auth: AUTH.to_owned() },
        }
    }

    #[test]
    fn subscription_endpoints_are_https_named_hosts_without_credentials() {
        let ok = |url: &str, allow_http: bool| sub(url).check(allow_http).is_ok();
        assert!(ok("https://fcm.googleapis.com/fcm/send/abc:def", false));
        assert!(ok("https://web.push.apple.com/QGuQ", false));
        assert!(ok("https://updates.push.services.mozilla.com:8443/wpush/v2/x", false));
        assert!(!ok("http://push.example.net/x", false));
        assert!(ok("http://push.example.net/x", true));
        assert!(ok("http://127.0.0.1:8080/push", true));
        for internal in [
            "https://127.0.0.1/push",
            "https://10.0.0.1/x",
            "https://[::1]:8443/x",
            "https://2130706433/x",
            "https://0x7f000001/x",
            "https://localhost/push",
            "https://LOCALHOST./push",
            "https://a.localhost:99/x",
        ] {
            assert!(!ok(internal, false), "{internal}");
        }
        assert!(!ok("https://user:pw@push.example.net/x", false));
        assert!(!ok("https://user@push.example.net/x", true));
        assert!(!ok("ftp://push.example.net/x", true));
        assert!(!ok("/relative", true));
        assert!(!ok("", true));
        assert!(!ok(&format!("https://push.example.net/{}", "a".repeat(MAX_ENDPOINT_LEN)), false));
    }

    #[test]
    fn subscription_keys_must_be_a_p256_point_and_16_bytes() {
        let good = sub("https://push.example/abc");
        assert!(good.check(false).is_ok());
        let point = decode_b64url(UA_PUBLIC).unwrap();
        let compressed = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &p256::PublicKey::from_sec1_bytes(&point).unwrap(),
            true,
        );
        let mut off_curve = point.clone();
        off_curve[64] ^= 1;
        let b64 = |b: &[u8]| data_encoding::BASE64URL_NOPAD.encode(b);
        for (p256dh, auth) in [
            (String::new(), AUTH.to_owned()),
            ("*not base64*".to_owned(), AUTH.to_owned()),
            (b64(&[4; 65]), AUTH.to_owned()),
            (b64(&off_curve), AUTH.to_owned()),
            (b64(compressed.as_bytes()), AUTH.to_owned()),
            (b64(&point[..64]), AUTH.to_owned()),
            (UA_PUBLIC.to_owned(), String::new()),
            (UA_PUBLIC.to_owned(), "short".to_owned()),
            (UA_PUBLIC.to_owned(), b64(&[1; 17])),
        ] {
            let mut bad = good.clone();
            bad.keys = WebPushKeys { p256dh, auth };
            assert!(bad.check(true).is_err(), "{:?}", bad.keys);
        }
        // Padding and the standard alphabet are tolerated.
        let mut padded = good.clone();
        padded.keys.p256dh = data_encoding::BASE64.encode(&point);
        padded.keys.auth = data_encoding::BASE64URL.encode(&decode_b64url(AUTH).unwrap());
        assert!(padded.check(false).is_ok());
        assert!(!format!("{:?}", good.keys).contains(AUTH), "the auth secret stays out of Debug");
    }

    #[test]
    fn device_names_are_trimmed_bounded_and_defaulted() {
        assert_eq!(device_name("  Pixel  ").unwrap(), "Pixel");
        assert_eq!(device_name("").unwrap(), "Companion device");
        assert!(device_name(&"x".repeat(65)).is_err());
        assert!(device_name("a\nb").is_err());
    }
}
