//! Outgoing mail. A change that causes a mail writes it to the outbox in its
//! own transaction; the sender drains the outbox in the background with
//! retries and backoff, through SMTP or (the embedded default) the log.

pub(crate) mod outbox;
mod sender;
mod templates;
mod worker;

pub(crate) use sender::Sender;
pub(crate) use templates::{Mail, Rendered};
pub(crate) use worker::{MailWorker, Wakeup};
