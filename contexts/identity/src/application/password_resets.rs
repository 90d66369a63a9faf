//! Password reset: ask for a link by email, then set a new password with the token it carries.
//!
//! Asking answers the same whether or not the address has an account (no enumeration); for
//! one that does, a token of 256 random bits is stored as its SHA-256 and published in
//! `identity.password_reset_requested` for notifications to mail. Setting the password spends
//! the token (once; the newest of the account's; before it expires) and revokes every
//! refresh token of the account.

use std::sync::Arc;
use std::time::Duration;

use bus::Causation;
use identity_contracts::PasswordResetRequested;
use kernel::{Clock, EmailAddress};

use super::accounts::contains_mailbox;
use super::ports::{
    LoginThrottle, PasswordHasher, PasswordResetRepository, ThrottleKey, ThrottleRefusal,
    UserRepository,
};
use super::IdentityError;
use crate::domain::Password;
use platform::secret::{hash_secret, new_secret};

pub(crate) struct PasswordResets {
    pub(crate) users: Arc<dyn UserRepository>,
    pub(crate) resets: Arc<dyn PasswordResetRepository>,
    pub(crate) hasher: Arc<dyn PasswordHasher>,
    pub(crate) throttle: Arc<dyn LoginThrottle>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: bus::Store,
    pub(crate) ttl: Duration,
}

impl PasswordResets {
    /// Asks for a reset link for `email`. `Ok` whether or not an account has the address.
    #[tracing::instrument(name = "Request password reset", skip_all)]
    pub(crate) async fn request(
        &self,
        email: &str,
        client: Option<&str>,
        cause: &Causation,
    ) -> Result<(), IdentityError> {
        let email =
            EmailAddress::parse(email).map_err(|e| IdentityError::field("email", e.to_string()))?;
        // Counted for every address, known or not, so the limit itself tells nothing.
        let keys = [
            ThrottleKey::ResetFor(email.as_ref().to_owned()),
            ThrottleKey::ResetFrom(client.unwrap_or("unknown").to_owned()),
        ];
        self.throttle
            .attempt(&keys)
            .await
            .map_err(|refusal| match refusal {
                ThrottleRefusal::Wait(retry_after_secs) => {
                    IdentityError::TooManyResets { retry_after_secs }
                }
                ThrottleRefusal::Unavailable => IdentityError::ThrottleUnavailable,
            })?;
        let Some(user) = self.users.by_email(&email).await? else {
            return Ok(());
        };
        let token = new_secret();
        let now = self.clock.now();
        let expires_at = now.plus(self.ttl);
        let event = PasswordResetRequested {
            reset_id: uuid::Uuid::now_v7().to_string(),
            user_id: user.id,
            email: user.email.to_string(),
            name: user.name.as_ref().to_owned(),
            reset_token: token.clone(),
            expires_at,
            requested_at: now,
        };
        let mut work = self.store.begin(cause.clone()).await?;
        self.resets
            .issue(&mut work, &hash_secret(&token), user.id, now, expires_at)
            .await?;
        work.publish(&event, now)?;
        work.commit().await?;
        Ok(())
    }

    /// Sets the password of the account the token was issued for.
    #[tracing::instrument(name = "Confirm password reset", skip_all)]
    pub(crate) async fn confirm(&self, token: &str, password: &str) -> Result<(), IdentityError> {
        let password = Password::parse(password)
            .map_err(|e| IdentityError::field("password", e.to_string()))?;
        let token_hash = hash_secret(token.trim());
        let now = self.clock.now();
        let (owner, expires_at) = match self.resets.owner(&token_hash, now).await? {
            Some(found) => found,
            None => return Err(IdentityError::ResetTokenInvalid),
        };
        let user = self
            .users
            .by_id(owner)
            .await?
            .ok_or(IdentityError::ResetTokenInvalid)?;
        if contains_mailbox(&password, &user.email) {
            return Err(IdentityError::field(
                "password",
                "must not contain your email address",
            ));
        }
        // Spent before the expensive hash: of concurrent confirmations one goes on, the others
        // are refused at once (and do not fill the hashing queue).
        if !self.resets.spend(&token_hash, owner, now).await? {
            return Err(IdentityError::ResetTokenInvalid);
        }
        let hash = match self.hasher.hash(&password).await {
            Ok(hash) => hash,
            Err(e) => {
                // Busy or failed: the token works again, so the customer can retry.
                self.resets
                    .restore(&token_hash, owner, now, expires_at)
                    .await?;
                return Err(e.into());
            }
        };
        self.resets
            .set_password(owner, &hash, self.clock.now())
            .await?;
        Ok(())
    }
}
