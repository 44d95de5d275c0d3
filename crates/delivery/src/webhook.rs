//! Any channel as a signed JSON POST to the operator's own endpoint.
//!
//! The request:
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! X-Twostep-Timestamp: 1767225600
//! X-Twostep-Signature: v1=<hex HMAC-SHA-256(secret, "1767225600." ‖ body)>
//!
//! {"channel":"sms","to":"+15550001111","message":"…","code_expires_at":"2026-01-01T00:05:00Z","id":"…"}
//! ```
//!
//! The signature covers the timestamp as well as the raw body bytes, so a
//! receiver learns both that the request is ours and when we made it. A
//! receiver **must**:
//!
//! 1. recompute the HMAC over the body exactly as received (before any JSON
//!    parsing) and compare in constant time ([`verify`] does both);
//! 2. refuse a timestamp more than five minutes ([`DEFAULT_TOLERANCE_SECS`])
//!    from its own clock, so a captured request cannot be replayed later;
//! 3. treat `id` as an idempotency key: the outbox delivers at least once, so
//!    a timeout after the receiver took a message leads to a second request
//!    with the same `id`.
//!
//! Several `v1=` values, comma-separated, may appear once secrets are rotated;
//! any one matching is enough. The answer: any 2xx is success (a JSON `id`
//! in it is recorded as the provider id); 408, 429 and 5xx mean "try again
//! later"; any other status means "never", and a JSON `error` or `message`
//! in it is kept in the outbox row.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use data_encoding::{HEXLOWER, HEXLOWER_PERMISSIVE};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use twostep_domain::notify::store::{Delivered, DeliveryError, Outbound, Sender};
use twostep_domain::ports::Clock;
use zeroize::Zeroizing;

use crate::ConfigError;
use crate::http::{self, Answer};

pub const TIMESTAMP_HEADER: &str = "X-Twostep-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Twostep-Signature";
/// How old (or how far ahead) a request's timestamp may be: five minutes.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// Posts each message, any channel, to one URL.
pub struct WebhookSender {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Zeroizing<Vec<u8>>,
    clock: Arc<dyn Clock>,
}

impl WebhookSender {
    /// `secret` is shared with the receiver; 32 random bytes is plenty.
    pub fn new(url: &str, secret: Vec<u8>, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        let secret = Zeroizing::new(secret);
        let url = reqwest::Url::parse(url.trim())
            .map_err(|e| ConfigError::Invalid { field: "webhook.url", reason: e.to_string() })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(ConfigError::Invalid { field: "webhook.url", reason: "must be an http(s) URL".into() });
        }
        // An empty key would let anyone compute the signature.
        if secret.is_empty() {
            return Err(ConfigError::Invalid { field: "webhook.secret", reason: "empty".into() });
        }
        Ok(Self { client: http::client()?, url, secret, clock })
    }
}

impl fmt::Debug for WebhookSender {
    // The URL may hold the receiver's own token; the secret signs requests.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSender")
            .field("host", &self.url.host_str())
            .field("secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Sender for WebhookSender {
    fn provider(&self) -> &'static str {
        "webhook"
    }

    async fn deliver(&self, message: &Outbound) -> Result<Delivered, DeliveryError> {
        let body = serde_json::json!({
            "channel": message.channel.as_str(),
            "to": message.to,
            "message": message.text,
            "code_expires_at": message.expires_at.rfc3339(),
            "id": message.id,
        });
        // Signed and sent as the very same bytes: the receiver checks what
        // it received, not a re-serialisation.
        let body = serde_json::to_vec(&body)
            .map_err(|e| DeliveryError::Permanent(format!("webhook: body not encoded: {e}")))?;
        let timestamp = self.clock.now().secs();
        let request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, sign(&self.secret, timestamp, &body))
            .body(body);
        http::send(request, message, &Answer { provider: "webhook", id_field: "id" }).await
    }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length (RFC 2104 §2)");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Twostep-Signature` value for a request: `v1=` and the lowercase
/// hex HMAC-SHA-256 of `"<timestamp>.<body>"` under `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("v1={}", HEXLOWER.encode(&mac(secret, timestamp, body).finalize().into_bytes()))
}

/// Whether a request is ours and fresh: `timestamp` (the
/// `X-Twostep-Timestamp` value) within `tolerance_secs` of `now` either way,
/// and one of the `v1=` values in `header_value` the signature of
/// `timestamp` and the raw `body`, compared in constant time.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], header_value: &str, now: i64, tolerance_secs: i64) -> bool {
    if now.abs_diff(timestamp) > tolerance_secs.unsigned_abs() {
        return false;
    }
    let expected = mac(secret, timestamp, body);
    header_value
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(|hex| HEXLOWER_PERMISSIVE.decode(hex.as_bytes()).ok())
        .any(|candidate| expected.clone().verify_slice(&candidate).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_matches_a_reference_value() {
        // HMAC-SHA-256("key", "1700000000.{}"), computed independently (openssl and Python agree):
        // `printf '1700000000.{}' | openssl dgst -sha256 -hmac key`.
        assert_eq!(
            sign(b"key", 1_700_000_000, b"{}"),
            "v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    #[test]
    fn verify_accepts_one_matching_value_among_several() {
        let good = sign(b"new", 10, b"body");
        let old = sign(b"old", 10, b"body");
        assert!(verify(b"new", 10, b"body", &format!("{old}, {good}"), 10, 300));
        assert!(verify(b"new", 10, b"body", &good.to_uppercase().replace("V1=", "v1="), 10, 300));
        assert!(!verify(b"new", 10, b"body", &old, 10, 300));
        assert!(!verify(b"new", 10, b"body", "v1=zz", 10, 300));
        assert!(!verify(b"new", 10, b"body", "", 10, 300));
        assert!(!verify(b"new", 10, b"body", good.trim_start_matches("v1="), 10, 300));
    }

    #[test]
    fn verify_refuses_timestamps_out_of_tolerance_either_way() {
        let sig = sign(b"k", 1000, b"b");
        assert!(verify(b"k", 1000, b"b", &sig, 1300, 300));
        assert!(verify(b"k", 1000, b"b", &sig, 700, 300));
        assert!(!verify(b"k", 1000, b"b", &sig, 1301, 300));
        assert!(!verify(b"k", 1000, b"b", &sig, 699, 300));
        assert!(!verify(b"k", i64::MIN, b"b", &sign(b"k", i64::MIN, b"b"), i64::MAX, 300));
    }

    #[test]
    fn new_refuses_bad_configs() {
        let clock: Arc<dyn Clock> = Arc::new(twostep_testkit::FakeClock::at(0));
        assert!(WebhookSender::new("https://example.test/hook", b"s".to_vec(), clock.clone()).is_ok());
        assert!(WebhookSender::new("https://example.test/hook", Vec::new(), clock.clone()).is_err());
        assert!(WebhookSender::new("ftp://example.test/", b"s".to_vec(), clock.clone()).is_err());
        assert!(WebhookSender::new("nope", b"s".to_vec(), clock).is_err());
    }
}
