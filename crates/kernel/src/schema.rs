//! Request-field schemas that state the rules the server enforces, so a generated client (or a
//! fuzzer) knows them before sending: text fields are trimmed of Unicode white space and must
//! then be non-empty, without control characters, and at most `max` characters as sent.
//! Used with `#[schema(schema_with = …)]`; the patterns are checked against the rules below.

use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

/// Unicode `White_Space`, what `str::trim` removes (as a character-class body).
const WHITE_SPACE: &str =
    r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Unicode `Cc`, what `char::is_control` matches (as a character-class body).
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";

/// A named schema whose body a function makes, for fields and parameters declared with
/// `value_type = …` (a parameter declared with `schema_with` loses its description and
/// required-ness in utoipa): `named_schema!(pub CountryCode, "Country", country_schema);`.
#[macro_export]
macro_rules! named_schema {
    ($(#[$meta:meta])* $vis:vis $ty:ident, $name:literal, $schema:path) => {
        $(#[$meta])*
        $vis struct $ty;

        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema().into()
            }
        }

        impl utoipa::ToSchema for $ty {
            fn name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
        }
    };
}

/// Trimmed: at least one character, none a control character.
pub fn text_pattern() -> String {
    format!(
        "^[{WHITE_SPACE}]*[^{WHITE_SPACE}{CONTROL}](?:[^{CONTROL}]*[^{WHITE_SPACE}{CONTROL}])?[{WHITE_SPACE}]*$"
    )
}

/// Trimmed: empty (then treated as absent), or as `text_pattern`.
pub fn optional_text_pattern() -> String {
    format!(
        "^[{WHITE_SPACE}]*(?:[^{WHITE_SPACE}{CONTROL}](?:[^{CONTROL}]*[^{WHITE_SPACE}{CONTROL}])?)?[{WHITE_SPACE}]*$"
    )
}

/// A code made of `core` (a regex without anchors), white space around it trimmed.
pub fn trimmed_code_pattern(core: &str) -> String {
    format!("^[{WHITE_SPACE}]*{core}[{WHITE_SPACE}]*$")
}

/// The rule `text_pattern` states, as the contexts apply it.
/// An integer field that also takes a number written with a zero fraction (`2.0`): JSON
/// Schema calls that an integer, so a client validating against the description may send it.
/// A fraction, or a value outside `i64`, is refused.
pub fn whole_number<'de, D>(deserializer: D) -> Result<i64, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match <serde_json::Number as serde::Deserialize>::deserialize(deserializer)? {
        n if n.is_i64() => n
            .as_i64()
            .ok_or_else(|| serde::de::Error::custom("not a whole number")),
        n => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && (-9.0e18..=9.0e18).contains(&f) => Ok(f as i64),
            _ => Err(serde::de::Error::custom(format!(
                "invalid type: {n} is not a whole number in range"
            ))),
        },
    }
}

#[cfg(test)]
fn text_ok(raw: &str, max: usize) -> bool {
    let t = raw.trim();
    raw.chars().count() <= max && !t.is_empty() && !t.chars().any(char::is_control)
}

fn string(max: usize, pattern: String, nullable: bool) -> ObjectBuilder {
    let kind = if nullable {
        SchemaType::Array(vec![Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .max_length(Some(max))
        .pattern(Some(pattern))
}

/// Text of at most `max` characters as sent, trimmed non-empty, no control characters.
pub fn text(max: usize) -> Object {
    string(max, text_pattern(), false)
        .min_length(Some(1))
        .build()
}

/// As `text`, or `null` (the field left unchanged or absent).
pub fn text_or_null(max: usize) -> Object {
    string(max, text_pattern(), true)
        .min_length(Some(1))
        .build()
}

/// As `text`, or blank, or `null` (both treated as absent).
pub fn optional_text_or_null(max: usize) -> Object {
    string(max, optional_text_pattern(), true).build()
}

/// A code: `core` (a regex without anchors) with white space around it trimmed, at most
/// `max` characters as sent.
pub fn code(core: &str, max: usize, nullable: bool) -> Object {
    string(max, trimmed_code_pattern(core), nullable)
        .min_length(Some(1))
        .build()
}

/// One of `values`.
pub fn one_of(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

pub fn text_100() -> Object {
    text(100)
}

pub fn text_200() -> Object {
    text(200)
}

pub fn text_20() -> Object {
    text(20)
}

pub fn text_100_or_null() -> Object {
    text_or_null(100)
}

pub fn text_200_or_null() -> Object {
    text_or_null(200)
}

pub fn optional_text_200_or_null() -> Object {
    optional_text_or_null(200)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<String> {
        let mut v: Vec<String> = [
            "",
            " ",
            "a",
            " a ",
            "\ta\n",
            "Ada Lovelace",
            "a\tb",
            "a\u{0}b",
            "\u{85}a\u{85}",
            "a\u{85}b",
            "\u{a0}x\u{3000}",
            "\u{1c}a",
            "a\u{1f}",
            "x\u{2028}y",
            "  ",
            "\u{7f}",
            "ü",
            "日本",
            "a b c",
            "\u{200b}",
            "\u{feff}a",
            "a\r\n",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        v.push("x".repeat(100));
        v.push("x".repeat(101));
        v.push(format!(" {} ", "y".repeat(99)));
        v
    }

    #[test]
    fn the_text_pattern_states_the_rule_the_contexts_apply() {
        let re = regex::Regex::new(&text_pattern()).unwrap_or_else(|e| panic!("{e}"));
        for s in samples() {
            let by_schema = re.is_match(&s) && s.chars().count() <= 100;
            assert_eq!(by_schema, text_ok(&s, 100), "{s:?}");
        }
    }

    #[test]
    fn the_optional_pattern_also_takes_blank() {
        let re = regex::Regex::new(&optional_text_pattern()).unwrap_or_else(|e| panic!("{e}"));
        for s in samples() {
            let blank = s.trim().is_empty();
            let by_schema = re.is_match(&s) && s.chars().count() <= 100;
            assert_eq!(
                by_schema,
                blank && s.chars().count() <= 100 || text_ok(&s, 100),
                "{s:?}"
            );
        }
    }

    #[test]
    fn a_code_is_trimmed_like_the_contexts_trim() {
        let re = regex::Regex::new(&trimmed_code_pattern("[A-Za-z0-9._-]+"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(re.is_match(" mug-01\u{3000}"));
        assert!(!re.is_match("mug 01"));
        assert!(!re.is_match(""));
    }
}
