//! Email addresses, normalised (trimmed, lower-cased) so uniqueness is case-insensitive.

use serde::{Deserialize, Serialize};
use validator::ValidateEmail;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a valid email address")]
pub struct EmailError;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let normalised = raw.trim().to_lowercase();
        if normalised.len() > 254 || !normalised.validate_email() {
            return Err(EmailError);
        }
        Ok(Self(normalised))
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = EmailError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> Self {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let e = EmailAddress::parse("  Ada@Example.COM ").map(|e| e.to_string());
        assert_eq!(e, Ok("ada@example.com".to_owned()));
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in ["", "ada", "ada@", "@example.com", "a b@example.com"] {
            assert_eq!(EmailAddress::parse(bad), Err(EmailError), "{bad}");
        }
    }
}
