//! The development outbox: messages on the console instead of a provider.

use async_trait::async_trait;
use twostep_domain::notify::store::{Delivered, DeliveryError, Outbound, Sender};

/// Prints each message to standard error, code and all, and reports it
/// delivered. The default when no provider is configured, so a developer can
/// sign in with SMS or voice codes without an account anywhere. Dev mode
/// only: it shows what production must never log.
#[derive(Clone, Copy, Debug, Default)]
pub struct DevOutbox;

#[async_trait]
impl Sender for DevOutbox {
    fn provider(&self) -> &'static str {
        "dev"
    }

    async fn deliver(&self, message: &Outbound) -> Result<Delivered, DeliveryError> {
        eprintln!("{}", render(message));
        Ok(Delivered { provider_id: Some(format!("dev-{}", message.id)) })
    }
}

/// One block, written with one call so concurrent workers do not interleave.
fn render(message: &Outbound) -> String {
    let subject = if message.subject.is_empty() { String::new() } else { format!("Subject: {}\n", message.subject) };
    let code = message.code.as_ref().map(|c| format!("Code: {c}\n")).unwrap_or_default();
    format!(
        "\n----- dev outbox: {} to {} (id {}) -----\n{subject}{code}Expires: {}\n\n{}\n----- end of message -----\n",
        message.channel.as_str(),
        message.to,
        message.id,
        message.expires_at.rfc3339(),
        message.text,
    )
}

#[cfg(test)]
mod tests {
    use twostep_domain::notify::store::Channel;
    use twostep_domain::time::Timestamp;

    use super::*;

    #[tokio::test]
    async fn prints_the_message_and_answers_with_a_dev_id() {
        let message = Outbound {
            id: "abc".into(),
            channel: Channel::Sms,
            to: "+15550001111".into(),
            subject: String::new(),
            text: "Your twostep code is 123456".into(),
            html: String::new(),
            code: Some("123456".into()),
            expires_at: Timestamp::from_secs(300),
        };
        let block = render(&message);
        for part in ["sms to +15550001111", "Code: 123456", "Your twostep code is 123456", "1970-01-01T00:05:00Z"] {
            assert!(block.contains(part), "{part} missing from {block}");
        }
        assert!(!block.contains("Subject:"));
        let delivered = DevOutbox.deliver(&message).await.expect("dev outbox always delivers");
        assert_eq!(delivered.provider_id.as_deref(), Some("dev-abc"));
        assert_eq!(DevOutbox.provider(), "dev");
    }
}
