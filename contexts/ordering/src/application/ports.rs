//! Ports: persistence of carts, orders and payments, the product projection, and the
//! payment gateway.

use bus::{Causation, UnitOfWork};
use kernel::id::{OrderId, ProductId, ShipmentId, UserId};
use kernel::{Currency, Money, Timestamp};
use platform::pagination::{Page, PageRequest};

use crate::domain::pricing::{ShippingRate, TaxRate};
use crate::domain::promotion::{NotApplicable, Promotion, PromotionCode};
use crate::domain::{CancellationReason, Order, OrderStatus, PaymentKind, Settlement};
pub(crate) use catalog_contracts::TaxClass;

/// What is sold as ordering knows it (from catalog events): a variant, or a product without
/// options (its own one variant).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KnownProduct {
    /// The variant's id (for a product without options, the product's).
    pub(crate) id: ProductId,
    /// The product the variant belongs to, for a product with options.
    pub(crate) variant_of: Option<ProductId>,
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) price: Money,
    pub(crate) active: bool,
    pub(crate) revision: i64,
    pub(crate) weight_grams: u32,
    pub(crate) tax_class: TaxClass,
    /// Prices in other currencies than `price`'s.
    pub(crate) other_prices: Vec<Money>,
}

impl KnownProduct {
    /// The product this is (or is a variant of).
    pub(crate) fn product_id(&self) -> ProductId {
        self.variant_of.unwrap_or(self.id)
    }

    pub(crate) fn price_in(&self, currency: Currency) -> Option<Money> {
        std::iter::once(&self.price)
            .chain(&self.other_prices)
            .find(|m| m.currency() == currency)
            .copied()
    }

    /// The product priced in `currency` (`price` is then that price), if it has one.
    pub(crate) fn priced_in(&self, currency: Currency) -> Option<KnownProduct> {
        let price = self.price_in(currency)?;
        Some(KnownProduct {
            price,
            ..self.clone()
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CartLine {
    pub(crate) product: Option<KnownProduct>,
    pub(crate) product_id: ProductId,
    pub(crate) quantity: u32,
    /// The price when the product was put in the cart (none for lines from before it was kept).
    pub(crate) price_when_added: Option<Money>,
}

#[async_trait::async_trait]
pub(crate) trait ProductProjection: Send + Sync {
    /// Stores the snapshot if it is newer than what is known.
    async fn upsert(&self, work: &mut UnitOfWork, product: &KnownProduct) -> anyhow::Result<()>;
    async fn get(&self, id: ProductId) -> anyhow::Result<Option<KnownProduct>>;
    /// How many variants are sold of a product with options (0 for any other id).
    async fn variants_of(&self, product: ProductId) -> anyhow::Result<i64>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CartRefusal {
    /// More than 99 of one product.
    TooMany,
    /// A new product in a cart that has `MAX_CART_LINES` lines already.
    Full { lines: i64 },
}

#[async_trait::async_trait]
pub(crate) trait CartRepository: Send + Sync {
    async fn lines(&self, customer: UserId) -> anyhow::Result<Vec<CartLine>>;
    /// Adds to the quantity already there, unless the sum would pass 99 or the product would
    /// be a line too many.
    /// `price` is the product's price now, kept with a new line.
    async fn add(
        &self,
        customer: UserId,
        product: ProductId,
        quantity: u32,
        price: Money,
        now: Timestamp,
    ) -> anyhow::Result<Result<(), CartRefusal>>;
    /// `false` when the product is not in the cart.
    async fn set(
        &self,
        customer: UserId,
        product: ProductId,
        quantity: u32,
        now: Timestamp,
    ) -> anyhow::Result<bool>;
    async fn remove(&self, customer: UserId, product: ProductId) -> anyhow::Result<bool>;
    /// The cart's currency while it holds items (`None` for an empty cart, or a cart from
    /// before currencies were kept).
    async fn currency(&self, customer: UserId) -> anyhow::Result<Option<Currency>>;
    async fn set_currency(
        &self,
        customer: UserId,
        currency: Currency,
        now: Timestamp,
    ) -> anyhow::Result<()>;
}

/// A destination's tax rates per class (the zero class is always 0 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TaxRates {
    pub(crate) standard: TaxRate,
    pub(crate) reduced: TaxRate,
}

impl TaxRates {
    pub(crate) fn of(&self, class: TaxClass) -> TaxRate {
        match class {
            TaxClass::Standard => self.standard,
            TaxClass::Reduced => self.reduced,
            TaxClass::Zero => TaxRate::default(),
        }
    }
}

/// How an order to one destination, in one currency, is shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shipping {
    /// No shipping rate is set for the currency at all: shipping is free.
    Free,
    Rate(ShippingRate),
    /// Rates are set for the currency, but none for this destination.
    NotShipped,
}

/// What pricing needs to know of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DestinationRates {
    pub(crate) tax: TaxRates,
    pub(crate) shipping: Shipping,
}

#[async_trait::async_trait]
pub(crate) trait RateBook: Send + Sync {
    /// Every destination's tax rates, by country code.
    async fn tax_rates(&self) -> anyhow::Result<Vec<(String, TaxRates, Timestamp)>>;
    async fn put_tax_rates(
        &self,
        country: &str,
        rates: TaxRates,
        now: Timestamp,
    ) -> anyhow::Result<()>;
    /// `false` when the country had none.
    async fn delete_tax_rates(&self, country: &str) -> anyhow::Result<bool>;
    /// Every shipping rate, by country code and currency.
    async fn shipping_rates(
        &self,
    ) -> anyhow::Result<Vec<(String, Currency, ShippingRate, Timestamp)>>;
    async fn put_shipping_rate(
        &self,
        country: &str,
        currency: Currency,
        rate: ShippingRate,
        now: Timestamp,
    ) -> anyhow::Result<()>;
    async fn delete_shipping_rate(&self, country: &str, currency: Currency)
        -> anyhow::Result<bool>;
    async fn destination(
        &self,
        country: &str,
        currency: Currency,
    ) -> anyhow::Result<DestinationRates>;
}

#[async_trait::async_trait]
pub(crate) trait PromotionBook: Send + Sync {
    /// `false` when the code exists already.
    async fn create(&self, promotion: &Promotion) -> anyhow::Result<bool>;
    async fn get(&self, code: &PromotionCode) -> anyhow::Result<Option<Promotion>>;
    /// By code.
    async fn list(&self, page: &PageRequest) -> anyhow::Result<Page<Promotion>>;
    /// Stops the code applying (its history stays); `false` when there is no such code.
    async fn withdraw(&self, code: &PromotionCode, now: Timestamp) -> anyhow::Result<bool>;
    /// How many of the customer's orders the code discounts now.
    async fn customer_uses(&self, code: &PromotionCode, customer: UserId) -> anyhow::Result<i64>;
    async fn put_on_cart(
        &self,
        customer: UserId,
        code: &PromotionCode,
        now: Timestamp,
    ) -> anyhow::Result<()>;
    async fn on_cart(&self, customer: UserId) -> anyhow::Result<Option<PromotionCode>>;
    /// `false` when the cart had no code.
    async fn take_off_cart(&self, customer: UserId) -> anyhow::Result<bool>;
}

/// A new order, built from the cart inside the checkout transaction.
pub(crate) struct NewOrder {
    pub(crate) id: OrderId,
    pub(crate) customer_id: UserId,
    pub(crate) shipping_address: kernel::address::PostalAddress,
    pub(crate) payment_token: String,
    pub(crate) idempotency: Option<(String, String)>,
    pub(crate) now: Timestamp,
    pub(crate) deadline: Timestamp,
}

pub(crate) enum CheckoutOutcome {
    Placed(Box<Order>),
    /// The same key was used before: its order (the caller compares the request hash).
    Replayed {
        order: Box<Order>,
        request_hash: String,
    },
    CartEmpty,
    Unavailable(String),
    /// The lines cannot be priced for the destination.
    Unpriced(super::rates::Unpriced),
    /// The cart's code does not apply (any more); the cart is left as it was.
    PromotionRefused(NotApplicable),
}

/// A change the saga makes to an order, decided from its current state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Change {
    pub(crate) status: Option<OrderStatus>,
    pub(crate) reason: Option<CancellationReason>,
    pub(crate) note: Option<String>,
    /// `Some(None)` clears the deadline.
    pub(crate) deadline: Option<Option<Timestamp>>,
    pub(crate) shipment: Option<(ShipmentId, String)>,
    pub(crate) new_payment: Option<NewPayment>,
    pub(crate) payment_update: Option<Settlement>,
    /// Publish the event of the order's waiting status again (see `Order::announcement`).
    pub(crate) announce_again: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct NewPayment {
    pub(crate) id: uuid::Uuid,
    pub(crate) kind: PaymentKind,
    pub(crate) amount: Money,
    pub(crate) idempotency_key: String,
}

#[derive(Debug)]
pub(crate) enum Applied {
    Changed(Box<Order>),
    Unchanged(Box<Order>),
    Missing,
}

pub(crate) type Decide<'a> = &'a (dyn Fn(&Order) -> Option<Change> + Send + Sync);

#[async_trait::async_trait]
pub(crate) trait OrderRepository: Send + Sync {
    /// Claims the cart and places the order with the events it announces, in one
    /// transaction caused by `cause`.
    async fn checkout(
        &self,
        order: &NewOrder,
        cause: &Causation,
    ) -> anyhow::Result<CheckoutOutcome>;
    /// Reads the order (or takes it as last committed, when kept), lets `decide` choose a
    /// change, and applies it in `work` with the events the order announces for it, if the
    /// order is still at the version decided on (deciding again on the tables otherwise).
    /// `Unchanged` is always what the tables hold.
    async fn apply(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        decide: Decide<'_>,
    ) -> anyhow::Result<Applied>;
    /// The order as its tables hold it: what decisions are made on.
    async fn get(&self, id: OrderId) -> anyhow::Result<Option<Order>>;
    /// The order to show: the same as `get` as long as every change goes through this
    /// repository (which bumps the order's version), read more cheaply.
    async fn view(&self, id: OrderId) -> anyhow::Result<Option<Order>>;
    /// The customer's orders to show, newest first (as `view`).
    async fn list(&self, customer: UserId, page: &PageRequest) -> anyhow::Result<Page<Order>>;
    /// How many orders the customer has in each status.
    async fn counts(&self, customer: UserId) -> anyhow::Result<Vec<(String, i64)>>;
    /// Every customer's orders matching `filter`, newest first (as `view`): for admins.
    async fn search(&self, filter: &OrderFilter, page: &PageRequest)
        -> anyhow::Result<Page<Order>>;
    /// Orders placed since `since`: how many are in each status now, how many reached each
    /// status, and the time from placing to confirmation of the most recent ones.
    async fn summary(&self, since: Timestamp) -> anyhow::Result<OrderSummary>;
    /// Orders in a waiting state whose deadline has passed.
    async fn due(&self, now: Timestamp, limit: i64) -> anyhow::Result<Vec<OrderId>>;
    /// Cancelled orders owing a refund that is due now (first try, or a retry past its backoff).
    async fn refunds_due(&self, now: Timestamp, limit: i64) -> anyhow::Result<Vec<OrderId>>;
    /// Cancelled orders with a charge still pending, untouched since `before` (no gateway
    /// call for them can still be running).
    async fn stale_charges(&self, before: Timestamp, limit: i64) -> anyhow::Result<Vec<OrderId>>;
}

/// Which orders an admin lists. Empty fields match every order.
#[derive(Debug, Clone, Default)]
pub(crate) struct OrderFilter {
    pub(crate) status: Option<OrderStatus>,
    pub(crate) customer: Option<UserId>,
    /// Placed at or after.
    pub(crate) placed_from: Option<Timestamp>,
    /// Placed before.
    pub(crate) placed_to: Option<Timestamp>,
}

/// Orders placed in a period, as the admin overview shows them.
#[derive(Debug, Clone, Default)]
pub(crate) struct OrderSummary {
    /// Status now → orders.
    pub(crate) by_status: Vec<(OrderStatus, i64)>,
    /// Status → orders that reached it (at any time since they were placed).
    pub(crate) reached: Vec<(OrderStatus, i64)>,
    /// Microseconds from placed to confirmed, of up to the latest `SUMMARY_SAMPLE` confirmed
    /// orders, sorted.
    pub(crate) placed_to_confirmed: Vec<i64>,
}

/// How many of the latest confirmations the latency figures are taken from.
pub(crate) const SUMMARY_SAMPLE: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GatewayError {
    Declined(String),
    /// A transient failure: worth retrying.
    Unavailable(String),
}

#[async_trait::async_trait]
pub(crate) trait PaymentGateway: Send + Sync {
    /// Authorises `amount`; the same key never charges twice (the first outcome is replayed).
    async fn authorize(
        &self,
        idempotency_key: &str,
        token: &str,
        amount: Money,
    ) -> Result<String, GatewayError>;
    async fn refund(
        &self,
        idempotency_key: &str,
        charge_reference: &str,
        amount: Money,
    ) -> Result<String, GatewayError>;
}
