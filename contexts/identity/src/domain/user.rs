use kernel::address::PostalAddress;
use kernel::id::UserId;
use kernel::{EmailAddress, Timestamp};
use platform::auth::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UserNameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 100 characters")]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacters,
}

/// A display name: trimmed, 1..=100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserName(String);

impl UserName {
    pub(crate) fn parse(raw: &str) -> Result<Self, UserNameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(UserNameError::Empty);
        }
        if name.chars().count() > 100 {
            return Err(UserNameError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(UserNameError::ControlCharacters);
        }
        Ok(Self(name.to_owned()))
    }
}

impl AsRef<str> for UserName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A non-empty set of roles; every account is at least a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Roles(Vec<Role>);

impl Roles {
    pub(crate) fn customer() -> Self {
        Self(vec![Role::Customer])
    }

    pub(crate) fn new(mut roles: Vec<Role>) -> Self {
        if !roles.contains(&Role::Customer) {
            roles.push(Role::Customer);
        }
        roles.sort_by_key(|r| r.as_str());
        roles.dedup();
        Self(roles)
    }

    pub(crate) fn with(&self, role: Role) -> Self {
        let mut roles = self.0.clone();
        roles.push(role);
        Self::new(roles)
    }

    pub(crate) fn as_slice(&self) -> &[Role] {
        &self.0
    }

    /// Stored form: `admin,customer`.
    pub(crate) fn encode(&self) -> String {
        self.0
            .iter()
            .map(Role::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub(crate) fn decode(raw: &str) -> Self {
        Self::new(raw.split(',').filter_map(Role::parse).collect())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) id: UserId,
    pub(crate) email: EmailAddress,
    pub(crate) name: UserName,
    pub(crate) password_hash: String,
    pub(crate) roles: Roles,
    pub(crate) default_shipping_address: Option<PostalAddress>,
    /// When the address was proved (by a mailed link); `None`: not yet.
    pub(crate) email_verified_at: Option<Timestamp>,
    pub(crate) created_at: Timestamp,
}

impl User {
    pub(crate) fn register(
        email: EmailAddress,
        name: UserName,
        password_hash: String,
        now: Timestamp,
    ) -> Self {
        Self {
            id: UserId::new(),
            email,
            name,
            password_hash,
            roles: Roles::customer(),
            default_shipping_address: None,
            email_verified_at: None,
            created_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            UserName::parse("  Ada ").map(|n| n.as_ref().to_owned()),
            Ok("Ada".to_owned())
        );
        assert_eq!(UserName::parse("   "), Err(UserNameError::Empty));
        assert_eq!(
            UserName::parse(&"a".repeat(101)),
            Err(UserNameError::TooLong)
        );
        assert_eq!(
            UserName::parse("a\u{0}b"),
            Err(UserNameError::ControlCharacters)
        );
    }

    #[test]
    fn every_account_keeps_the_customer_role() {
        assert_eq!(Roles::new(vec![Role::Admin]).encode(), "admin,customer");
        assert_eq!(
            Roles::decode("customer,admin,bogus").encode(),
            "admin,customer"
        );
        assert_eq!(Roles::new(vec![]).encode(), "customer");
    }
}
