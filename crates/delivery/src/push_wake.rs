//! Waking companion devices for a push sign-in request (issue 9): the
//! domain's `PushWaker` port over Web Push and over a signed webhook.
//! Either carries the challenge id and nothing else; the device fetches
//! the request itself with a signed call, so a push service or relay learns
//! neither who signs in nor from where.

use std::sync::Arc;

use async_trait::async_trait;
use twostep_domain::factors::push::{PushWaker, WakeOutcome, WakeTarget};
use twostep_domain::ports::Clock;

use crate::ConfigError;
use crate::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use crate::webpush::{WebPushError, WebPushSender};

/// A push request lives 60 s; a wake-up delivered later is noise.
const TTL_SECS: u32 = 60;

/// Web Push to installed companion pages that subscribed.
pub struct WebPushWaker {
    sender: WebPushSender,
}

impl WebPushWaker {
    pub fn new(sender: WebPushSender) -> Self {
        Self { sender }
    }
}

#[async_trait]
impl PushWaker for WebPushWaker {
    fn name(&self) -> &'static str {
        "web_push"
    }

    async fn wake(&self, target: &WakeTarget, challenge_id: &str) -> Result<WakeOutcome, String> {
        let Some(sub) = &target.subscription else { return Ok(WakeOutcome::Skipped) };
        let payload = serde_json::json!({ "challenge": challenge_id }).to_string();
        match self.sender.send(sub, payload.as_bytes(), TTL_SECS).await {
            Ok(()) => Ok(WakeOutcome::Sent),
            Err(WebPushError::Gone) => Ok(WakeOutcome::Gone),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A signed JSON POST for every push, to an ntfy topic or the operator's
/// own relay: `{"challenge", "device"}` with the SMS webhook's
/// `X-Twostep-Timestamp` and `X-Twostep-Signature` headers.
pub struct WebhookWaker {
    url: reqwest::Url,
    secret: Vec<u8>,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl WebhookWaker {
    pub fn new(url: &str, secret: Vec<u8>, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| ConfigError::Invalid { field: "push.webhook_url", reason: e.to_string() })?;
        Ok(Self { url, secret, client: crate::http::client()?, clock })
    }
}

#[async_trait]
impl PushWaker for WebhookWaker {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn wake(&self, target: &WakeTarget, challenge_id: &str) -> Result<WakeOutcome, String> {
        let body = serde_json::json!({ "challenge": challenge_id, "device": target.device_id.as_str() }).to_string();
        let timestamp = self.clock.now().secs();
        let res = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, sign(&self.secret, timestamp, body.as_bytes()))
            .body(body)
            .send()
            .await
            .map_err(|e| format!("push webhook: {}", crate::http::error_chain(&e)))?;
        if res.status().is_success() {
            Ok(WakeOutcome::Sent)
        } else {
            Err(format!("push webhook answered {}", res.status()))
        }
    }
}
