//! SMS and voice calls through Twilio's REST API (2010-04-01).

use std::fmt;

use async_trait::async_trait;
use twostep_domain::notify::store::{Channel, Delivered, DeliveryError, Outbound, Sender};
use zeroize::Zeroizing;

use crate::ConfigError;
use crate::http::{self, Answer};

/// How to reach a Twilio account.
#[derive(Clone)]
pub struct TwilioConfig {
    /// `AC…`; Twilio's API user name.
    pub account_sid: String,
    pub auth_token: String,
    /// The sending number (E.164) or alphanumeric sender id.
    pub from: String,
    /// [`TwilioConfig::DEFAULT_BASE_URL`] in production; tests point it at a
    /// local receiver. Empty means the default.
    pub base_url: String,
}

impl TwilioConfig {
    pub const DEFAULT_BASE_URL: &'static str = "https://api.twilio.com";
}

impl Default for TwilioConfig {
    fn default() -> Self {
        Self {
            account_sid: String::new(),
            auth_token: String::new(),
            from: String::new(),
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
        }
    }
}

impl fmt::Debug for TwilioConfig {
    // The token is a password to the account: never in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .field("from", &self.from)
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// Sends `Channel::Sms` as a Twilio message and `Channel::Voice` as a call
/// that reads the code aloud. Twilio does not send e-mail.
pub struct TwilioSender {
    client: reqwest::Client,
    account_sid: String,
    auth_token: Zeroizing<String>,
    from: String,
    messages_url: String,
    calls_url: String,
}

impl TwilioSender {
    pub fn new(config: TwilioConfig) -> Result<Self, ConfigError> {
        let TwilioConfig { account_sid, auth_token, from, base_url } = config;
        let auth_token = Zeroizing::new(auth_token);
        // The sid goes into the URL path: letters and digits only, so it can
        // neither need escaping nor change the path.
        if account_sid.is_empty() || !account_sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid("twilio.account_sid", "letters and digits, like AC0123…"));
        }
        if auth_token.is_empty() {
            return Err(invalid("twilio.auth_token", "empty"));
        }
        if from.trim().is_empty() {
            return Err(invalid("twilio.from", "empty"));
        }
        let base = if base_url.trim().is_empty() { TwilioConfig::DEFAULT_BASE_URL } else { base_url.trim() };
        let parsed = reqwest::Url::parse(base).map_err(|e| invalid("twilio.base_url", &e.to_string()))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(invalid("twilio.base_url", "must be an http(s) URL"));
        }
        let base = base.trim_end_matches('/');
        let account = format!("{base}/2010-04-01/Accounts/{account_sid}");
        Ok(Self {
            client: http::client()?,
            messages_url: format!("{account}/Messages.json"),
            calls_url: format!("{account}/Calls.json"),
            account_sid,
            auth_token,
            from,
        })
    }
}

fn invalid(field: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid { field, reason: reason.to_owned() }
}

impl fmt::Debug for TwilioSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSender")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .field("from", &self.from)
            .field("messages_url", &self.messages_url)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Sender for TwilioSender {
    fn provider(&self) -> &'static str {
        "twilio"
    }

    async fn deliver(&self, message: &Outbound) -> Result<Delivered, DeliveryError> {
        let (url, content) = match message.channel {
            Channel::Sms => (&self.messages_url, ("Body", message.text.clone())),
            Channel::Voice => (&self.calls_url, ("Twiml", twiml(message))),
            Channel::Email => return Err(DeliveryError::Permanent("twilio does not send e-mail".into())),
        };
        let form = [("To", message.to.as_str()), ("From", self.from.as_str()), (content.0, content.1.as_str())];
        let request = self.client.post(url).basic_auth(&self.account_sid, Some(self.auth_token.as_str())).form(&form);
        http::send(request, message, &Answer { provider: "twilio", id_field: "sid" }).await
    }
}

/// The call's script: the code digit by digit ("4, 9, 3…" — said as a whole
/// it would be "four hundred ninety-three thousand…"), then once more, since
/// a listener often misses the start of a call.
fn twiml(message: &Outbound) -> String {
    let spoken: Vec<String> = message
        .code
        .as_deref()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| xml_escape(&c.to_string()))
        .collect();
    let say = if spoken.is_empty() {
        // No code to spell out: read the message as written.
        xml_escape(&message.text)
    } else {
        let code = spoken.join(", ");
        format!("Your twostep verification code is: {code}. Again: {code}.")
    };
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>{say}</Say></Response>")
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use twostep_domain::time::Timestamp;

    use super::*;

    fn voice(code: Option<&str>, text: &str) -> Outbound {
        Outbound {
            id: "m1".into(),
            channel: Channel::Voice,
            to: "+15550001111".into(),
            subject: String::new(),
            text: text.into(),
            html: String::new(),
            code: code.map(Into::into),
            expires_at: Timestamp::from_secs(0),
        }
    }

    #[test]
    fn twiml_spells_the_code_twice() {
        let doc = twiml(&voice(Some("123456"), "ignored"));
        assert!(doc.ends_with(
            "<Response><Say>Your twostep verification code is: 1, 2, 3, 4, 5, 6. Again: 1, 2, 3, 4, 5, 6.</Say></Response>"
        ));
    }

    #[test]
    fn twiml_reads_the_text_escaped_without_a_code() {
        let doc = twiml(&voice(None, "Call <us> & \"say\" hi"));
        assert!(doc.contains("<Say>Call &lt;us&gt; &amp; &quot;say&quot; hi</Say>"), "{doc}");
        // Markup in a code is dropped, not spoken or injected.
        let doc = twiml(&voice(Some("12</Say><Play>x"), "fallback"));
        assert!(!doc.contains("<Play>"), "{doc}");
    }

    #[test]
    fn debug_hides_the_token() {
        let config = TwilioConfig {
            account_sid: "AC123".into(),
            auth_token: "hunter2-token".into(),
            from: "+15550002222".into(),
            ..TwilioConfig::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
        let sender = TwilioSender::new(config).expect("valid config");
        assert!(!format!("{sender:?}").contains("hunter2"));
    }

    #[test]
    fn new_refuses_bad_configs() {
        let good = TwilioConfig {
            account_sid: "AC123".into(),
            auth_token: "t".into(),
            from: "+1555".into(),
            ..TwilioConfig::default()
        };
        assert!(TwilioSender::new(good.clone()).is_ok());
        assert!(TwilioSender::new(TwilioConfig { account_sid: "AC1/../x".into(), ..good.clone() }).is_err());
        assert!(TwilioSender::new(TwilioConfig { auth_token: String::new(), ..good.clone() }).is_err());
        assert!(TwilioSender::new(TwilioConfig { from: " ".into(), ..good.clone() }).is_err());
        assert!(TwilioSender::new(TwilioConfig { base_url: "ftp://x".into(), ..good.clone() }).is_err());
        assert!(TwilioSender::new(TwilioConfig { base_url: "not a url".into(), ..good }).is_err());
    }
}
