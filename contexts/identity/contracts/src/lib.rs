//! Events published by the identity context (its published language).

use kernel::id::UserId;
use kernel::{IntegrationEvent, Timestamp};
use serde::{Deserialize, Serialize};

/// A customer signed up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct UserRegistered {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub registered_at: Timestamp,
}

impl IntegrationEvent for UserRegistered {
    const NAME: &'static str = "identity.user_registered";
    const VERSION: u32 = 1;
    const SOURCE: &'static str = "identity";
}

/// A customer's name changed (the email address cannot change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ProfileChanged {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub changed_at: Timestamp,
}

impl IntegrationEvent for ProfileChanged {
    const NAME: &'static str = "identity.profile_changed";
    const VERSION: u32 = 1;
    const SOURCE: &'static str = "identity";
}

/// A customer asked to reset their password: notifications mails them `reset_token`, which
/// identity keeps only as a hash and accepts once, until `expires_at`. The event carries the
/// secret because the mail must; it lives as long as the outbox and inbox rows that carry it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PasswordResetRequested {
    /// One per request (a UUID): a message is sent once per reset asked for.
    pub reset_id: String,
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub reset_token: String,
    pub expires_at: Timestamp,
    pub requested_at: Timestamp,
}

impl std::fmt::Debug for PasswordResetRequested {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordResetRequested")
            .field("reset_id", &self.reset_id)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl IntegrationEvent for PasswordResetRequested {
    const NAME: &'static str = "identity.password_reset_requested";
    const VERSION: u32 = 1;
    const SOURCE: &'static str = "identity";
}

/// Invokes `$callback!(Type)` for every event this context publishes: its published
/// language, from which the event catalogue (`openapi/asyncapi.json`) is built.
#[macro_export]
macro_rules! for_each_event {
    ($callback:ident) => {
        $callback!($crate::UserRegistered);
        $callback!($crate::ProfileChanged);
        $callback!($crate::PasswordResetRequested);
    };
}
