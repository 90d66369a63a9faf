//! The two [`Sender`] adapters: SMTP (lettre) and the mail drop (one `.eml` file per message
//! in a directory, the zero-setup default). Both send the same MIME message: plain text and
//! HTML alternatives, and a Message-ID made from the delivery id, so a mail system that sees
//! a message twice (a crash between the server's "accepted" and our "sent") can tell.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::application::ports::{Outgoing, Sender};
use crate::domain::Refusal;

/// Parses a From address such as `Emporium <shop@example.com>`.
pub(crate) fn parse_from(raw: &str) -> anyhow::Result<Mailbox> {
    raw.parse::<Mailbox>()
        .map_err(|e| anyhow::anyhow!("{raw:?} is not a mailbox like Shop <shop@example.com>: {e}"))
}

fn build(from: &Mailbox, m: &Outgoing) -> Result<Message, Refusal> {
    let address = m.to_email.parse().map_err(|e| {
        Refusal::Permanent(format!(
            "{:?} is not a deliverable address: {e}",
            m.to_email
        ))
    })?;
    let subject: String = m
        .rendered
        .subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(Some(m.to_name.clone()), address))
        .subject(subject.trim())
        .message_id(Some(format!("<{}@{}>", m.delivery_id, from.email.domain())))
        .multipart(MultiPart::alternative_plain_html(
            m.rendered.text.clone(),
            m.rendered.html.clone(),
        ))
        .map_err(|e| Refusal::Permanent(format!("cannot build the message: {e}")))
}

/// Sends through an SMTP server (`smtp://host:port`, `smtps://user:pass@host`).
pub(crate) struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpSender {
    pub(crate) fn new(url: &str, from: Mailbox, timeout: Duration) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .context("EMPORIUM_SMTP_URL: not an SMTP URL like smtp://host:2525 or smtps://user:pass@host")?
            .timeout(Some(timeout))
            .build();
        Ok(Self { transport, from })
    }
}

#[async_trait::async_trait]
impl Sender for SmtpSender {
    async fn send(&self, m: &Outgoing) -> Result<(), Refusal> {
        let message = build(&self.from, m)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            // 5xx: the server will never take this message (no such mailbox, policy).
            Err(e) if e.is_permanent() => Err(Refusal::Permanent(e.to_string())),
            // 4xx, timeouts, refused connections: the server may take it later.
            Err(e) => Err(Refusal::Transient(e.to_string())),
        }
    }
}

/// Writes each message as `<delivery id>.eml` into a directory.
pub(crate) struct MailDrop {
    dir: PathBuf,
    from: Mailbox,
}

impl MailDrop {
    pub(crate) fn new(dir: PathBuf, from: Mailbox) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the mail drop {}", dir.display()))?;
        Ok(Self { dir, from })
    }
}

#[async_trait::async_trait]
impl Sender for MailDrop {
    async fn send(&self, m: &Outgoing) -> Result<(), Refusal> {
        let bytes = build(&self.from, m)?.formatted();
        let name = format!("{}.eml", m.delivery_id);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(name);
        // Written whole, then renamed: a reader never sees half a message.
        let write = async {
            tokio::fs::write(&tmp, &bytes).await?;
            tokio::fs::rename(&tmp, &path).await
        };
        write
            .await
            .map_err(|e| Refusal::Transient(format!("cannot write {}: {e}", path.display())))
    }
}
