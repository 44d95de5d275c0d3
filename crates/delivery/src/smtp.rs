//! E-mail through any SMTP relay, one connection per message.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use twostep_domain::notify::store::{Channel, Delivered, DeliveryError, Outbound, Sender};

use crate::{SmtpError, quotes, scrub};

/// A relay that has not answered by then is treated as down; the outbox
/// retries later rather than hold a worker.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Sends `Channel::Email`. The URL forms: `smtp://host:port` (plain),
/// `smtp://host:port?tls=opportunistic` (STARTTLS when offered),
/// `smtp://host:port?tls=required` (STARTTLS or nothing), `smtps://host:port`
/// (TLS from the first byte); credentials as `smtp://user:pass@host`.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpSender {
    pub fn new(url: &str, from: &str) -> Result<Self, SmtpError> {
        let from: Mailbox = from.parse().map_err(|e| SmtpError::From(format!("{e}")))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| SmtpError::Url(e.to_string()))?
            .timeout(Some(TIMEOUT))
            .build();
        Ok(Self { transport, from })
    }
}

impl fmt::Debug for SmtpSender {
    // The transport holds the relay's credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

#[async_trait]
impl Sender for SmtpSender {
    fn provider(&self) -> &'static str {
        "smtp"
    }

    async fn deliver(&self, message: &Outbound) -> Result<Delivered, DeliveryError> {
        if message.channel != Channel::Email {
            return Err(DeliveryError::Permanent(format!("smtp does not send {}", message.channel.as_str())));
        }
        let to: Mailbox =
            message.to.parse().map_err(|e| DeliveryError::Permanent(format!("smtp: recipient unusable: {e}")))?;
        let builder = Message::builder().from(self.from.clone()).to(to).subject(message.subject.clone());
        // Without an HTML part, a multipart/alternative would offer clients
        // an empty HTML body to prefer over the text.
        let mail = if message.html.is_empty() {
            builder.singlepart(SinglePart::plain(message.text.clone()))
        } else {
            builder.multipart(MultiPart::alternative_plain_html(message.text.clone(), message.html.clone()))
        }
        .map_err(|e| {
            DeliveryError::Permanent(format!("smtp: message not built: {}", scrub(&e.to_string(), message)))
        })?;
        match self.transport.send(mail).await {
            Ok(response) => {
                // The relay's acceptance line, e.g. "2.0.0 Ok: queued as 4F2A1C3B7": the
                // handle to find the mail in the relay's logs.
                let text = response.message().collect::<Vec<_>>().join(" ");
                let text = text.trim();
                // An id is for finding the mail later, not worth a marker
                // in its place: a line that happens to quote the message is dropped.
                let usable = !text.is_empty() && !quotes(text, message);
                Ok(Delivered { provider_id: usable.then(|| scrub(text, message)) })
            }
            Err(e) => {
                let detail = scrub(&crate::http::error_chain(&e), message);
                // 5xx: the relay refused for good (unknown user, policy);
                // 4xx, timeouts, refused connections and TLS trouble may pass.
                Err(if e.is_permanent() {
                    DeliveryError::Permanent(format!("smtp: {detail}"))
                } else {
                    DeliveryError::Transient(format!("smtp: {detail}"))
                })
            }
        }
    }
}
