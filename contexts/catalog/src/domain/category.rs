/// A category's URL name: lower-case words of letters and digits joined by single hyphens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slug(String);

impl Slug {
    pub(crate) fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim();
        let ok = (1..=64).contains(&s.len())
            && s.split('-').all(|w| {
                !w.is_empty()
                    && w.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err("must be 1 to 64 lower-case letters or digits in words joined by hyphens, e.g. garden-tools")
        }
    }
}

impl AsRef<str> for Slug {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CategoryName(String);

impl CategoryName {
    pub(crate) fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim();
        if s.is_empty() || s.chars().count() > 100 || s.chars().any(char::is_control) {
            return Err("must be 1 to 100 characters without control characters");
        }
        Ok(Self(s.to_owned()))
    }
}

impl AsRef<str> for CategoryName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_hyphenated_lower_case_words() {
        assert!(Slug::parse("garden-tools").is_ok());
        assert!(Slug::parse("a1").is_ok());
        for bad in [
            "",
            "Garden",
            "garden--tools",
            "-garden",
            "garden tools",
            "gärten",
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }
}
