//! Postal addresses, as customers give them for shipping.

use serde::{Deserialize, Serialize};

/// ISO 3166-1 alpha-2 codes.
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP \
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT \
MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW \
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG \
UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct AddressError {
    pub field: &'static str,
    pub message: &'static str,
}

/// A checked shipping address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PostalAddress {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

fn clean(field: &'static str, raw: &str, max: usize) -> Result<String, AddressError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(AddressError {
            field,
            message: "must not be empty",
        });
    }
    if value.chars().count() > max {
        return Err(AddressError {
            field,
            message: "is too long",
        });
    }
    if value.chars().any(char::is_control) {
        return Err(AddressError {
            field,
            message: "must not contain control characters",
        });
    }
    Ok(value.to_owned())
}

/// An ISO 3166-1 alpha-2 code (any case, trimmed), upper case; `None` for anything else.
pub fn country_code(raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_uppercase();
    (code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code)).then_some(code)
}

impl PostalAddress {
    pub fn parse(
        name: &str,
        line1: &str,
        line2: Option<&str>,
        city: &str,
        postal_code: &str,
        country: &str,
    ) -> Result<Self, AddressError> {
        let country = country_code(country).ok_or(AddressError {
            field: "country",
            message: "must be an ISO 3166-1 alpha-2 country code such as DE",
        })?;
        let line2 = match line2.map(str::trim).filter(|s| !s.is_empty()) {
            Some(l) => Some(clean("line2", l, 200)?),
            None => None,
        };
        Ok(Self {
            name: clean("name", name, 200)?,
            line1: clean("line1", line1, 200)?,
            line2,
            city: clean("city", city, 100)?,
            postal_code: clean("postal_code", postal_code, 20)?,
            country,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let a = PostalAddress::parse(" Ada ", "1 Main St", Some(" "), "Berlin", "10115", "de");
        let a = a.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.country, "DE");
        assert_eq!(a.name, "Ada");
        assert_eq!(a.line2, None);
    }

    #[test]
    fn rejects_bad_fields() {
        let e = PostalAddress::parse("Ada", "1 Main", None, "Berlin", "10115", "XX").err();
        assert_eq!(e.map(|e| e.field), Some("country"));
        let e = PostalAddress::parse("", "1 Main", None, "Berlin", "10115", "DE").err();
        assert_eq!(e.map(|e| e.field), Some("name"));
    }
}

/// An address in a request or response body.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, validator::Validate,
)]
#[schema(example = json!({"name": "Ada Lovelace", "line1": "12 Market Street", "city": "Berlin", "postal_code": "10115", "country": "DE"}))]
pub struct AddressBody {
    #[validate(length(min = 1, max = 200))]
    #[schema(schema_with = crate::schema::text_200)]
    pub name: String,
    #[validate(length(min = 1, max = 200))]
    #[schema(schema_with = crate::schema::text_200)]
    pub line1: String,
    /// Blank or `null`: none.
    #[validate(length(max = 200))]
    #[schema(schema_with = crate::schema::optional_text_200_or_null)]
    pub line2: Option<String>,
    #[validate(length(min = 1, max = 100))]
    #[schema(schema_with = crate::schema::text_100)]
    pub city: String,
    #[validate(length(min = 1, max = 20))]
    #[schema(schema_with = crate::schema::text_20)]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    #[validate(length(equal = 2))]
    #[schema(schema_with = country_schema)]
    pub country: String,
}

/// The ISO 3166-1 alpha-2 codes the server takes, as an enumeration.
pub fn country_schema() -> utoipa::openapi::schema::Object {
    let codes: Vec<&str> = COUNTRIES.split(' ').collect();
    crate::schema::one_of(&codes)
}

crate::named_schema!(
    /// The country code list as the named schema `Country`.
    pub CountryCode,
    "Country",
    country_schema
);

impl AddressBody {
    /// Parses into a checked address; errors name the field under `prefix`.
    pub fn parse(&self, prefix: &str) -> Result<PostalAddress, crate::error::FieldError> {
        PostalAddress::parse(
            &self.name,
            &self.line1,
            self.line2.as_deref(),
            &self.city,
            &self.postal_code,
            &self.country,
        )
        .map_err(|e| crate::error::FieldError::new(format!("{prefix}.{}", e.field), e.message))
    }
}

impl From<PostalAddress> for AddressBody {
    fn from(a: PostalAddress) -> Self {
        Self {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}
