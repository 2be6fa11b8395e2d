//! Where mail goes: an SMTP server, or the log (the embedded default, so a
//! developer sees every link without setting anything up).

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::db::models::OutboxRow;

pub(crate) enum Sender {
    Log,
    Smtp { transport: AsyncSmtpTransport<Tokio1Executor>, from: Mailbox },
}

/// Why a send failed, and whether trying again may help.
#[derive(Debug)]
pub(crate) struct SendError {
    pub transient: bool,
    pub message: String,
}

impl Sender {
    pub(crate) fn from_config(smtp_url: Option<&str>, from: &str) -> anyhow::Result<Self> {
        let Some(url) = smtp_url else { return Ok(Self::Log) };
        let from: Mailbox = from.parse().map_err(|e| anyhow::anyhow!("TRELLIS_MAIL_FROM is not a mailbox: {e}"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("TRELLIS_SMTP_URL is not usable: {e}"))?
            .timeout(Some(Duration::from_secs(10)))
            .build();
        Ok(Self::Smtp { transport, from })
    }

    pub(crate) async fn send(&self, mail: &OutboxRow) -> Result<(), SendError> {
        match self {
            Self::Log => {
                tracing::info!(to = %mail.recipient, subject = %mail.subject, body = %mail.text_body, "mail (no SMTP server set: written to the log)");
                Ok(())
            }
            Self::Smtp { transport, from } => {
                let to: Mailbox = mail
                    .recipient
                    .parse()
                    .map_err(|e| SendError { transient: false, message: format!("bad recipient: {e}") })?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(mail.subject.clone())
                    .message_id(Some(format!("<{}@trellis>", mail.id)))
                    .multipart(MultiPart::alternative_plain_html(mail.text_body.clone(), mail.html_body.clone()))
                    .map_err(|e| SendError { transient: false, message: format!("message not built: {e}") })?;
                transport.send(message).await.map(drop).map_err(|e| SendError {
                    // Refusals the server calls permanent (bad mailbox) are
                    // not retried; everything else (connection, 4xx) is.
                    transient: !e.is_permanent(),
                    message: e.to_string(),
                })
            }
        }
    }
}
