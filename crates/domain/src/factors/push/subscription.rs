//! Web Push subscriptions and the wakers that reach a device beyond its
//! long-poll.

#[allow(clippy::wildcard_imports)]
use super::*;

use async_trait::async_trait;

use crate::crypto::{SealedColumn, SealedField};
use crate::factors::push::store::PushDeviceRecord;
use crate::ids::{AccountId, AuthenticatorId};
use crate::service::Twostep;

/// Real endpoints are a few hundred bytes; the cap keeps a hostile device
/// from parking megabytes in the database.
pub const MAX_ENDPOINT_LEN: usize = 4096;

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

/// One challenge's wake-ups, queued for the waker worker.
#[derive(Debug)]
pub struct WakeJob {
    pub targets: Vec<WakeTarget>,
    pub challenge_id: String,
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

pub(super) fn subscription_field(id: &AuthenticatorId) -> SealedField<'_> {
    SealedColumn::PushSubscription.field(id.as_str())
}

impl Twostep {
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

    /// Queues the wake-ups and returns at once: the sign-in page must not
    /// wait for a push service. The start-up's waker worker sends them; a
    /// full queue drops them (best effort: the device's long-poll still sees
    /// the challenge).
    pub(super) fn wake_devices(&self, devices: &[PushDeviceRecord], challenge_id: &str) {
        let Some(queue) = &self.wake_queue else { return };
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
        if queue.try_send(WakeJob { targets, challenge_id: challenge_id.to_owned() }).is_err() {
            tracing::warn!("push wake-up queue full or closed; devices will see the challenge on their next poll");
        }
    }

    /// Forgets a Web Push subscription its push service says is gone.
    pub async fn forget_dead_subscription(&self, device: &AuthenticatorId) {
        if let Err(e) = self.store.set_push_subscription(device, None).await {
            tracing::warn!(error = %e, "could not forget a dead push subscription");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
}
