//! What the HTTP providers (Twilio, the webhook) share: one client set-up and
//! one way of turning an HTTP answer into `Delivered` or a `DeliveryError`.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use twostep_domain::notify::store::{Delivered, DeliveryError, Outbound};

use crate::{ConfigError, scrub};

/// A provider that has not answered by then is treated as down; the outbox
/// retries later rather than hold a worker.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an answer we read: providers answer in a few hundred bytes,
/// and a misbehaving endpoint must not make us buffer without bound.
const MAX_ANSWER: usize = 64 * 1024;

/// Twilio's sids are 34 characters; anything far longer is not an id.
const MAX_ID: usize = 200;

pub(crate) fn client() -> Result<reqwest::Client, ConfigError> {
    builder().build().map_err(|e| ConfigError::Client(error_chain(&e)))
}

pub(crate) fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        // A redirect would replay a signed, code-bearing request to wherever
        // the answer points; a moved endpoint is a configuration error.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("twostep/", env!("CARGO_PKG_VERSION")))
}

/// How to read one provider's answers.
pub(crate) struct Answer {
    /// For error texts: `"twilio"`, `"webhook"`.
    pub provider: &'static str,
    /// The JSON field of a 2xx answer that holds the provider's message id.
    pub id_field: &'static str,
}

/// Sends once and sorts the outcome: 2xx is delivered; 408, 429, 5xx and
/// network failures are transient; anything else (other 4xx, a redirect) is
/// permanent, since sending the same request again would get the same answer.
pub(crate) async fn send(
    request: RequestBuilder,
    message: &Outbound,
    answer: &Answer,
) -> Result<Delivered, DeliveryError> {
    let provider = answer.provider;
    let response = match request.send().await {
        Ok(r) => r,
        // `without_url`: a webhook URL may carry a token of the operator's.
        Err(e) => {
            let e = e.without_url();
            let detail = scrub(&error_chain(&e), message);
            return Err(if e.is_builder() {
                DeliveryError::Permanent(format!("{provider}: request not built: {detail}"))
            } else if e.is_timeout() {
                DeliveryError::Transient(format!("{provider}: no answer within {}s", TIMEOUT.as_secs()))
            } else {
                DeliveryError::Transient(format!("{provider}: {detail}"))
            });
        }
    };
    let status = response.status();
    // A body that cannot be read still leaves the status to go by: after a
    // 2xx the provider has the message, and retrying would send it twice.
    let json = read_capped(response).await.and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    if status.is_success() {
        let provider_id = json
            .as_ref()
            .and_then(|j| j.get(answer.id_field))
            .and_then(|v| match v {
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            // An id is the provider's, so it is kept as is (a code's digits
            // may well occur in a hex sid); only a malformed one is dropped.
            .filter(|id| id.len() <= MAX_ID && !id.chars().any(char::is_control));
        return Ok(Delivered { provider_id });
    }
    let mut text = format!("{provider} answered {status}");
    if let Some(json) = &json {
        if let Some(code) = error_code(json) {
            text = format!("{text} (code {})", scrub(&code, message));
        }
        if let Some(words) = error_words(json) {
            text.push_str(": ");
            text.push_str(&scrub(words, message));
        }
    }
    Err(if is_transient(status) { DeliveryError::Transient(text) } else { DeliveryError::Permanent(text) })
}

fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error()
}

/// The provider's error number (Twilio's `code`, e.g. 21211): kept apart
/// from its words so it survives when the words must be withheld.
fn error_code(json: &serde_json::Value) -> Option<String> {
    match json.get("code")? {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) if !s.is_empty() && s.len() <= 32 => Some(s.clone()),
        _ => None,
    }
}

/// The provider's words about an error: Twilio's `message`, or a webhook
/// receiver's `message` or `error`.
fn error_words(json: &serde_json::Value) -> Option<&str> {
    ["message", "error"].into_iter().find_map(|k| json.get(k).and_then(serde_json::Value::as_str))
}

async fn read_capped(mut response: Response) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        let room = MAX_ANSWER - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ANSWER {
            break;
        }
    }
    Some(body)
}

/// An error with its causes: reqwest's own text ("error sending request")
/// says little; the cause ("Connection refused") is what an operator needs.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_sort_into_transient_and_permanent() {
        for s in [429, 408, 500, 502, 503, 504] {
            assert!(is_transient(StatusCode::from_u16(s).expect("valid status")), "{s}");
        }
        for s in [400, 401, 403, 404, 301, 307, 422] {
            assert!(!is_transient(StatusCode::from_u16(s).expect("valid status")), "{s}");
        }
    }

    #[test]
    fn error_details_read_twilio_and_generic_shapes() {
        let twilio = serde_json::json!({"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400});
        assert_eq!(error_code(&twilio).as_deref(), Some("21211"));
        assert_eq!(error_words(&twilio), Some("Invalid 'To' Phone Number"));
        let generic = serde_json::json!({"error": "unknown number", "code": "E_NUMBER"});
        assert_eq!(error_code(&generic).as_deref(), Some("E_NUMBER"));
        assert_eq!(error_words(&generic), Some("unknown number"));
        let none = serde_json::json!({"ok": false, "code": [1]});
        assert_eq!((error_code(&none), error_words(&none)), (None, None));
    }
}
