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

mod challenge;
mod device;
mod factor;
mod signature;
pub mod store;
mod subscription;

pub use factor::PUSH;
pub(crate) use factor::PushFactor;

pub use challenge::*;
pub use device::*;
pub use signature::*;
pub use subscription::*;

use crate::error::{FactorError, InternalError, StoreError};

pub const PUSH_KIND: &str = "push";

/// Challenges are kept this long for the "since the last success" count
/// and the security log's context, then swept.
pub const KEEP_CHALLENGES_SECS: i64 = 30 * 24 * 60 * 60;
/// The longest a long-poll may wait (under the server's 30 s request timeout).
pub const MAX_WAIT_SECS: u64 = 25;

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
