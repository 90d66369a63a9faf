use std::collections::HashSet;
use std::sync::OnceLock;

const COMMON: &str = include_str!("../../data/common-passwords.txt");

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[allow(clippy::enum_variant_names)]
pub(crate) enum PasswordError {
    #[error("must be at least 12 characters")]
    TooShort,
    #[error("must be at most 128 characters")]
    TooLong,
    #[error("is too common; choose a less guessable password")]
    TooCommon,
}

/// A password that meets the policy: 12..=128 characters and not a known common one.
/// Never printed.
pub(crate) struct Password(String);

impl Password {
    pub(crate) fn parse(raw: &str) -> Result<Self, PasswordError> {
        let length = raw.chars().count();
        if length < 12 {
            return Err(PasswordError::TooShort);
        }
        if length > 128 {
            return Err(PasswordError::TooLong);
        }
        if common().contains(raw.to_lowercase().as_str()) {
            return Err(PasswordError::TooCommon);
        }
        Ok(Self(raw.to_owned()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforces_length_and_rejects_common_passwords() {
        assert_eq!(
            Password::parse("short").err(),
            Some(PasswordError::TooShort)
        );
        assert_eq!(
            Password::parse(&"x".repeat(129)).err(),
            Some(PasswordError::TooLong)
        );
        assert_eq!(
            Password::parse("Password1234").err(),
            Some(PasswordError::TooCommon)
        );
        assert_eq!(
            Password::parse("QWERTY123456").err(),
            Some(PasswordError::TooCommon)
        );
        assert!(Password::parse("plum-anchor-violet-42").is_ok());
        assert_eq!(
            format!("{:?}", Password::parse("plum-anchor-violet-42").ok()),
            "Some(Password(<redacted>))"
        );
    }

    #[test]
    fn the_shipped_list_is_loaded() {
        assert!(common().len() > 1000);
    }
}
