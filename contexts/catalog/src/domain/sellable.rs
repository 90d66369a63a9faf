//! What a product and each of its variants share as things that are sold: the SKU rule, the
//! price and weight limits, and prices in other currencies.

use kernel::Money;

/// The largest price accepted (10 billion minor units), so order totals cannot overflow.
pub(crate) const MAX_PRICE: i64 = 10_000_000_000;

/// The heaviest unit accepted: one tonne.
pub(crate) const MAX_WEIGHT_GRAMS: u32 = 1_000_000;

/// Stock keeping unit: 1..=64 of A-Z, 0-9, `-`, `_`, `.`; stored upper-case, unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sku(String);

impl Sku {
    pub(crate) fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim().to_ascii_uppercase();
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if ok {
            Ok(Self(s))
        } else {
            Err("must be 1 to 64 letters, digits, '-', '_' or '.'")
        }
    }
}

impl AsRef<str> for Sku {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Checks prices in other currencies than the default's: at most `MAX_PRICE`, one per
/// currency; sorted by currency code.
pub(crate) fn other_prices(
    default: &Money,
    mut others: Vec<Money>,
) -> Result<Vec<Money>, &'static str> {
    if others.len() > 20 {
        return Err("at most 20 other currencies");
    }
    others.sort_by(|a, b| a.currency().as_str().cmp(b.currency().as_str()));
    if others.iter().any(|m| m.amount() > MAX_PRICE) {
        return Err("each amount must be at most 10000000000");
    }
    if others.iter().any(|m| m.currency() == default.currency())
        || others
            .windows(2)
            .any(|w| w[0].currency() == w[1].currency())
    {
        return Err("one price per currency, and not the default price's currency");
    }
    Ok(others)
}
