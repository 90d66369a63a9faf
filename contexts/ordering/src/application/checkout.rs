//! Checkout: the cart becomes an order (prices snapshotted), honouring `Idempotency-Key`.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bus::Causation;
use kernel::address::PostalAddress;
use kernel::id::{OrderId, UserId};
use kernel::{Clock, FieldError, Timestamp};
use platform::pagination::{Page, PageRequest};
use sha2::{Digest, Sha256};

use super::ports::{CheckoutOutcome, NewOrder, OrderFilter, OrderRepository, OrderSummary};
use super::saga::Saga;
use super::OrderingError;
use crate::domain::Order;

pub(crate) struct Checkout {
    pub(crate) orders: Arc<dyn OrderRepository>,
    pub(crate) saga: Arc<Saga>,
    pub(crate) clock: Arc<dyn Clock>,
    /// How long to wait for the stock answer before asking again.
    pub(crate) stock_timeout: Duration,
}

pub(crate) struct PlaceOrder {
    pub(crate) customer: UserId,
    pub(crate) shipping_address: PostalAddress,
    pub(crate) payment_token: String,
    pub(crate) idempotency_key: Option<String>,
    /// The request body as sent, to tell a replay from a different request.
    pub(crate) request_fingerprint: String,
}

pub(crate) fn check_payment_token(token: &str) -> Result<(), FieldError> {
    let ok = (5..=200).contains(&token.len())
        && token.starts_with("tok_")
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "payment_token",
            "must be a payment token such as tok_visa",
        ))
    }
}

pub(crate) fn check_idempotency_key(key: &str) -> Result<(), FieldError> {
    let ok = (1..=200).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "Idempotency-Key",
            "must be 1 to 200 visible ASCII characters",
        ))
    }
}

impl Checkout {
    /// Places the order; the flag says whether it was new (`false`: a replay of the same key).
    #[tracing::instrument(name = "Place order", skip_all, fields(customer = %command.customer))]
    pub(crate) async fn place(
        &self,
        command: PlaceOrder,
        cause: &Causation,
    ) -> Result<(Order, bool), OrderingError> {
        let hash = URL_SAFE_NO_PAD.encode(Sha256::digest(command.request_fingerprint.as_bytes()));
        let now = self.clock.now();
        let new = NewOrder {
            id: OrderId::new(),
            customer_id: command.customer,
            shipping_address: command.shipping_address,
            payment_token: command.payment_token,
            idempotency: command.idempotency_key.map(|k| (k, hash.clone())),
            now,
            deadline: now.plus(self.stock_timeout),
        };
        match self.orders.checkout(&new, cause).await? {
            CheckoutOutcome::Placed(order) => {
                tracing::info!(order_id = %order.id, total = %order.total, "order placed");
                Ok((*order, true))
            }
            CheckoutOutcome::Replayed {
                order,
                request_hash,
            } => {
                if request_hash == hash {
                    Ok((*order, false))
                } else {
                    Err(OrderingError::IdempotencyMismatch)
                }
            }
            CheckoutOutcome::CartEmpty => Err(OrderingError::CartEmpty),
            CheckoutOutcome::Unavailable(why) => Err(OrderingError::ProductUnavailable(why)),
            CheckoutOutcome::Unpriced(why) => Err(why.into()),
            CheckoutOutcome::PromotionRefused(why) => Err(why.into()),
        }
    }

    /// The customer's own order (admins: any). Others' orders do not exist for the caller.
    pub(crate) async fn get(
        &self,
        caller: UserId,
        admin: bool,
        id: OrderId,
    ) -> Result<Order, OrderingError> {
        match self.orders.view(id).await? {
            Some(order) if admin || order.customer_id == caller => Ok(order),
            _ => Err(OrderingError::OrderNotFound),
        }
    }

    pub(crate) async fn list(
        &self,
        customer: UserId,
        page: &PageRequest,
    ) -> Result<Page<Order>, OrderingError> {
        Ok(self.orders.list(customer, page).await?)
    }

    /// Every customer's orders matching `filter`, newest first (admins).
    pub(crate) async fn search(
        &self,
        filter: &OrderFilter,
        page: &PageRequest,
    ) -> Result<Page<Order>, OrderingError> {
        Ok(self.orders.search(filter, page).await?)
    }

    /// Orders placed since `since`, counted and timed (admins).
    pub(crate) async fn summary(&self, since: Timestamp) -> Result<OrderSummary, OrderingError> {
        Ok(self.orders.summary(since).await?)
    }

    /// How many orders the customer has in each status (for services, e.g. a dashboard).
    pub(crate) async fn counts(
        &self,
        customer: UserId,
    ) -> Result<Vec<(String, i64)>, OrderingError> {
        Ok(self.orders.counts(customer).await?)
    }

    pub(crate) async fn cancel(
        &self,
        caller: UserId,
        admin: bool,
        id: OrderId,
        cause: &Causation,
    ) -> Result<Order, OrderingError> {
        self.get(caller, admin, id).await?;
        self.saga.cancel_by_customer(id, cause).await
    }
}
