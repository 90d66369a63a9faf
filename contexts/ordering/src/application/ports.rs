//! Ports: persistence of carts, orders and payments, the product projection, and the
//! payment gateway.

use bus::UnitOfWork;
use kernel::address::PostalAddress;
use kernel::id::{OrderId, ProductId, UserId};
use kernel::{Currency, Money, Timestamp};
use platform::pagination::{Page, PageRequest};

use crate::domain::cart::{Cart, CodeUse};
pub(crate) use crate::domain::cart::{CartLine, KnownProduct};
use crate::domain::pricing::ShippingRate;
pub(crate) use crate::domain::pricing::{DestinationRates, Shipping, TaxRates};
use crate::domain::promotion::{Promotion, PromotionCode};
pub(crate) use crate::domain::{Change, GatewayError};
use crate::domain::{Order, OrderStatus};
pub(crate) use catalog_contracts::TaxClass;

#[async_trait::async_trait]
pub(crate) trait ProductProjection: Send + Sync {
    /// Stores the snapshot if it is newer than what is known.
    async fn upsert(&self, work: &mut UnitOfWork, product: &KnownProduct) -> anyhow::Result<()>;
    async fn get(&self, id: ProductId) -> anyhow::Result<Option<KnownProduct>>;
    /// How many variants are sold of a product with options (0 for any other id).
    async fn variants_of(&self, product: ProductId) -> anyhow::Result<i64>;
}

/// What ordering knows of identity's customers, kept from identity's events.
#[async_trait::async_trait]
pub(crate) trait CustomerBook: Send + Sync {
    /// Records that `customer` proved `email` at `at` (older news than what is kept is
    /// ignored).
    async fn record_verified(
        &self,
        work: &mut UnitOfWork,
        customer: UserId,
        email: &str,
        at: Timestamp,
    ) -> anyhow::Result<()>;
    /// Whether the customer's email address is known to be verified, as the unit reads it.
    async fn verified_in(&self, work: &mut UnitOfWork, customer: UserId) -> anyhow::Result<bool>;
    /// Replaces the customer's address book with `addresses` (id, address) when `revision` is
    /// newer than the one kept.
    async fn replace_addresses(
        &self,
        work: &mut UnitOfWork,
        customer: UserId,
        revision: u64,
        addresses: &[(String, PostalAddress, bool)],
        at: Timestamp,
    ) -> anyhow::Result<()>;
    /// A saved address of the customer's, as the unit reads it.
    async fn address_in(
        &self,
        work: &mut UnitOfWork,
        customer: UserId,
        address_id: &str,
    ) -> anyhow::Result<Option<PostalAddress>>;
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
    /// Empties the cart in `work` and returns what it held (lines with their products as
    /// `work` reads them, currency, code): a concurrent checkout of the same cart finds it
    /// empty.
    async fn claim(&self, work: &mut UnitOfWork, customer: UserId) -> anyhow::Result<Cart>;
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
    /// As `destination`, read in `work`.
    async fn destination_in(
        &self,
        work: &mut UnitOfWork,
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
    /// The code's standing for the customer, read in `work`.
    async fn code_use(
        &self,
        work: &mut UnitOfWork,
        code: &PromotionCode,
        customer: UserId,
    ) -> anyhow::Result<CodeUse>;
    /// Takes one use of the code for `order` in `work` and takes it off the cart, unless it
    /// is withdrawn or used up (`false`): the limit holds however many checkouts race for
    /// the last use.
    async fn take_use(
        &self,
        work: &mut UnitOfWork,
        code: &PromotionCode,
        order: OrderId,
        customer: UserId,
        now: Timestamp,
    ) -> anyhow::Result<bool>;
}

/// The request a checkout's `Idempotency-Key` stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Idempotency {
    pub(crate) key: String,
    /// Of the request body, to tell a replay from a different request with the same key.
    pub(crate) request_hash: String,
}

/// A new order's row, or the key it was placed with already taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    Stored,
    /// Another checkout with the same key committed first: this unit must be given up (its
    /// transaction may be aborted), and that order read as the answer.
    KeyTaken,
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
    /// The order the customer placed with this key, and the hash of its request, as `work`
    /// reads them.
    async fn replayed_in(
        &self,
        work: &mut UnitOfWork,
        customer: UserId,
        key: &str,
    ) -> anyhow::Result<Option<(Order, String)>>;
    /// As `replayed_in`, outside any unit (after a lost race for the key).
    async fn replayed(
        &self,
        customer: UserId,
        key: &str,
    ) -> anyhow::Result<Option<(Order, String)>>;
    /// Stores a newly placed order in `work` (the events are the caller's to publish).
    async fn insert(
        &self,
        work: &mut UnitOfWork,
        order: &Order,
        idempotency: Option<&Idempotency>,
    ) -> anyhow::Result<Inserted>;
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
    /// Orders owing a refund that is due now: a cancelled one not wholly refunded, or a pending
    /// refund never tried or past its backoff.
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

/// Guests: visitors who shop with a cart token instead of an account.
#[async_trait::async_trait]
pub(crate) trait GuestBook: Send + Sync {
    /// Opens a guest cart: `token_hash` identifies it until `expires_at`.
    async fn open(
        &self,
        token_hash: &str,
        guest: UserId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> anyhow::Result<()>;
    /// The guest whose cart `token_hash` opens, unless it has expired by `now`.
    async fn guest(&self, token_hash: &str, now: Timestamp) -> anyhow::Result<Option<UserId>>;
    /// Keeps, in `work`, who to mail about a guest's order and the hash of its order token.
    async fn record_order_in(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        guest: UserId,
        email: &str,
        token_hash: &str,
        at: Timestamp,
    ) -> anyhow::Result<()>;
    /// The guest and the order token's hash of a guest's order.
    async fn order(&self, order: OrderId) -> anyhow::Result<Option<(UserId, String)>>;
    /// Deletes guest carts expired by `now` (at most `limit`) with what they held; how many.
    async fn sweep(&self, now: Timestamp, limit: i64) -> anyhow::Result<u64>;
}

/// Provider events taken, and the provider's view of the shop's charges.
#[async_trait::async_trait]
pub(crate) trait ProviderEventBook: Send + Sync {
    /// Records the event in the unit; `false` when it was taken before.
    async fn record_in(
        &self,
        work: &mut UnitOfWork,
        provider: &str,
        event: &crate::domain::ProviderEvent,
        at: Timestamp,
    ) -> anyhow::Result<bool>;
    /// Sets the provider's state of the charge with `reference`; how many charges it named.
    async fn set_provider_status_in(
        &self,
        work: &mut UnitOfWork,
        reference: &str,
        status: &str,
    ) -> anyhow::Result<u64>;
}
