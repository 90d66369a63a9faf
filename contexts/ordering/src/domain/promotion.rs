//! Promotion codes: what a code takes off, and when it applies.

use kernel::{Currency, Money, Timestamp};

use super::pricing::{Discount, MAX_TAX_BPS};

/// A code as customers type it: 3 to 32 letters, digits, `-` or `_`; compared upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PromotionCode(String);

impl PromotionCode {
    pub(crate) fn parse(raw: &str) -> Result<Self, &'static str> {
        let code = raw.trim().to_ascii_uppercase();
        let ok = (3..=32).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(code))
        } else {
            Err("must be 3 to 32 letters, digits, '-' or '_'")
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a code takes off the subtotal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Benefit {
    /// Basis points of the subtotal (1..=10000).
    Percent(u32),
    /// An amount per currency; the code does not apply in other currencies.
    Fixed(Vec<Money>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Promotion {
    pub(crate) code: PromotionCode,
    pub(crate) benefit: Benefit,
    /// The smallest subtotal (as listed) per currency; none listed for a currency: no minimum.
    pub(crate) min_subtotal: Vec<Money>,
    pub(crate) starts_at: Option<Timestamp>,
    pub(crate) ends_at: Option<Timestamp>,
    /// Orders the code may discount in all; `None`: no limit.
    pub(crate) max_uses: Option<i64>,
    pub(crate) max_uses_per_customer: Option<i64>,
    /// Orders it discounts now (a cancelled order gives its use back).
    pub(crate) uses: i64,
    pub(crate) active: bool,
    pub(crate) created_at: Timestamp,
}

/// Why a code does not apply to a cart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotApplicable {
    #[error("the code {0} does not exist")]
    Unknown(String),
    #[error("the code is no longer offered")]
    Withdrawn,
    #[error("the code is valid from {0}")]
    NotYet(String),
    #[error("the code expired at {0}")]
    Expired(String),
    #[error("the code does not apply to orders in {0}")]
    Currency(Currency),
    #[error("the code needs a subtotal of at least {0}")]
    BelowMinimum(Money),
    #[error("the code has been used as often as it may be")]
    UsedUp,
    #[error("you have used the code as often as you may")]
    UsedUpByYou,
}

/// Benefit and limits, as an admin asks for them (checked by `Promotion::new`).
pub(crate) struct PromotionTerms {
    pub(crate) benefit: Benefit,
    pub(crate) min_subtotal: Vec<Money>,
    pub(crate) starts_at: Option<Timestamp>,
    pub(crate) ends_at: Option<Timestamp>,
    pub(crate) max_uses: Option<i64>,
    pub(crate) max_uses_per_customer: Option<i64>,
}

/// The largest fixed amount or minimum accepted (as for prices).
const MAX_AMOUNT: i64 = 10_000_000_000;

fn one_per_currency(list: &[Money]) -> bool {
    list.iter()
        .enumerate()
        .all(|(i, m)| list[..i].iter().all(|o| o.currency() != m.currency()))
}

impl Promotion {
    /// A new, active code with no uses; the errors name the fields.
    pub(crate) fn new(
        code: PromotionCode,
        terms: PromotionTerms,
        now: Timestamp,
    ) -> Result<Self, Vec<(&'static str, &'static str)>> {
        let mut errors = Vec::new();
        match &terms.benefit {
            Benefit::Percent(bps) if !(1..=MAX_TAX_BPS).contains(bps) => {
                errors.push(("percent_bps", "must be 1 to 10000 basis points"));
            }
            Benefit::Fixed(amounts) if amounts.is_empty() => {
                errors.push(("amounts", "name at least one amount"));
            }
            Benefit::Fixed(amounts) => {
                if !one_per_currency(amounts) {
                    errors.push(("amounts", "at most one amount per currency"));
                }
                if amounts
                    .iter()
                    .any(|m| m.amount() == 0 || m.amount() > MAX_AMOUNT)
                {
                    errors.push(("amounts", "each must be 1 to 10000000000 minor units"));
                }
            }
            Benefit::Percent(_) => {}
        }
        if !one_per_currency(&terms.min_subtotal) {
            errors.push(("min_subtotal", "at most one amount per currency"));
        }
        if terms.min_subtotal.iter().any(|m| m.amount() > MAX_AMOUNT) {
            errors.push((
                "min_subtotal",
                "each must be at most 10000000000 minor units",
            ));
        }
        if let (Some(start), Some(end)) = (terms.starts_at, terms.ends_at) {
            if end <= start {
                errors.push(("ends_at", "must be after starts_at"));
            }
        }
        for (field, limit) in [
            ("max_uses", terms.max_uses),
            ("max_uses_per_customer", terms.max_uses_per_customer),
        ] {
            if limit.is_some_and(|n| !(1..=1_000_000_000).contains(&n)) {
                errors.push((field, "must be 1 to 1000000000"));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            code,
            benefit: terms.benefit,
            min_subtotal: terms.min_subtotal,
            starts_at: terms.starts_at,
            ends_at: terms.ends_at,
            max_uses: terms.max_uses,
            max_uses_per_customer: terms.max_uses_per_customer,
            uses: 0,
            active: true,
            created_at: now,
        })
    }

    /// The discount the code gives a cart with this listed `subtotal`, at `now`, for a
    /// customer whose orders used it `customer_uses` times.
    pub(crate) fn discount_for(
        &self,
        subtotal: Money,
        now: Timestamp,
        customer_uses: i64,
    ) -> Result<Discount, NotApplicable> {
        if !self.active {
            return Err(NotApplicable::Withdrawn);
        }
        if let Some(start) = self.starts_at.filter(|s| now < *s) {
            return Err(NotApplicable::NotYet(start.to_string()));
        }
        if let Some(end) = self.ends_at.filter(|e| now >= *e) {
            return Err(NotApplicable::Expired(end.to_string()));
        }
        let currency = subtotal.currency();
        let discount = match &self.benefit {
            Benefit::Percent(bps) => Discount::Percent(*bps),
            Benefit::Fixed(amounts) => amounts
                .iter()
                .find(|m| m.currency() == currency)
                .map(|m| Discount::Fixed(m.amount()))
                .ok_or(NotApplicable::Currency(currency))?,
        };
        if let Some(min) = self
            .min_subtotal
            .iter()
            .find(|m| m.currency() == currency && m.amount() > subtotal.amount())
        {
            return Err(NotApplicable::BelowMinimum(*min));
        }
        if self.max_uses.is_some_and(|max| self.uses >= max) {
            return Err(NotApplicable::UsedUp);
        }
        if self
            .max_uses_per_customer
            .is_some_and(|max| customer_uses >= max)
        {
            return Err(NotApplicable::UsedUpByYou);
        }
        Ok(discount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount: i64) -> Money {
        Money::new(
            amount,
            Currency::parse("EUR").unwrap_or_else(|_| unreachable!()),
        )
        .unwrap_or_else(|_| unreachable!())
    }

    fn usd(amount: i64) -> Money {
        Money::new(
            amount,
            Currency::parse("USD").unwrap_or_else(|_| unreachable!()),
        )
        .unwrap_or_else(|_| unreachable!())
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_micros(secs * 1_000_000)
    }

    fn terms(benefit: Benefit) -> PromotionTerms {
        PromotionTerms {
            benefit,
            min_subtotal: vec![],
            starts_at: None,
            ends_at: None,
            max_uses: None,
            max_uses_per_customer: None,
        }
    }

    fn code(raw: &str) -> PromotionCode {
        PromotionCode::parse(raw).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn codes_are_compared_upper_case_and_checked() {
        assert_eq!(code(" summer-10 ").as_str(), "SUMMER-10");
        for bad in ["AB", "has space", "ÄBC", &"A".repeat(33)] {
            assert!(PromotionCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn terms_are_checked_field_by_field() {
        let fields = |t: PromotionTerms| {
            Promotion::new(code("X-1"), t, at(0))
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|(f, _)| f)
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(terms(Benefit::Percent(0))), vec!["percent_bps"]);
        assert_eq!(fields(terms(Benefit::Percent(10_001))), vec!["percent_bps"]);
        assert_eq!(fields(terms(Benefit::Fixed(vec![]))), vec!["amounts"]);
        assert_eq!(
            fields(terms(Benefit::Fixed(vec![eur(100), eur(200)]))),
            vec!["amounts"]
        );
        let mut t = terms(Benefit::Percent(1000));
        t.starts_at = Some(at(10));
        t.ends_at = Some(at(10));
        t.max_uses = Some(0);
        assert_eq!(fields(t), vec!["ends_at", "max_uses"]);
        assert!(fields(terms(Benefit::Fixed(vec![eur(500), usd(600)]))).is_empty());
    }

    #[test]
    fn a_code_applies_within_its_window_currency_minimum_and_limits() {
        let mut t = terms(Benefit::Fixed(vec![eur(500)]));
        t.min_subtotal = vec![eur(2000)];
        t.starts_at = Some(at(100));
        t.ends_at = Some(at(200));
        t.max_uses = Some(2);
        t.max_uses_per_customer = Some(1);
        let mut p = Promotion::new(code("FIVE-OFF"), t, at(0)).unwrap_or_else(|_| unreachable!());
        assert_eq!(
            p.discount_for(eur(2000), at(150), 0),
            Ok(Discount::Fixed(500))
        );
        assert!(matches!(
            p.discount_for(eur(2000), at(99), 0),
            Err(NotApplicable::NotYet(_))
        ));
        assert!(matches!(
            p.discount_for(eur(2000), at(200), 0),
            Err(NotApplicable::Expired(_))
        ));
        assert!(matches!(
            p.discount_for(usd(9000), at(150), 0),
            Err(NotApplicable::Currency(_))
        ));
        assert_eq!(
            p.discount_for(eur(1999), at(150), 0),
            Err(NotApplicable::BelowMinimum(eur(2000)))
        );
        assert_eq!(
            p.discount_for(eur(2000), at(150), 1),
            Err(NotApplicable::UsedUpByYou)
        );
        p.uses = 2;
        assert_eq!(
            p.discount_for(eur(2000), at(150), 0),
            Err(NotApplicable::UsedUp)
        );
        p.uses = 1;
        p.active = false;
        assert_eq!(
            p.discount_for(eur(2000), at(150), 0),
            Err(NotApplicable::Withdrawn)
        );
    }

    #[test]
    fn a_percentage_applies_in_every_currency() {
        let p = Promotion::new(code("TEN"), terms(Benefit::Percent(1000)), at(0))
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(
            p.discount_for(usd(1), at(5), 7),
            Ok(Discount::Percent(1000))
        );
    }
}
