//! Email verification and email change: a link mailed to an address proves the customer
//! owns it.
//!
//! Sign-up mails one to the address signed up with; a customer may ask for it again, or ask
//! to move the account to another address, which takes effect only once the link mailed to
//! the new address is opened. A token is 256 random bits, stored as its SHA-256, for one
//! address; it works once, until it expires or a newer one is issued for the account.
//! Verifying publishes `identity.email_verified` (ordering may require it before checkout)
//! and, for a change, `identity.profile_changed` with the new address.

use std::sync::Arc;
use std::time::Duration;

use bus::{Causation, UnitOfWork};
use identity_contracts::{
    EmailVerificationRequested, EmailVerified, ProfileChanged, VerificationPurpose,
};
use kernel::id::UserId;
use kernel::{Clock, EmailAddress, Timestamp};

use super::ports::{
    EmailVerificationRepository, LoginThrottle, OrderHistoryRepository, PasswordHasher,
    SaveUserError, SessionRepository, ThrottleKey, ThrottleRefusal, UserRepository,
};
use super::IdentityError;
use crate::domain::User;
use platform::secret::{hash_secret, new_secret};

/// Issues verification links; shared by sign-up and the verification use cases.
#[derive(Clone)]
pub(crate) struct LinkIssuer {
    pub(crate) verifications: Arc<dyn EmailVerificationRepository>,
    pub(crate) ttl: Duration,
}

impl LinkIssuer {
    /// Stores a new token for `user` to prove `email` (superseding the account's earlier
    /// ones) and publishes the request for notifications to mail, in the unit.
    pub(crate) async fn issue_in(
        &self,
        work: &mut UnitOfWork,
        user: &User,
        email: &EmailAddress,
        purpose: VerificationPurpose,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let token = new_secret();
        let expires_at = now.plus(self.ttl);
        self.verifications
            .issue(work, &hash_secret(&token), user.id, email, now, expires_at)
            .await?;
        work.publish(
            &EmailVerificationRequested {
                verification_id: uuid::Uuid::now_v7().to_string(),
                user_id: user.id,
                email: email.to_string(),
                name: user.name.as_ref().to_owned(),
                purpose,
                verification_token: token,
                expires_at,
                requested_at: now,
            },
            now,
        )?;
        Ok(())
    }
}

pub(crate) struct EmailVerifications {
    pub(crate) links: LinkIssuer,
    pub(crate) users: Arc<dyn UserRepository>,
    pub(crate) hasher: Arc<dyn PasswordHasher>,
    pub(crate) throttle: Arc<dyn LoginThrottle>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: bus::Store,
    /// The profiles `GET /me` reads through; a verified or changed address drops the entry.
    pub(crate) profiles: moka::future::Cache<UserId, User>,
    /// Guest orders placed with an address join the history of the account that proves it.
    pub(crate) history: Arc<dyn OrderHistoryRepository>,
    /// A proved change of address ends the account's sessions.
    pub(crate) sessions: Arc<dyn SessionRepository>,
}

fn refused(refusal: ThrottleRefusal) -> IdentityError {
    match refusal {
        ThrottleRefusal::Wait(retry_after_secs) => {
            IdentityError::TooManyVerifications { retry_after_secs }
        }
        ThrottleRefusal::Unavailable => IdentityError::ThrottleUnavailable,
    }
}

impl EmailVerifications {
    /// Mails the caller a new link: for the address they asked to move to when a change is
    /// pending, else for their own address while it is unverified.
    #[tracing::instrument(name = "Resend email verification", skip_all)]
    pub(crate) async fn resend(&self, id: UserId, cause: &Causation) -> Result<(), IdentityError> {
        self.throttle
            .attempt(&[ThrottleKey::VerifyFor(id.to_string())])
            .await
            .map_err(refused)?;
        let user = self
            .users
            .by_id(id)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        let now = self.clock.now();
        let pending = self.links.verifications.pending(id, now).await?;
        let (email, purpose) = match pending {
            Some(next) if next != user.email => (next, VerificationPurpose::EmailChange),
            _ if user.email_verified_at.is_none() => {
                (user.email.clone(), VerificationPurpose::SignUp)
            }
            _ => return Err(IdentityError::EmailAlreadyVerified),
        };
        let mut work = self.store.begin(cause.clone()).await?;
        self.links
            .issue_in(&mut work, &user, &email, purpose, now)
            .await?;
        work.commit().await?;
        Ok(())
    }

    /// Asks to move the caller's account to `new_email`, with their password: a link goes to
    /// the new address, and the account keeps its current one until the link is opened.
    #[tracing::instrument(name = "Change email", skip_all)]
    pub(crate) async fn change(
        &self,
        id: UserId,
        new_email: &str,
        password: &str,
        client: Option<&str>,
        cause: &Causation,
    ) -> Result<(), IdentityError> {
        let email = EmailAddress::parse(new_email)
            .map_err(|e| IdentityError::field("email", e.to_string()))?;
        let user = self
            .users
            .by_id(id)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        if email == user.email {
            return Err(IdentityError::field("email", "is already your address"));
        }
        // Counted like log-in failures on this account from this client: a stolen access
        // token does not make the password guessable.
        let keys = [
            ThrottleKey::AccountFrom {
                email: user.email.to_string(),
                client: client.unwrap_or("unknown").to_owned(),
            },
            ThrottleKey::VerifyFor(id.to_string()),
        ];
        self.throttle
            .attempt(&keys)
            .await
            .map_err(|refusal| match refusal {
                ThrottleRefusal::Wait(retry_after_secs) => {
                    IdentityError::TooManyAttempts { retry_after_secs }
                }
                ThrottleRefusal::Unavailable => IdentityError::ThrottleUnavailable,
            })?;
        let ok = match self
            .hasher
            .verify(password, Some(&user.password_hash))
            .await
        {
            Ok(ok) => ok,
            Err(e) => {
                self.throttle.give_back(&keys).await;
                return Err(e.into());
            }
        };
        if !ok {
            return Err(IdentityError::WrongPassword);
        }
        self.throttle.clear(&keys[0]).await;
        if self.users.by_email(&email).await?.is_some() {
            return Err(IdentityError::EmailTaken);
        }
        let now = self.clock.now();
        let mut work = self.store.begin(cause.clone()).await?;
        self.links
            .issue_in(
                &mut work,
                &user,
                &email,
                VerificationPurpose::EmailChange,
                now,
            )
            .await?;
        work.commit().await?;
        Ok(())
    }

    /// Proves the address the token was issued for; an address the account asked to move to
    /// becomes its address. An unknown, used, superseded or expired token changes nothing.
    #[tracing::instrument(name = "Confirm email verification", skip_all)]
    pub(crate) async fn confirm(
        &self,
        token: &str,
        cause: &Causation,
    ) -> Result<(), IdentityError> {
        let token_hash = hash_secret(token.trim());
        let now = self.clock.now();
        let (owner, email) = self
            .links
            .verifications
            .owner(&token_hash, now)
            .await?
            .ok_or(IdentityError::VerificationTokenInvalid)?;
        let user = self
            .users
            .by_id(owner)
            .await?
            .ok_or(IdentityError::VerificationTokenInvalid)?;
        let mut work = self.store.begin(cause.clone()).await?;
        // Spent in the unit: of concurrent confirmations one goes on; if the address was
        // taken meanwhile, the unit rolls back and the token still works.
        if !self
            .links
            .verifications
            .spend(&mut work, &token_hash, owner, now)
            .await?
        {
            return Err(IdentityError::VerificationTokenInvalid);
        }
        match self
            .users
            .set_verified_email(&mut work, owner, &email, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(IdentityError::VerificationTokenInvalid),
            Err(SaveUserError::EmailTaken) => return Err(IdentityError::EmailTaken),
            Err(SaveUserError::Unexpected(e)) => return Err(e.into()),
        }
        if email != user.email {
            // The account moved: whoever held a session on the old address holds none now,
            // and the old address is told (docs/decisions/0052-an-email-address-is-proved-by-a.md).
            let ended = self.sessions.revoke_all_in(&mut work, owner, now).await?;
            tracing::info!(user_id = %owner, sessions = ended, "email changed; sessions ended");
            work.publish(
                &ProfileChanged {
                    user_id: owner,
                    email: email.to_string(),
                    name: user.name.as_ref().to_owned(),
                    changed_at: now,
                    previous_email: Some(user.email.to_string()),
                },
                now,
            )?;
        }
        let claimed = self.history.claim_in(&mut work, owner, &email).await?;
        if claimed > 0 {
            tracing::info!(user_id = %owner, claimed, "guest orders joined the account's history");
        }
        work.publish(
            &EmailVerified {
                user_id: owner,
                email: email.to_string(),
                verified_at: now,
            },
            now,
        )?;
        work.commit().await?;
        self.profiles.invalidate(&owner).await;
        Ok(())
    }
}
