//! Delivery adapters for the domain's `Mailer` port.
//!
//! `SmtpMailer` queues each mail on a channel and a background task sends
//! it, so no request waits for (or reveals timing of) the mail server —
//! forgot-password answers alike whether or not a mail goes out (§2.12).
//! `ConsoleMailer` is the development stand-in: it prints mails to the
//! console, links included, and is only wired in dev mode.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::mpsc;
use twostep_domain::ports::{Mail, Mailer};

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("smtp_url: {0}")]
    Url(String),
    #[error("smtp_from: {0}")]
    From(String),
}

/// Sends over SMTP: `smtp://host:port` (plain, or STARTTLS when offered),
/// `smtps://host:port` (TLS), credentials as `smtp://user:pass@host`.
pub struct SmtpMailer {
    queue: mpsc::Sender<Mail>,
}

impl SmtpMailer {
    /// Starts the sending task. Must be called inside a Tokio runtime.
    pub fn start(url: &str, from: &str) -> Result<Self, SmtpError> {
        let from: Mailbox = from.parse().map_err(|e| SmtpError::From(format!("{e}")))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| SmtpError::Url(e.to_string()))?
            .timeout(Some(Duration::from_secs(15)))
            .build();
        let (queue, mut rx) = mpsc::channel::<Mail>(1024);
        tokio::spawn(async move {
            while let Some(mail) = rx.recv().await {
                send_one(&transport, &from, mail).await;
            }
        });
        Ok(Self { queue })
    }
}

async fn send_one(transport: &AsyncSmtpTransport<Tokio1Executor>, from: &Mailbox, mail: Mail) {
    let to: Mailbox = match mail.to.parse() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "mail recipient unusable");
            return;
        }
    };
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()));
    let message = match message {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "mail could not be built");
            return;
        }
    };
    // A few tries for a server that is briefly away; the body is never logged.
    for attempt in 1..=3 {
        match transport.send(message.clone()).await {
            Ok(_) => {
                tracing::info!(subject = %mail.subject, "mail sent");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, subject = %mail.subject, "mail not sent");
                tokio::time::sleep(Duration::from_secs(attempt)).await;
            }
        }
    }
    tracing::error!(subject = %mail.subject, "mail dropped after 3 attempts");
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) {
        if self.queue.try_send(mail).is_err() {
            tracing::error!("mail queue full or closed; mail dropped");
        }
    }
}

/// Prints mails to standard error. Development only: bodies hold links.
pub struct ConsoleMailer;

#[async_trait]
impl Mailer for ConsoleMailer {
    async fn send(&self, mail: Mail) {
        eprintln!(
            "\n----- mail to {} -----\nSubject: {}\n\n{}\n----- end of mail -----\n",
            mail.to, mail.subject, mail.text
        );
    }
}
