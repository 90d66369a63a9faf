//! Checkout: the cart becomes an order (prices snapshotted), honouring `Idempotency-Key`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bus::{Causation, Units};
use kernel::address::PostalAddress;
use kernel::id::{OrderId, UserId};
use kernel::{Clock, FieldError, Timestamp};
use platform::pagination::{Page, PageRequest};
use sha2::{Digest, Sha256};

use super::guests::{order_token, promotion_holder};
use super::ports::{
    CartRepository, CustomerBook, GuestBook, Idempotency, Inserted, OrderFilter, OrderRepository,
    OrderSummary, PromotionBook, RateBook,
};
use super::saga::Saga;
use super::{publish, OrderingError};
use crate::domain::cart::Terms;
use crate::domain::promotion::NotApplicable;
use crate::domain::{Order, Placing, RefundRequest};

pub(crate) struct Checkout {
    pub(crate) units: Arc<dyn Units>,
    pub(crate) orders: Arc<dyn OrderRepository>,
    pub(crate) carts: Arc<dyn CartRepository>,
    pub(crate) rates: Arc<dyn RateBook>,
    pub(crate) promotions: Arc<dyn PromotionBook>,
    pub(crate) customers: Arc<dyn CustomerBook>,
    pub(crate) guests: Arc<dyn GuestBook>,
    pub(crate) saga: Arc<Saga>,
    pub(crate) clock: Arc<dyn Clock>,
    /// How long to wait for the stock answer before asking again.
    pub(crate) stock_timeout: Duration,
    /// Listed prices include tax (`EMPORIUM_PRICES_INCLUDE_TAX`).
    pub(crate) prices_include_tax: bool,
    /// Only customers whose email address identity has verified may place orders
    /// (`EMPORIUM_REQUIRE_VERIFIED_EMAIL`).
    pub(crate) require_verified_email: bool,
    /// How long after delivery a customer may ask for a return (`EMPORIUM_RETURN_WINDOW_DAYS`).
    pub(crate) return_window: Duration,
}

/// Where the order goes.
pub(crate) enum Destination {
    Given(PostalAddress),
    /// An address of the customer's address book, by id (ordering's copy of it).
    Saved(String),
}

/// A guest's checkout: where to mail them, and the cart token that opened the cart (from
/// which the order token is derived).
pub(crate) struct GuestContact {
    pub(crate) email: kernel::EmailAddress,
    pub(crate) cart_token: String,
}

pub(crate) struct PlaceOrder {
    /// The customer, or the guest the cart token stands for.
    pub(crate) customer: UserId,
    /// Set for a guest's checkout.
    pub(crate) guest: Option<GuestContact>,
    pub(crate) destination: Destination,
    pub(crate) payment_token: String,
    pub(crate) idempotency_key: Option<String>,
    /// The request body as sent, to tell a replay from a different request.
    pub(crate) request_fingerprint: String,
}

pub(crate) fn check_payment_token(token: &str) -> Result<(), FieldError> {
    let ok = (5..=200).contains(&token.len())
        && (token.starts_with("tok_") || token.starts_with("pm_"))
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "payment_token",
            "must be a payment token (tok_…) or payment method (pm_…), such as tok_visa",
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

/// The order a key was used for, if the request is the same (its hash); a different
/// request with a used key is refused.
fn replayed(
    (order, hash): (Order, String),
    request_hash: &str,
) -> Result<(Order, bool), OrderingError> {
    if hash == request_hash {
        Ok((order, false))
    } else {
        Err(OrderingError::IdempotencyMismatch)
    }
}

impl Checkout {
    /// Places the order; the flag says whether it was new (`false`: a replay of the same key).
    /// One unit of work: the replay check, the claimed cart, the rates and the code as that
    /// transaction reads them, the order the domain places from them, the code's use, and
    /// the events the order announces.
    #[tracing::instrument(name = "Place order", skip_all, fields(customer = %command.customer))]
    pub(crate) async fn place(
        &self,
        command: PlaceOrder,
        cause: &Causation,
    ) -> Result<(Order, bool), OrderingError> {
        let request_hash =
            URL_SAFE_NO_PAD.encode(Sha256::digest(command.request_fingerprint.as_bytes()));
        let idempotency = command.idempotency_key.map(|key| Idempotency {
            key,
            request_hash: request_hash.clone(),
        });
        let customer = command.customer;
        let now = self.clock.now();
        let mut work = self.units.begin(cause.clone()).await?;
        if let Some(i) = &idempotency {
            if let Some(replay) = self.orders.replayed_in(&mut work, customer, &i.key).await? {
                return replayed(replay, &request_hash);
            }
        }
        // A guest has no account to verify; the setting is about accounts
        // (docs/decisions/0054-a-guest-is-a-customer-id-behind.md).
        if command.guest.is_none()
            && self.require_verified_email
            && !self.customers.verified_in(&mut work, customer).await?
        {
            return Err(OrderingError::EmailUnverified);
        }
        let shipping_address = match command.destination {
            Destination::Given(address) => address,
            Destination::Saved(id) => self
                .customers
                .address_in(&mut work, customer, &id)
                .await?
                .ok_or_else(|| {
                    OrderingError::Invalid(vec![FieldError::new(
                        "shipping_address_id",
                        "is not an address in your address book (one saved a moment ago may not be known here yet)",
                    )])
                })?,
        };
        let cart = self.carts.claim(&mut work, customer).await?;
        if cart.lines.is_empty() {
            // A concurrent checkout with the same key may have claimed the cart and
            // committed while this one waited on its rows: that order is this answer.
            if let Some(i) = &idempotency {
                if let Some(replay) = self.orders.replayed_in(&mut work, customer, &i.key).await? {
                    return replayed(replay, &request_hash);
                }
            }
            return Err(OrderingError::CartEmpty);
        }
        let cart = cart.sellable()?;
        let country = shipping_address.country.clone();
        let rates = self
            .rates
            .destination_in(&mut work, &country, cart.currency())
            .await?;
        let code = cart.code().cloned();
        // A guest's uses of a code count by email address, not by cart.
        let holder = command
            .guest
            .as_ref()
            .map_or(customer, |g| promotion_holder(&g.email));
        let code_use = match &code {
            Some(code) => Some(self.promotions.code_use(&mut work, code, holder).await?),
            None => None,
        };
        let placing = Placing {
            id: OrderId::new(),
            customer_id: customer,
            shipping_address,
            payment_token: command.payment_token,
            now,
            deadline: now.plus(self.stock_timeout),
        };
        let terms = Terms {
            country,
            rates,
            code: code_use,
            now,
            prices_include_tax: self.prices_include_tax,
        };
        // A code that no longer applies refuses the checkout; the unit is dropped, so the
        // cart stays as it was (docs/decisions/0044-an-order-s-total-is-priced-in-one.md).
        let (order, events) = Order::place(placing, cart, terms)?;
        if self
            .orders
            .insert(&mut work, &order, idempotency.as_ref())
            .await?
            == Inserted::KeyTaken
        {
            drop(work);
            let key = idempotency
                .as_ref()
                .map(|i| i.key.as_str())
                .unwrap_or_default();
            let replay = self
                .orders
                .replayed(customer, key)
                .await?
                .ok_or_else(|| anyhow::anyhow!("idempotent order not found after a race"))?;
            return replayed(replay, &request_hash);
        }
        if let Some(code) = code.filter(|_| order.promotion_code.is_some()) {
            if !self
                .promotions
                .take_use(&mut work, &code, order.id, holder, now)
                .await?
            {
                return Err(NotApplicable::UsedUp.into());
            }
        }
        publish(&mut work, events, order.updated_at)?;
        if let Some(guest) = &command.guest {
            let token = order_token(&guest.cart_token, order.id);
            self.guests
                .record_order_in(
                    &mut work,
                    order.id,
                    customer,
                    guest.email.as_ref(),
                    &platform::secret::hash_secret(&token),
                    now,
                )
                .await?;
            let checked_out = ordering_contracts::GuestCheckedOut {
                order_id: order.id,
                guest_id: customer,
                email: guest.email.to_string(),
                name: order.shipping_address.name.clone(),
                order_token: token,
                placed_at: now,
            };
            work.publish(&checked_out, order.updated_at)?;
        }
        work.commit().await.context("cannot commit order")?;
        tracing::info!(order_id = %order.id, total = %order.total, "order placed");
        Ok((order, true))
    }

    /// The customer's own order (admins: any). Others' orders do not exist for the caller.
    pub(crate) async fn get(
        &self,
        caller: UserId,
        admin: bool,
        id: OrderId,
    ) -> Result<Order, OrderingError> {
        match self.orders.view(id).await? {
            Some(order) if order.is_visible_to(caller, admin) => Ok(order),
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

    /// Gives back part of an order's charge (admins), at most what is still refundable.
    pub(crate) async fn refund(
        &self,
        id: OrderId,
        request: RefundRequest,
        cause: &Causation,
    ) -> Result<(Order, uuid::Uuid), OrderingError> {
        self.saga.grant_refund(id, request, cause).await
    }
}
