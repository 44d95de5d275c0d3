//! Web Push: waking an installed companion page so it can ask its owner to
//! approve a sign-in.
//!
//! A browser that installed the companion page hands us a push subscription
//! (its push service's endpoint plus two keys). To wake it we POST one
//! encrypted message to that endpoint:
//!
//! ```text
//! POST <endpoint>
//! TTL: 60
//! Urgency: high
//! Content-Encoding: aes128gcm
//! Content-Type: application/octet-stream
//! Authorization: vapid t=<ES256 JWT {aud, exp, sub}>, k=<our public key>
//!
//! <salt ‖ rs ‖ idlen ‖ ephemeral public key ‖ AES-128-GCM(payload ‖ 0x02)>
//! ```
//!
//! - The body is encrypted for the subscriber alone (RFC 8291 on RFC 8188's
//!   `aes128gcm`): the push service, Google's or Apple's or Mozilla's, sees
//!   only ciphertext. A fresh ephemeral key and salt per message mean two
//!   messages never share a content key.
//! - The `Authorization` header is VAPID (RFC 8292): a browser subscribes with
//!   our public key as its `applicationServerKey`, and its push service then
//!   accepts messages for that subscription only when signed by our private
//!   key. So a leaked endpoint alone does not let anyone else wake the device.
//! - The push service answers quickly and delivers later; `TTL` bounds how
//!   long it may hold the message. A 404 or 410 means the subscription is dead
//!   for good ([`WebPushError::Gone`]), and the caller should forget it.
//!
//! Everything is RustCrypto (`p256`, `hkdf`, `aes-gcm`); no OpenSSL. The
//! `web-push-native` crate was not used: it cannot fix the ephemeral key and
//! salt (so RFC 8291's example cannot be checked), leaves the port out of the
//! VAPID audience (so `http://127.0.0.1:PORT` test endpoints fail), reads the
//! wall clock itself, and brings a second RustCrypto generation (hkdf 0.13,
//! sha2 0.11) plus `jwt-simple`.

mod crypto;
mod resolver;
mod sender;
#[cfg(test)]
mod tests;
mod vapid;

pub use crypto::*;
pub use resolver::*;
pub use sender::*;
pub use vapid::*;

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::Aead;
use aes_gcm::{Aes128Gcm, Key, KeyInit, Nonce};
use data_encoding::BASE64URL_NOPAD;
use hkdf::Hkdf;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use rand::RngCore;
use rand::rngs::OsRng;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use sha2::Sha256;
use twostep_domain::factors::push::{WebPushKeys, WebPushSubscription, decode_b64url};
use twostep_domain::ports::{Clock, SystemClock};
use zeroize::Zeroizing;

use crate::ConfigError;
use crate::http::{self, error_chain};

/// The largest payload one message can carry. RFC 8291 §4 allows a single
/// record, and RFC 8030 §7.2 only obliges push services to take 4096 bytes of
/// body: minus the 86-byte header, the 16-byte tag and the delimiter.
pub const MAX_PAYLOAD: usize = RECORD_SIZE as usize - HEADER_LEN - TAG_LEN - 1;

/// The `rs` we announce. Any value above the one record's length would do;
/// 4096 is what RFC 8291's example uses, so its bytes come out exactly.
pub(super) const RECORD_SIZE: u32 = 4096;
pub(super) const SALT_LEN: usize = 16;
/// An uncompressed P-256 point: 0x04 ‖ x ‖ y.
pub(super) const POINT_LEN: usize = 65;
pub(super) const HEADER_LEN: usize = SALT_LEN + 4 + 1 + POINT_LEN;
pub(super) const TAG_LEN: usize = 16;
pub(super) const AUTH_LEN: usize = 16;
/// RFC 8188's delimiter of the last (here: only) record.
pub(super) const LAST_RECORD: u8 = 2;

/// RFC 8292 §2 caps `exp` at 24 hours ahead; half that leaves room for a
/// push service whose clock runs ahead of ours.
pub const JWT_LIFETIME_SECS: i64 = 12 * 60 * 60;

/// A push service that has not answered by then is treated as down; the
/// caller may try again later rather than hold a worker.
pub(super) const TIMEOUT_SECS: u64 = 10;

/// Push service error bodies are short notes for developers; more is noise.
pub(super) const MAX_DETAIL: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum WebPushError {
    /// The push service says the subscription no longer exists (404, 410):
    /// the device unsubscribed or the browser dropped it. Forget it.
    #[error("subscription gone")]
    Gone,
    /// Worth trying again later: 408, 429, 5xx, a timeout, no connection.
    #[error("transient: {0}")]
    Transient(String),
    /// Sending the same request again would get the same answer.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The subscription cannot be sent to at all (bad keys, not a URL).
    #[error("invalid subscription: {0}")]
    InvalidSubscription(String),
}

/// A body that [`decrypt`] could not open. Deliberately vague beyond the
/// step that failed, as AEAD failures should be.
#[derive(Debug, thiserror::Error)]
#[error("web push body not decrypted: {0}")]
pub struct DecryptError(pub(super) &'static str);
