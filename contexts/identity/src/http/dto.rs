//! Request and response bodies.

use kernel::address::AddressBody;
use kernel::{Money, Timestamp};
use platform::auth::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::domain::address_book::AddressEntry;
use crate::domain::{OrderHistoryEntry, User};

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct-violet-anchor-42", "name": "Ada Lovelace"}))]
pub(crate) struct SignUpRequest {
    #[validate(length(max = 254))]
    #[schema(format = Email, max_length = 254)]
    pub(crate) email: String,
    /// 12 to 128 characters, not a common password.
    #[validate(length(max = 128))]
    #[schema(min_length = 12, max_length = 128)]
    pub(crate) password: String,
    #[validate(length(max = 100))]
    #[schema(schema_with = kernel::schema::text_100)]
    pub(crate) name: String,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct-violet-anchor-42"}))]
pub(crate) struct LogInRequest {
    #[validate(length(min = 1, max = 254))]
    #[schema(min_length = 1, max_length = 254)]
    pub(crate) email: String,
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub(crate) password: String,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.com"}))]
pub(crate) struct PasswordResetRequest {
    #[validate(length(min = 1, max = 254))]
    #[schema(min_length = 1, max_length = 254)]
    pub(crate) email: String,
}

/// A request taken on; what follows arrives by mail.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MailAccepted {
    pub(crate) status: &'static str,
    pub(crate) detail: &'static str,
}

/// The token from the reset mail and the new password.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordResetConfirmRequest {
    #[validate(length(min = 1, max = 512))]
    #[schema(min_length = 1, max_length = 512)]
    pub(crate) token: String,
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub(crate) password: String,
}

/// The token from a verification mail.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmailVerificationConfirmRequest {
    #[validate(length(min = 1, max = 512))]
    #[schema(min_length = 1, max_length = 512)]
    pub(crate) token: String,
}

/// The address to move the account to, and the account's password.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada.new@example.com", "password": "correct-violet-anchor-42"}))]
pub(crate) struct EmailChangeRequest {
    #[validate(length(min = 1, max = 254))]
    #[schema(format = Email, min_length = 1, max_length = 254)]
    pub(crate) email: String,
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub(crate) password: String,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
pub(crate) struct RefreshTokenRequest {
    #[validate(length(min = 1, max = 512))]
    #[schema(min_length = 1, max_length = 512)]
    pub(crate) refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub(crate) token_type: &'static str,
    /// Seconds until the access token expires.
    pub(crate) expires_in: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserResponse {
    pub(crate) id: uuid::Uuid,
    pub(crate) email: String,
    /// Whether `email` was proved by a mailed link.
    pub(crate) email_verified: bool,
    pub(crate) name: String,
    pub(crate) roles: Vec<Role>,
    pub(crate) default_shipping_address: Option<AddressBody>,
    pub(crate) created_at: Timestamp,
}

impl From<User> for UserResponse {
    fn from(u: User) -> Self {
        Self {
            id: u.id.as_uuid(),
            email: u.email.to_string(),
            email_verified: u.email_verified_at.is_some(),
            name: u.name.as_ref().to_owned(),
            roles: u.roles.as_slice().to_vec(),
            default_shipping_address: u.default_shipping_address.map(AddressBody::from),
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateMeRequest {
    #[validate(length(max = 100))]
    #[schema(schema_with = kernel::schema::text_100_or_null)]
    pub(crate) name: Option<String>,
    /// An address to store, or `null` to remove it.
    #[serde(default, deserialize_with = "platform::http::present")]
    #[schema(value_type = Option<AddressBody>)]
    #[validate(nested)]
    pub(crate) default_shipping_address: Option<Option<AddressBody>>,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[schema(example = json!({"roles": ["customer", "admin"]}))]
pub(crate) struct SetRolesRequest {
    #[validate(length(min = 1, max = 4))]
    #[schema(min_items = 1, max_items = 4)]
    pub(crate) roles: Vec<Role>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderHistoryItem {
    pub(crate) order_id: uuid::Uuid,
    pub(crate) status: ordering_contracts::OrderStatus,
    pub(crate) total: Money,
    pub(crate) placed_at: Timestamp,
    pub(crate) cancellation_reason: Option<String>,
    pub(crate) tracking_number: Option<String>,
    pub(crate) updated_at: Timestamp,
    /// What was given back: every confirmed refund so far, partial ones included.
    pub(crate) refunded: Money,
}

impl From<OrderHistoryEntry> for OrderHistoryItem {
    fn from(e: OrderHistoryEntry) -> Self {
        Self {
            order_id: e.order_id.as_uuid(),
            status: e.status,
            total: e.total,
            placed_at: e.placed_at,
            cancellation_reason: e.cancellation_reason,
            tracking_number: e.tracking_number,
            updated_at: e.updated_at,
            refunded: e.refunded,
        }
    }
}

/// An OAuth 2.0 client-credentials token request (RFC 6749 §4.4), form-encoded. The client
/// authenticates with HTTP Basic or with `client_id` and `client_secret` in the form.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ClientCredentialsRequest {
    /// Always `client_credentials` (any other is 400 `unsupported_grant_type`).
    #[schema(example = "client_credentials", pattern = "^client_credentials$")]
    pub(crate) grant_type: String,
    /// The context the token is for (`identity`, `catalog`, `ordering`, `shipping`,
    /// `notifications`); optional when the client may call only one.
    #[schema(example = "ordering")]
    pub(crate) audience: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServiceTokenResponse {
    pub(crate) access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub(crate) token_type: &'static str,
    /// Seconds until the token expires.
    pub(crate) expires_in: u64,
}

/// An address to save in the address book.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"address": {"name": "Ada Lovelace", "line1": "12 Market Street", "city": "Berlin", "postal_code": "10115", "country": "DE"}, "is_default": true}))]
pub(crate) struct NewAddressRequest {
    #[validate(nested)]
    pub(crate) address: AddressBody,
    /// Make it the default (the first address saved is the default anyway).
    #[serde(default)]
    pub(crate) is_default: bool,
}

/// What to change of a saved address; each field given replaces the old value.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddressChangeRequest {
    #[validate(nested)]
    pub(crate) address: Option<AddressBody>,
    /// `true` makes it the default (taking it from the old one); `false` leaves no default.
    pub(crate) is_default: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SavedAddressResponse {
    /// Give it as `shipping_address_id` at checkout.
    pub(crate) id: uuid::Uuid,
    pub(crate) address: AddressBody,
    pub(crate) is_default: bool,
    pub(crate) created_at: Timestamp,
}

impl From<AddressEntry> for SavedAddressResponse {
    fn from(e: AddressEntry) -> Self {
        Self {
            id: e.id,
            address: AddressBody::from(e.address),
            is_default: e.is_default,
            created_at: e.created_at,
        }
    }
}

/// The address book, oldest first (at most 20).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AddressBookResponse {
    pub(crate) items: Vec<SavedAddressResponse>,
}
