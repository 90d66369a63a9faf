//! Notifications' use cases: the projections and the queue they fill, the sender that
//! drains it, and what customers and admins read.

pub(crate) mod messages;
pub(crate) mod outbound;
pub(crate) mod ports;
pub(crate) mod projection;
pub(crate) mod webhook_dispatch;
pub(crate) mod webhooks;

#[derive(Debug, thiserror::Error)]
pub(crate) enum NotificationsError {
    #[error("no such message")]
    NotFound,
    #[error("only a failed delivery can be retried; this one is {0}")]
    NotFailed(&'static str),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
