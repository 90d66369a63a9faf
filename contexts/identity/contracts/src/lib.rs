//! Events published by the identity context (its published language).

use kernel::address::PostalAddress;
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

/// A customer's profile changed: the name, or the email address once the new one is verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ProfileChanged {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub changed_at: Timestamp,
    /// The address the account had before, when this change moved it to `email` (a proved
    /// email change): it is told of the move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_email: Option<String>,
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

/// Why an address is to be verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VerificationPurpose {
    /// The address the account signed up with (or a re-sent link for it).
    SignUp,
    /// A new address the customer asked to move to; it takes effect once verified.
    EmailChange,
}

/// A customer is to prove they own `email`: notifications mails `verification_token` to that
/// address (for an email change, the new one, not the account's current one). Identity keeps
/// the token only as a hash and accepts it once, until `expires_at`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct EmailVerificationRequested {
    /// One per request (a UUID): a message is sent once per link issued.
    pub verification_id: String,
    pub user_id: UserId,
    /// The address to verify, and where the link goes.
    pub email: String,
    pub name: String,
    pub purpose: VerificationPurpose,
    pub verification_token: String,
    pub expires_at: Timestamp,
    pub requested_at: Timestamp,
}

impl std::fmt::Debug for EmailVerificationRequested {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailVerificationRequested")
            .field("verification_id", &self.verification_id)
            .field("user_id", &self.user_id)
            .field("purpose", &self.purpose)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl IntegrationEvent for EmailVerificationRequested {
    const NAME: &'static str = "identity.email_verification_requested";
    const VERSION: u32 = 1;
    const SOURCE: &'static str = "identity";
}

/// The customer proved they own `email`, which is now the account's address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct EmailVerified {
    pub user_id: UserId,
    pub email: String,
    pub verified_at: Timestamp,
}

impl IntegrationEvent for EmailVerified {
    const NAME: &'static str = "identity.email_verified";
    const VERSION: u32 = 1;
    const SOURCE: &'static str = "identity";
}

/// One address of a customer's address book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SavedAddress {
    /// A UUID, stable for the address's life.
    pub address_id: String,
    pub address: PostalAddress,
    /// The one the customer ships to unless they say otherwise (at most one is).
    pub is_default: bool,
}

/// A customer's address book as it is now (all of it, at most 20 addresses): a newer
/// `revision` replaces whatever an older one said, so the order events arrive in does not
/// matter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AddressBookChanged {
    pub user_id: UserId,
    pub addresses: Vec<SavedAddress>,
    /// Counts the book's changes, from 1.
    pub revision: u64,
    pub changed_at: Timestamp,
}

impl IntegrationEvent for AddressBookChanged {
    const NAME: &'static str = "identity.address_book_changed";
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
        $callback!($crate::EmailVerificationRequested);
        $callback!($crate::EmailVerified);
        $callback!($crate::AddressBookChanged);
    };
}
