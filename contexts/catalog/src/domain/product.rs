use kernel::id::{CategoryId, ProductId};
use kernel::{Money, Timestamp};

use super::sellable::Sku;
use super::variant::Variant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProductName(String);

impl ProductName {
    pub(crate) fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim();
        if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
            return Err("must be 1 to 200 characters without control characters");
        }
        Ok(Self(s.to_owned()))
    }
}

impl AsRef<str> for ProductName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Description(String);

impl Description {
    pub(crate) fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim();
        if s.chars().count() > 5000 {
            return Err("must be at most 5000 characters");
        }
        Ok(Self(s.to_owned()))
    }
}

impl AsRef<str> for Description {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProductStatus {
    Active,
    Archived,
}

impl ProductStatus {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }

    pub(crate) fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Self::Active),
            "archived" => Some(Self::Archived),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Product {
    pub(crate) id: ProductId,
    pub(crate) sku: Sku,
    pub(crate) name: ProductName,
    pub(crate) description: Option<Description>,
    pub(crate) price: Money,
    /// Prices in other currencies than `price`'s, one per currency, by currency code.
    pub(crate) other_prices: Vec<Money>,
    pub(crate) category_id: Option<CategoryId>,
    /// Shipping weight of one unit.
    pub(crate) weight_grams: u32,
    pub(crate) tax_class: catalog_contracts::TaxClass,
    /// The options it comes in; empty for a product sold as itself (its one variant).
    pub(crate) options: Vec<catalog_contracts::ProductOption>,
    /// The variants sold when it has options (then `sku` is the product's base SKU, `price`
    /// the lowest variant price, and `other_prices` and `weight_grams` the variants'
    /// defaults); empty without options.
    pub(crate) variants: Vec<Variant>,
    pub(crate) status: ProductStatus,
    /// Bumped on every change; the ETag and the projection's ordering key.
    pub(crate) revision: i64,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl Product {
    /// The product archived (hidden from browsing, kept for orders and links); `None` when
    /// it is archived already.
    pub(crate) fn archived(&self) -> Option<Product> {
        (self.status != ProductStatus::Archived).then(|| Product {
            status: ProductStatus::Archived,
            ..self.clone()
        })
    }

    /// What is sold: its variants, or the product itself as its one variant.
    pub(crate) fn sold(&self) -> Vec<Variant> {
        if !self.variants.is_empty() {
            return self.variants.clone();
        }
        vec![Variant {
            id: self.id,
            sku: self.sku.clone(),
            options: Vec::new(),
            price: self.price,
            other_prices: self.other_prices.clone(),
            weight_grams: self.weight_grams,
        }]
    }

    pub(crate) fn has_variants(&self) -> bool {
        !self.variants.is_empty()
    }

    /// The lowest and highest price of what is sold, in the product's currency.
    pub(crate) fn price_range(&self) -> (Money, Money) {
        let amounts = self.variants.iter().map(|v| v.price);
        let min = amounts
            .clone()
            .min_by_key(Money::amount)
            .unwrap_or(self.price);
        let max = amounts.max_by_key(Money::amount).unwrap_or(self.price);
        (min, max)
    }

    /// Keeps `price` at the lowest variant price (browsing sorts by it).
    pub(crate) fn refresh_price(&mut self) {
        if self.has_variants() {
            self.price = self.price_range().0;
        }
    }

    /// The text the `q` search looks in.
    pub(crate) fn search_text(&self) -> String {
        let mut text = self.name.as_ref().to_lowercase();
        if let Some(d) = &self.description {
            text.push(' ');
            text.push_str(&d.as_ref().to_lowercase());
        }
        text
    }

    pub(crate) fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_normalised_and_checked() {
        assert_eq!(
            Sku::parse(" mug-01 ").map(|s| s.as_ref().to_owned()),
            Ok("MUG-01".to_owned())
        );
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse("has space").is_err());
        assert!(Sku::parse(&"A".repeat(65)).is_err());
    }
}
