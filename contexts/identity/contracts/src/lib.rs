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

/// Invokes `$callback!(Type)` for every event this context publishes: its published
/// language, from which the event catalogue (`openapi/asyncapi.json`) is built.
#[macro_export]
macro_rules! for_each_event {
    ($callback:ident) => {
        $callback!($crate::UserRegistered);
        $callback!($crate::ProfileChanged);
    };
}
