//! The customer's cart, priced from the product projection.

use std::sync::Arc;

use kernel::id::{ProductId, UserId};
use kernel::{Clock, Currency, Money};

use super::ports::{CartLine, CartRefusal, CartRepository, KnownProduct, ProductProjection};
use super::OrderingError;
use crate::domain::Quantity;
use kernel::FieldError;

pub(crate) struct Carts {
    pub(crate) carts: Arc<dyn CartRepository>,
    pub(crate) products: Arc<dyn ProductProjection>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// The cart with current prices, in its currency.
pub(crate) struct PricedCart {
    /// Each line's product priced in the cart's currency (`None`: no price in it).
    pub(crate) lines: Vec<CartLine>,
    pub(crate) currency: Option<Currency>,
    /// `None` when the cart mixes currencies or holds an unavailable product.
    pub(crate) total: Option<Money>,
}

fn quantity(raw: i64) -> Result<Quantity, OrderingError> {
    Quantity::parse(raw)
        .map_err(|m| OrderingError::Invalid(vec![kernel::FieldError::new("quantity", m)]))
}

impl Carts {
    /// The currency the cart is priced in: the one kept for it, or (a cart from before
    /// currencies were kept) its first product's.
    pub(crate) async fn currency(
        &self,
        customer: UserId,
        lines: &[CartLine],
    ) -> Result<Option<Currency>, OrderingError> {
        let kept = self.carts.currency(customer).await?;
        Ok(kept.or_else(|| {
            lines
                .iter()
                .find_map(|l| l.product.as_ref().map(|p| p.price.currency()))
        }))
    }

    pub(crate) async fn cart(&self, customer: UserId) -> Result<PricedCart, OrderingError> {
        let lines = self.carts.lines(customer).await?;
        let currency = self.currency(customer, &lines).await?;
        Ok(priced(lines, currency))
    }

    /// What the customer asks for: the variant named, or the product sold as itself.
    async fn available(
        &self,
        product: ProductId,
        variant: Option<ProductId>,
    ) -> Result<KnownProduct, OrderingError> {
        let found = self.products.get(variant.unwrap_or(product)).await?;
        if let Some(p) = &found {
            if variant.is_some() && p.product_id() != product {
                return Err(OrderingError::Invalid(vec![FieldError::new(
                    "variant_id",
                    "not a variant of this product",
                )]));
            }
        }
        if found.is_none() && variant.is_none() && self.products.variants_of(product).await? > 0 {
            return Err(OrderingError::Invalid(vec![FieldError::new(
                "variant_id",
                "this product comes in variants: choose one (the product's variants list them)",
            )]));
        }
        match found {
            Some(p) if p.active => Ok(p),
            Some(_) => Err(OrderingError::ProductUnavailable(
                "this product is no longer sold".to_owned(),
            )),
            None => Err(OrderingError::ProductUnavailable(
                "unknown product (a product created moments ago may take a second to appear)"
                    .to_owned(),
            )),
        }
    }

    pub(crate) async fn add(
        &self,
        customer: UserId,
        product: ProductId,
        variant: Option<ProductId>,
        raw_quantity: i64,
        requested: Option<&str>,
    ) -> Result<PricedCart, OrderingError> {
        let q = quantity(raw_quantity)?;
        let requested = requested.map(Currency::parse).transpose().map_err(|e| {
            OrderingError::Invalid(vec![FieldError::new("currency", e.to_string())])
        })?;
        let known = self.available(product, variant).await?;
        let lines = self.carts.lines(customer).await?;
        let current = if lines.is_empty() {
            None
        } else {
            self.currency(customer, &lines).await?
        };
        let currency = match (current, requested) {
            (Some(c), Some(r)) if c != r => {
                return Err(OrderingError::Invalid(vec![FieldError::new(
                    "currency",
                    format!("the cart is in {c}; check it out or empty it to shop in {r}"),
                )]))
            }
            (Some(c), _) => c,
            (None, Some(r)) => r,
            (None, None) => known.price.currency(),
        };
        let Some(price) = known.price_in(currency) else {
            return Err(OrderingError::ProductUnavailable(format!(
                "{} has no price in {currency}",
                known.name
            )));
        };
        if current.is_none() {
            self.carts
                .set_currency(customer, currency, self.clock.now())
                .await?;
        }
        match self
            .carts
            .add(customer, known.id, q.get(), price, self.clock.now())
            .await?
        {
            Ok(()) => {}
            Err(CartRefusal::TooMany) => {
                return Err(OrderingError::Invalid(vec![kernel::FieldError::new(
                    "quantity",
                    "the cart can hold at most 99 of a product",
                )]))
            }
            Err(CartRefusal::Full { lines }) => {
                return Err(OrderingError::Invalid(vec![kernel::FieldError::new(
                    "product_id",
                    format!("the cart can hold at most {lines} different products"),
                )]))
            }
        }
        // Priced in the currency this addition kept or found, without reading it back.
        Ok(priced(self.carts.lines(customer).await?, Some(currency)))
    }

    pub(crate) async fn set(
        &self,
        customer: UserId,
        product: ProductId,
        raw_quantity: i64,
    ) -> Result<PricedCart, OrderingError> {
        let q = quantity(raw_quantity)?;
        if !self
            .carts
            .set(customer, product, q.get(), self.clock.now())
            .await?
        {
            return Err(OrderingError::NotInCart);
        }
        self.cart(customer).await
    }

    pub(crate) async fn remove(
        &self,
        customer: UserId,
        product: ProductId,
    ) -> Result<PricedCart, OrderingError> {
        if !self.carts.remove(customer, product).await? {
            return Err(OrderingError::NotInCart);
        }
        self.cart(customer).await
    }
}

/// The cart's lines priced in its currency.
fn priced(mut lines: Vec<CartLine>, currency: Option<Currency>) -> PricedCart {
    if let Some(currency) = currency {
        for line in &mut lines {
            // A product without a price in the cart's currency shows as unavailable.
            line.product = line.product.as_ref().and_then(|p| p.priced_in(currency));
        }
    }
    let mut total: Option<Money> = None;
    let mut priceable = true;
    for line in &lines {
        match &line.product {
            Some(p) if p.active => {
                let line_total = p.price.checked_mul(line.quantity).ok();
                total = match (total, line_total) {
                    (None, Some(t)) => Some(t),
                    (Some(acc), Some(t)) => acc.checked_add(t).ok(),
                    _ => None,
                };
                priceable &= total.is_some();
            }
            _ => priceable = false,
        }
    }
    PricedCart {
        total: if priceable { total } else { None },
        currency,
        lines,
    }
}
