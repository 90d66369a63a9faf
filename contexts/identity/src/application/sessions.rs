//! Log in, refresh (rotating, with reuse detection) and revoke.

use std::sync::Arc;
use std::time::Duration;

use kernel::{Clock, EmailAddress};

use super::ports::{
    AccessTokenIssuer, LoginThrottle, PasswordHasher, Rotation, SessionRepository, ThrottleKey,
    ThrottleRefusal, UserRepository,
};
use super::IdentityError;

pub(crate) const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

pub(crate) struct Sessions {
    pub(crate) users: Arc<dyn UserRepository>,
    pub(crate) sessions: Arc<dyn SessionRepository>,
    pub(crate) hasher: Arc<dyn PasswordHasher>,
    pub(crate) issuer: Arc<dyn AccessTokenIssuer>,
    pub(crate) throttle: Arc<dyn LoginThrottle>,
    pub(crate) clock: Arc<dyn Clock>,
}

pub(crate) struct TokenPair {
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
    pub(crate) expires_in: u64,
}

use platform::secret::{hash_secret, new_secret};

impl Sessions {
    #[tracing::instrument(name = "Log in", skip_all)]
    pub(crate) async fn log_in(
        &self,
        email: &str,
        password: &str,
        client_ip: Option<&str>,
    ) -> Result<TokenPair, IdentityError> {
        let normalised = email.trim().to_lowercase();
        // Failures slow down this account from this client address, and this client address:
        // never the account everywhere, so an attacker cannot lock its owner out.
        let client = client_ip.unwrap_or("unknown").to_owned();
        let keys = [
            ThrottleKey::AccountFrom {
                email: normalised.clone(),
                client: client.clone(),
            },
            ThrottleKey::Client(client),
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
        let checked = async {
            let user = match EmailAddress::parse(&normalised) {
                Ok(address) => self.users.by_email(&address).await?,
                Err(_) => None,
            };
            // Unknown accounts cost the same argon2 verification as a wrong password.
            let ok = self
                .hasher
                .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
                .await?;
            anyhow::Ok(user.filter(|_| ok))
        };
        let user = match checked.await {
            Ok(Some(user)) => user,
            Ok(None) => return Err(IdentityError::InvalidCredentials),
            // Not judged (busy, database out): the attempt does not count against anyone.
            Err(e) => {
                self.throttle.give_back(&keys).await;
                return Err(e.into());
            }
        };
        self.throttle.clear(&keys[0]).await;
        self.throttle.give_back(&keys[1..]).await;
        let access = self.issuer.issue(user.id, &user.roles)?;
        let refresh = new_secret();
        let now = self.clock.now();
        let family = uuid::Uuid::now_v7().to_string();
        self.sessions
            .start(
                &hash_secret(&refresh),
                &family,
                user.id,
                now,
                now.plus(REFRESH_TOKEN_TTL),
            )
            .await?;
        Ok(TokenPair {
            access_token: access.token,
            refresh_token: refresh,
            expires_in: access.expires_in,
        })
    }

    #[tracing::instrument(name = "Refresh tokens", skip_all)]
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, IdentityError> {
        let old_hash = hash_secret(refresh_token);
        let now = self.clock.now();
        let stored = self
            .sessions
            .find(&old_hash)
            .await?
            .ok_or(IdentityError::InvalidRefreshToken)?;
        if stored.spent {
            self.sessions.revoke_family(&stored.family_id, now).await?;
            tracing::warn!(user_id = %stored.user_id, "refresh token reuse: session family revoked");
            return Err(IdentityError::RefreshTokenReused);
        }
        if stored.expires_at <= now {
            return Err(IdentityError::InvalidRefreshToken);
        }
        let user = self
            .users
            .by_id(stored.user_id)
            .await?
            .ok_or(IdentityError::InvalidRefreshToken)?;
        let new_secret = new_secret();
        match self
            .sessions
            .rotate(
                &old_hash,
                &hash_secret(&new_secret),
                now,
                now.plus(REFRESH_TOKEN_TTL),
            )
            .await?
        {
            Rotation::Rotated => {}
            Rotation::Reused => {
                tracing::warn!(user_id = %stored.user_id, "refresh token reuse: session family revoked");
                return Err(IdentityError::RefreshTokenReused);
            }
            Rotation::Unknown => return Err(IdentityError::InvalidRefreshToken),
        }
        // Roles are read afresh, so a role change reaches the next access token.
        let access = self.issuer.issue(user.id, &user.roles)?;
        Ok(TokenPair {
            access_token: access.token,
            refresh_token: new_secret,
            expires_in: access.expires_in,
        })
    }

    /// Logs out: the token's whole family is revoked. Unknown tokens are ignored (no oracle).
    pub(crate) async fn revoke(&self, refresh_token: &str) -> Result<(), IdentityError> {
        if let Some(stored) = self.sessions.find(&hash_secret(refresh_token)).await? {
            self.sessions
                .revoke_family(&stored.family_id, self.clock.now())
                .await?;
        }
        Ok(())
    }
}
