//! Sign-up, profiles, roles and the bootstrap admin.

use std::sync::Arc;

use bus::Causation;
use identity_contracts::{ProfileChanged, UserRegistered, VerificationPurpose};
use kernel::address::PostalAddress;
use kernel::error::FieldError;
use kernel::id::UserId;
use kernel::{Clock, EmailAddress};
use platform::auth::Role;
use platform::pagination::{Page, PageRequest};

use super::email_verifications::LinkIssuer;
use super::ports::{
    LoginThrottle, PasswordHasher, RoleChange, SaveUserError, ThrottleKey, ThrottleRefusal,
    UserRepository,
};
use super::IdentityError;
use crate::domain::{Password, Roles, User, UserName};

pub(crate) struct Accounts {
    /// Recently read profiles (a few seconds): `GET /me` on every page view stays cheap.
    /// Writes through this instance invalidate at once; another instance's write shows here
    /// within the cache's time to live.
    pub(crate) profiles: moka::future::Cache<UserId, User>,
    pub(crate) users: Arc<dyn UserRepository>,
    pub(crate) hasher: Arc<dyn PasswordHasher>,
    pub(crate) throttle: Arc<dyn LoginThrottle>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: bus::Store,
    /// Sign-up mails a link to verify the address.
    pub(crate) links: LinkIssuer,
}

pub(crate) struct SignUp {
    pub(crate) email: String,
    pub(crate) password: String,
    pub(crate) name: String,
    /// The client address, for the per-client sign-up limit (`None`: not limited).
    pub(crate) client: Option<String>,
}

pub(crate) struct ProfileChange {
    pub(crate) name: Option<String>,
    /// `Some(None)` clears the address.
    pub(crate) default_shipping_address: Option<Option<PostalAddress>>,
}

/// A password that spells the address's mailbox (of four characters or more) is refused.
pub(super) fn contains_mailbox(password: &Password, email: &EmailAddress) -> bool {
    let local = email.as_ref().split('@').next().unwrap_or_default();
    local.len() >= 4 && password.expose().to_lowercase().contains(local)
}

impl Accounts {
    #[tracing::instrument(name = "Sign up", skip_all)]
    pub(crate) async fn sign_up(
        &self,
        command: SignUp,
        cause: &Causation,
    ) -> Result<User, IdentityError> {
        let mut errors = Vec::new();
        let email = EmailAddress::parse(&command.email)
            .map_err(|e| errors.push(FieldError::new("email", e.to_string())))
            .ok();
        let name = UserName::parse(&command.name)
            .map_err(|e| errors.push(FieldError::new("name", e.to_string())))
            .ok();
        let password = Password::parse(&command.password)
            .map_err(|e| errors.push(FieldError::new("password", e.to_string())))
            .ok();
        let (Some(email), Some(name), Some(password)) = (email, name, password) else {
            return Err(IdentityError::Invalid(errors));
        };
        if contains_mailbox(&password, &email) {
            return Err(IdentityError::field(
                "password",
                "must not contain your email address",
            ));
        }
        // Cheap refusals before the expensive hash: a taken email, a client over its limit.
        if self.users.by_email(&email).await?.is_some() {
            return Err(IdentityError::EmailTaken);
        }
        let throttled: Vec<ThrottleKey> = command
            .client
            .map(ThrottleKey::SignUpFrom)
            .into_iter()
            .collect();
        self.throttle
            .attempt(&throttled)
            .await
            .map_err(|refusal| match refusal {
                ThrottleRefusal::Wait(retry_after_secs) => {
                    IdentityError::TooManySignUps { retry_after_secs }
                }
                ThrottleRefusal::Unavailable => IdentityError::ThrottleUnavailable,
            })?;
        let hash = match self.hasher.hash(&password).await {
            Ok(hash) => hash,
            Err(e) => {
                self.throttle.give_back(&throttled).await;
                return Err(e.into());
            }
        };
        let now = self.clock.now();
        let user = User::register(email, name, hash, now);
        let event = UserRegistered {
            user_id: user.id,
            email: user.email.to_string(),
            name: user.name.as_ref().to_owned(),
            registered_at: now,
        };
        let mut work = self.store.begin(cause.clone()).await?;
        match self.users.create(&mut work, &user).await {
            Ok(()) => {
                work.publish(&event, now)?;
                self.links
                    .issue_in(
                        &mut work,
                        &user,
                        &user.email,
                        VerificationPurpose::SignUp,
                        now,
                    )
                    .await?;
                work.commit().await?;
                Ok(user)
            }
            Err(SaveUserError::EmailTaken) => Err(IdentityError::EmailTaken),
            Err(SaveUserError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// Ensures the configured admin exists with the admin role. An account that already
    /// exists without the role is made admin only when the configured password is its
    /// password: someone who registered the address first cannot be handed admin rights.
    pub(crate) async fn ensure_admin(&self, email: &str, password: &str) -> anyhow::Result<()> {
        let address = EmailAddress::parse(email)
            .map_err(|e| anyhow::anyhow!("EMPORIUM_BOOTSTRAP_ADMIN_EMAIL: {e}"))?;
        if let Some(user) = self.users.by_email(&address).await? {
            if user.roles.as_slice().contains(&Role::Admin) {
                return Ok(());
            }
            if !self
                .hasher
                .verify(password, Some(&user.password_hash))
                .await?
            {
                anyhow::bail!(
                    "EMPORIUM_BOOTSTRAP_ADMIN_EMAIL: an account {address} already exists and is not an admin, \
                     and EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD is not its password; refusing to make it admin \
                     (name an address nobody has registered, or grant the role from an existing admin)"
                );
            }
            self.grant_admin(&user).await?;
            tracing::info!(email = %address, "bootstrap admin: admin role granted (password matched)");
            return Ok(());
        }
        let user = match self
            .sign_up(
                SignUp {
                    email: email.to_owned(),
                    password: password.to_owned(),
                    name: "Administrator".to_owned(),
                    client: None,
                },
                &Causation::system(),
            )
            .await
        {
            Ok(user) => user,
            // Another instance created it a moment ago with the same configuration.
            Err(IdentityError::EmailTaken) => {
                return Box::pin(self.ensure_admin(email, password)).await
            }
            Err(IdentityError::Invalid(errors)) => {
                let detail: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{} {}", e.field, e.message))
                    .collect();
                anyhow::bail!("EMPORIUM_BOOTSTRAP_ADMIN_*: {}", detail.join("; "));
            }
            Err(e) => return Err(anyhow::anyhow!(e)),
        };
        self.grant_admin(&user).await?;
        tracing::info!(email = %address, "bootstrap admin created");
        Ok(())
    }

    async fn grant_admin(&self, user: &User) -> anyhow::Result<()> {
        self.users
            .set_roles(user.id, &user.roles.with(Role::Admin), self.clock.now())
            .await?;
        Ok(())
    }

    pub(crate) async fn me(&self, id: UserId) -> Result<User, IdentityError> {
        if let Some(user) = self.profiles.get(&id).await {
            return Ok(user);
        }
        let user = self
            .users
            .by_id(id)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        self.profiles.insert(id, user.clone()).await;
        Ok(user)
    }

    /// Changes the caller's profile; a new name is announced (`identity.profile_changed`)
    /// in the same unit.
    pub(crate) async fn update_me(
        &self,
        id: UserId,
        change: ProfileChange,
        cause: &Causation,
    ) -> Result<User, IdentityError> {
        let name = match change.name.as_deref() {
            Some(raw) => Some(
                UserName::parse(raw).map_err(|e| IdentityError::field("name", e.to_string()))?,
            ),
            None => None,
        };
        let address = change.default_shipping_address.as_ref().map(|a| a.as_ref());
        let current = self
            .users
            .by_id(id)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        let now = self.clock.now();
        let mut work = self.store.begin(cause.clone()).await?;
        let updated = self
            .users
            .update_profile(&mut work, id, name.as_ref(), address, now)
            .await?;
        if !updated {
            return Err(IdentityError::UserNotFound);
        }
        if let Some(name) = name.filter(|n| n.as_ref() != current.name.as_ref()) {
            work.publish(
                &ProfileChanged {
                    user_id: id,
                    email: current.email.to_string(),
                    name: name.as_ref().to_owned(),
                    changed_at: now,
                    previous_email: None,
                },
                now,
            )?;
        }
        work.commit().await?;
        self.profiles.invalidate(&id).await;
        self.me(id).await
    }

    pub(crate) async fn list(&self, page: &PageRequest) -> Result<Page<User>, IdentityError> {
        Ok(self.users.list(page).await?)
    }

    pub(crate) async fn set_roles(
        &self,
        id: UserId,
        roles: Vec<Role>,
    ) -> Result<User, IdentityError> {
        let change = self
            .users
            .set_roles(id, &Roles::new(roles), self.clock.now())
            .await?;
        self.profiles.invalidate(&id).await;
        match change {
            RoleChange::Done => self.me(id).await,
            RoleChange::NotFound => Err(IdentityError::UserNotFound),
            RoleChange::LastAdmin => Err(IdentityError::LastAdmin),
        }
    }
}
