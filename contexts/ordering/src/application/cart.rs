//! The customer's cart, priced from the product projection.

use std::sync::Arc;

use kernel::id::{ProductId, UserId};
use kernel::{Clock, Money};

use super::ports::{CartLine, CartRefusal, CartRepository, ProductProjection};
use super::OrderingError;
use crate::domain::Quantity;

pub(crate) struct Carts {
    pub(crate) carts: Arc<dyn CartRepository>,
    pub(crate) products: Arc<dyn ProductProjection>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// The cart with current prices.
pub(crate) struct PricedCart {
    pub(crate) lines: Vec<CartLine>,
    /// `None` when the cart mixes currencies or holds an unavailable product.
    pub(crate) total: Option<Money>,
}

fn quantity(raw: i64) -> Result<Quantity, OrderingError> {
    Quantity::parse(raw)
        .map_err(|m| OrderingError::Invalid(vec![kernel::FieldError::new("quantity", m)]))
}

impl Carts {
    pub(crate) async fn cart(&self, customer: UserId) -> Result<PricedCart, OrderingError> {
        let lines = self.carts.lines(customer).await?;
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
        Ok(PricedCart {
            total: if priceable { total } else { None },
            lines,
        })
    }

    async fn available(&self, product: ProductId) -> Result<(), OrderingError> {
        match self.products.get(product).await? {
            Some(p) if p.active => Ok(()),
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
        raw_quantity: i64,
    ) -> Result<PricedCart, OrderingError> {
        let q = quantity(raw_quantity)?;
        self.available(product).await?;
        match self
            .carts
            .add(customer, product, q.get(), self.clock.now())
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
        self.cart(customer).await
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
