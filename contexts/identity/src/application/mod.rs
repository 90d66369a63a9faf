//! Identity's use cases and the ports they need.

pub(crate) mod accounts;
pub(crate) mod address_book;
pub(crate) mod email_verifications;
pub(crate) mod order_history;
pub(crate) mod password_resets;
pub(crate) mod ports;
pub(crate) mod service_clients;
pub(crate) mod sessions;

use kernel::error::FieldError;

/// Outcomes of identity's use cases that the caller must tell apart.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdentityError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("an account with this email exists")]
    EmailTaken,
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("too many failed attempts")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("the refresh token is invalid or expired")]
    InvalidRefreshToken,
    #[error("the refresh token was already used; its session is revoked")]
    RefreshTokenReused,
    #[error("too many sign-ups from this client")]
    TooManySignUps { retry_after_secs: u64 },
    #[error("no such user")]
    UserNotFound,
    #[error("the last admin cannot lose the admin role")]
    LastAdmin,
    #[error("password hashing is at capacity")]
    Busy,
    #[error("too many password reset requests")]
    TooManyResets { retry_after_secs: u64 },
    #[error("the reset token is invalid, used, superseded or expired")]
    ResetTokenInvalid,
    #[error("too many verification links asked for")]
    TooManyVerifications { retry_after_secs: u64 },
    #[error("the verification token is invalid, used, superseded or expired")]
    VerificationTokenInvalid,
    #[error("the address is verified already")]
    EmailAlreadyVerified,
    #[error("the password is not the account's")]
    WrongPassword,
    #[error("the address book is full")]
    AddressBookFull,
    #[error("no such address in the address book")]
    AddressNotFound,
    #[error("log-in attempts cannot be counted right now")]
    ThrottleUnavailable,
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<anyhow::Error> for IdentityError {
    /// A full password hashing pool is an outcome the caller hears about (try again
    /// shortly), not an unexpected failure.
    fn from(e: anyhow::Error) -> Self {
        if e.downcast_ref::<ports::HashingBusy>().is_some() {
            Self::Busy
        } else {
            Self::Unexpected(e)
        }
    }
}

impl IdentityError {
    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}
