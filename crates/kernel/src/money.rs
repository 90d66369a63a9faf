//! Money: integer minor units and an ISO 4217 currency. No floats anywhere; arithmetic is
//! checked and refuses to mix currencies.

use serde::{Deserialize, Serialize};

/// Active ISO 4217 alphabetic codes.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency must be an ISO 4217 code such as EUR")]
    UnknownCurrency,
    #[error("amount must not be negative")]
    Negative,
    #[error("amounts in different currencies cannot be combined")]
    CurrencyMismatch,
    #[error("amount is too large")]
    Overflow,
}

/// An ISO 4217 currency code (three upper-case letters, known to the standard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, MoneyError> {
        let code = raw.trim();
        if ISO_4217.binary_search(&code).is_err() {
            return Err(MoneyError::UnknownCurrency);
        }
        let bytes = code.as_bytes();
        Ok(Self([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from an ASCII code of the list above.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.as_str().to_owned()
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-negative amount of money in minor units (cents for EUR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "RawMoney")]
#[schema(example = json!({"amount": 1999, "currency": "EUR"}))]
pub struct Money {
    /// Minor units (cents for EUR), never negative.
    #[schema(minimum = 0)]
    amount: i64,
    /// ISO 4217 code.
    #[schema(schema_with = currency_schema)]
    currency: Currency,
}

/// The ISO 4217 codes the server takes, as an enumeration.
pub fn currency_schema() -> utoipa::openapi::schema::Object {
    crate::schema::one_of(ISO_4217)
}

crate::named_schema!(
    /// The currency code list as the named schema `Currency`.
    pub CurrencyCode,
    "Currency",
    currency_schema
);

#[derive(Deserialize)]
struct RawMoney {
    #[serde(deserialize_with = "crate::schema::whole_number")]
    amount: i64,
    currency: String,
}

impl TryFrom<RawMoney> for Money {
    type Error = MoneyError;
    fn try_from(raw: RawMoney) -> Result<Self, Self::Error> {
        Money::new(raw.amount, Currency::parse(&raw.currency)?)
    }
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Result<Self, MoneyError> {
        if amount < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(Self { amount, currency })
    }

    pub fn zero(currency: Currency) -> Self {
        Self {
            amount: 0,
            currency,
        }
    }

    pub fn amount(&self) -> i64 {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn checked_add(&self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch);
        }
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            amount,
            currency: self.currency,
        })
    }

    pub fn checked_mul(&self, quantity: u32) -> Result<Money, MoneyError> {
        let amount = self
            .amount
            .checked_mul(i64::from(quantity))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            amount,
            currency: self.currency,
        })
    }

    /// Sums amounts that must all share `currency`.
    pub fn sum(
        currency: Currency,
        items: impl IntoIterator<Item = Money>,
    ) -> Result<Money, MoneyError> {
        items
            .into_iter()
            .try_fold(Money::zero(currency), |acc, m| acc.checked_add(m))
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn the_currency_list_is_sorted_for_binary_search() {
        assert!(ISO_4217.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn rejects_unknown_currencies_and_negative_amounts() {
        assert_eq!(Currency::parse("eur"), Err(MoneyError::UnknownCurrency));
        assert_eq!(Currency::parse("XYZ"), Err(MoneyError::UnknownCurrency));
        assert_eq!(Money::new(-1, eur()), Err(MoneyError::Negative));
    }

    #[test]
    fn refuses_to_mix_currencies() {
        let usd = Currency::parse("USD").unwrap_or_else(|_| unreachable!());
        let a = Money::new(1, eur()).unwrap_or_else(|_| unreachable!());
        let b = Money::new(1, usd).unwrap_or_else(|_| unreachable!());
        assert_eq!(a.checked_add(b), Err(MoneyError::CurrencyMismatch));
    }

    #[test]
    fn deserializes_only_valid_money() {
        let ok: Result<Money, _> = serde_json::from_str(r#"{"amount":1999,"currency":"EUR"}"#);
        assert_eq!(ok.map(|m| m.amount()).ok(), Some(1999));
        for bad in [
            r#"{"amount":-5,"currency":"EUR"}"#,
            r#"{"amount":19.99,"currency":"EUR"}"#,
            r#"{"amount":1,"currency":"EURO"}"#,
        ] {
            assert!(serde_json::from_str::<Money>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn addition_is_exact_or_refused(a in 0i64..=i64::MAX, b in 0i64..=i64::MAX) {
            let x = Money::new(a, eur()).unwrap_or_else(|_| unreachable!());
            let y = Money::new(b, eur()).unwrap_or_else(|_| unreachable!());
            match a.checked_add(b) {
                Some(sum) => prop_assert_eq!(x.checked_add(y).map(|m| m.amount()), Ok(sum)),
                None => prop_assert_eq!(x.checked_add(y), Err(MoneyError::Overflow)),
            }
        }

        #[test]
        fn multiplication_matches_repeated_addition(a in 0i64..1_000_000_000, q in 0u32..100) {
            let x = Money::new(a, eur()).unwrap_or_else(|_| unreachable!());
            let by_sum = Money::sum(eur(), std::iter::repeat_n(x, q as usize));
            prop_assert_eq!(x.checked_mul(q), by_sum);
        }
    }
}
