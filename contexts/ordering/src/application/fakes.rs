//! In-memory fakes of ordering's ports, for tests of the use cases without a database. Each
//! fake changes its state only when the unit of work it was given commits (as a database
//! would), so a use case that gives up leaves them as they were.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bus::UnitOfWork;
use kernel::address::PostalAddress;
use kernel::id::{OrderId, ProductId, UserId};
use kernel::{Currency, Money, Timestamp};
use platform::pagination::{Page, PageRequest};

use super::ports::{
    Applied, CartRefusal, CartRepository, CustomerBook, Decide, GatewayError, GuestBook,
    Idempotency, Inserted, OrderFilter, OrderRepository, OrderSummary, PaymentGateway,
    PromotionBook, RateBook,
};
use super::publish;
use crate::domain::cart::{Cart, CartLine, CodeUse, KnownProduct};
use crate::domain::pricing::{DestinationRates, ShippingRate, TaxRates};
use crate::domain::promotion::{Promotion, PromotionCode};
use crate::domain::{Order, OrderStatus, PaymentKind, PaymentStatus};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unused<T>(what: &str) -> anyhow::Result<T> {
    anyhow::bail!("{what} is not part of the use cases these fakes serve")
}

/// A placing's idempotency key: who placed it and the key they sent.
type PlacingKey = (UserId, String);

/// Orders by id, with the keys they were placed with.
#[derive(Default)]
pub(crate) struct FakeOrders {
    orders: Arc<Mutex<HashMap<OrderId, Order>>>,
    keys: Arc<Mutex<HashMap<PlacingKey, (OrderId, String)>>>,
}

impl FakeOrders {
    pub(crate) fn stored(&self, id: OrderId) -> Option<Order> {
        lock(&self.orders).get(&id).cloned()
    }

    pub(crate) fn count(&self) -> usize {
        lock(&self.orders).len()
    }

    fn replay(&self, customer: UserId, key: &str) -> Option<(Order, String)> {
        let keys = lock(&self.keys);
        let (id, hash) = keys.get(&(customer, key.to_owned()))?;
        Some((lock(&self.orders).get(id)?.clone(), hash.clone()))
    }
}

#[async_trait::async_trait]
impl OrderRepository for FakeOrders {
    async fn replayed_in(
        &self,
        _work: &mut UnitOfWork,
        customer: UserId,
        key: &str,
    ) -> anyhow::Result<Option<(Order, String)>> {
        Ok(self.replay(customer, key))
    }

    async fn replayed(
        &self,
        customer: UserId,
        key: &str,
    ) -> anyhow::Result<Option<(Order, String)>> {
        Ok(self.replay(customer, key))
    }

    async fn insert(
        &self,
        work: &mut UnitOfWork,
        order: &Order,
        idempotency: Option<&Idempotency>,
    ) -> anyhow::Result<Inserted> {
        if let Some(i) = idempotency {
            if lock(&self.keys).contains_key(&(order.customer_id, i.key.clone())) {
                return Ok(Inserted::KeyTaken);
            }
        }
        let (orders, keys, order) = (self.orders.clone(), self.keys.clone(), order.clone());
        let key = idempotency.map(|i| ((order.customer_id, i.key.clone()), i.request_hash.clone()));
        work.after_commit(move || {
            if let Some((key, hash)) = key {
                lock(&keys).insert(key, (order.id, hash));
            }
            lock(&orders).insert(order.id, order);
        });
        Ok(Inserted::Stored)
    }

    async fn apply(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        decide: Decide<'_>,
    ) -> anyhow::Result<Applied> {
        let Some(before) = self.stored(order) else {
            return Ok(Applied::Missing);
        };
        let Some(change) = decide(&before) else {
            return Ok(Applied::Unchanged(Box::new(before)));
        };
        let Some((_, after)) = before.changed(&change, Timestamp::now()) else {
            return Ok(Applied::Unchanged(Box::new(before)));
        };
        let mut events = after.events_since(&before);
        if change.announce_again {
            events.extend(after.announcement());
        }
        publish(work, events, after.updated_at)?;
        let (orders, stored) = (self.orders.clone(), after.clone());
        work.after_commit(move || {
            lock(&orders).insert(stored.id, stored);
        });
        Ok(Applied::Changed(Box::new(after)))
    }

    async fn get(&self, id: OrderId) -> anyhow::Result<Option<Order>> {
        Ok(self.stored(id))
    }

    async fn view(&self, id: OrderId) -> anyhow::Result<Option<Order>> {
        Ok(self.stored(id))
    }

    async fn list(&self, customer: UserId, page: &PageRequest) -> anyhow::Result<Page<Order>> {
        let mut mine: Vec<Order> = lock(&self.orders)
            .values()
            .filter(|o| o.customer_id == customer)
            .cloned()
            .collect();
        mine.sort_by_key(|o| std::cmp::Reverse(o.id.to_string()));
        Ok(page.finish(mine, |o| vec![o.id.to_string()]))
    }

    async fn counts(&self, _customer: UserId) -> anyhow::Result<Vec<(String, i64)>> {
        unused("counting orders")
    }

    async fn search(&self, _: &OrderFilter, _: &PageRequest) -> anyhow::Result<Page<Order>> {
        unused("searching orders")
    }

    async fn summary(&self, _since: Timestamp) -> anyhow::Result<OrderSummary> {
        unused("the order summary")
    }

    async fn due(&self, now: Timestamp, _limit: i64) -> anyhow::Result<Vec<OrderId>> {
        Ok(lock(&self.orders)
            .values()
            .filter(|o| o.deadline_at.is_some_and(|d| d < now))
            .map(|o| o.id)
            .collect())
    }

    async fn refunds_due(&self, _now: Timestamp, _limit: i64) -> anyhow::Result<Vec<OrderId>> {
        Ok(lock(&self.orders)
            .values()
            .filter(|o| o.refund_outstanding())
            .map(|o| o.id)
            .collect())
    }

    async fn stale_charges(&self, before: Timestamp, _limit: i64) -> anyhow::Result<Vec<OrderId>> {
        Ok(lock(&self.orders)
            .values()
            .filter(|o| {
                o.status == OrderStatus::Cancelled
                    && o.payments.iter().any(|p| {
                        p.kind == PaymentKind::Charge
                            && p.status == PaymentStatus::Pending
                            && p.updated_at < before
                    })
            })
            .map(|o| o.id)
            .collect())
    }
}

/// Carts by customer; products as ordering knows them.
#[derive(Default)]
pub(crate) struct FakeCarts {
    carts: Arc<Mutex<HashMap<UserId, Cart>>>,
    products: Mutex<HashMap<ProductId, KnownProduct>>,
}

impl FakeCarts {
    pub(crate) fn know(&self, product: KnownProduct) {
        lock(&self.products).insert(product.id, product);
    }

    /// Puts `quantity` of a known product in the cart (in its currency).
    pub(crate) fn put(&self, customer: UserId, product: ProductId, quantity: u32) {
        let known = lock(&self.products).get(&product).cloned();
        let mut carts = lock(&self.carts);
        let cart = carts.entry(customer).or_default();
        cart.currency = cart
            .currency
            .or_else(|| known.as_ref().map(|p| p.price.currency()));
        cart.lines.push(CartLine {
            price_when_added: known.as_ref().map(|p| p.price),
            product: known,
            product_id: product,
            quantity,
        });
    }

    pub(crate) fn put_code(&self, customer: UserId, code: &str) {
        let code = PromotionCode::parse(code).unwrap_or_else(|e| panic!("{e}"));
        lock(&self.carts).entry(customer).or_default().code = Some(code);
    }

    pub(crate) fn held(&self, customer: UserId) -> usize {
        lock(&self.carts)
            .get(&customer)
            .map_or(0, |c| c.lines.len())
    }
}

#[async_trait::async_trait]
impl CartRepository for FakeCarts {
    async fn lines(&self, customer: UserId) -> anyhow::Result<Vec<CartLine>> {
        Ok(lock(&self.carts)
            .get(&customer)
            .map(|c| c.lines.clone())
            .unwrap_or_default())
    }

    async fn claim(&self, work: &mut UnitOfWork, customer: UserId) -> anyhow::Result<Cart> {
        let cart = lock(&self.carts)
            .get(&customer)
            .cloned()
            .unwrap_or_default();
        let carts = self.carts.clone();
        work.after_commit(move || {
            if let Some(c) = lock(&carts).get_mut(&customer) {
                c.lines.clear();
            }
        });
        Ok(cart)
    }

    async fn add(
        &self,
        customer: UserId,
        product: ProductId,
        quantity: u32,
        _price: Money,
        _now: Timestamp,
    ) -> anyhow::Result<Result<(), CartRefusal>> {
        self.put(customer, product, quantity);
        Ok(Ok(()))
    }

    async fn set(&self, _: UserId, _: ProductId, _: u32, _: Timestamp) -> anyhow::Result<bool> {
        unused("changing a quantity")
    }

    async fn remove(&self, _: UserId, _: ProductId) -> anyhow::Result<bool> {
        unused("removing a line")
    }

    async fn currency(&self, customer: UserId) -> anyhow::Result<Option<Currency>> {
        Ok(lock(&self.carts)
            .get(&customer)
            .filter(|c| !c.lines.is_empty())
            .and_then(|c| c.currency))
    }

    async fn set_currency(&self, _: UserId, _: Currency, _: Timestamp) -> anyhow::Result<()> {
        unused("choosing a currency")
    }
}

/// The customers known to have a verified email address, and their saved addresses.
#[derive(Default)]
pub(crate) struct FakeCustomers {
    verified: Arc<Mutex<HashSet<UserId>>>,
    addresses: Arc<Mutex<HashMap<(UserId, String), PostalAddress>>>,
}

#[async_trait::async_trait]
impl CustomerBook for FakeCustomers {
    async fn record_verified(
        &self,
        work: &mut UnitOfWork,
        customer: UserId,
        _: &str,
        _: Timestamp,
    ) -> anyhow::Result<()> {
        let verified = self.verified.clone();
        work.after_commit(move || {
            lock(&verified).insert(customer);
        });
        Ok(())
    }

    async fn verified_in(&self, _: &mut UnitOfWork, customer: UserId) -> anyhow::Result<bool> {
        Ok(lock(&self.verified).contains(&customer))
    }

    async fn replace_addresses(
        &self,
        work: &mut UnitOfWork,
        customer: UserId,
        _: u64,
        addresses: &[(String, PostalAddress, bool)],
        _: Timestamp,
    ) -> anyhow::Result<()> {
        let (kept, given) = (self.addresses.clone(), addresses.to_vec());
        work.after_commit(move || {
            let mut kept = lock(&kept);
            kept.retain(|(c, _), _| *c != customer);
            for (id, address, _) in given {
                kept.insert((customer, id), address);
            }
        });
        Ok(())
    }

    async fn address_in(
        &self,
        _: &mut UnitOfWork,
        customer: UserId,
        address_id: &str,
    ) -> anyhow::Result<Option<PostalAddress>> {
        Ok(lock(&self.addresses)
            .get(&(customer, address_id.to_owned()))
            .cloned())
    }
}

/// A guest order as kept: the guest, the email address, the order token's hash.
type GuestOrder = (UserId, String, String);

/// Guest carts by token hash (guest, expiry) and guest orders.
#[derive(Default)]
pub(crate) struct FakeGuests {
    carts: Mutex<HashMap<String, (UserId, Timestamp)>>,
    orders: Arc<Mutex<HashMap<OrderId, GuestOrder>>>,
}

impl FakeGuests {
    /// The email a guest order is to be mailed to.
    pub(crate) fn email_of(&self, order: OrderId) -> Option<String> {
        lock(&self.orders)
            .get(&order)
            .map(|(_, email, _)| email.clone())
    }
}

#[async_trait::async_trait]
impl GuestBook for FakeGuests {
    async fn open(
        &self,
        token_hash: &str,
        guest: UserId,
        _: Timestamp,
        expires_at: Timestamp,
    ) -> anyhow::Result<()> {
        lock(&self.carts).insert(token_hash.to_owned(), (guest, expires_at));
        Ok(())
    }

    async fn guest(&self, token_hash: &str, now: Timestamp) -> anyhow::Result<Option<UserId>> {
        Ok(lock(&self.carts)
            .get(token_hash)
            .filter(|(_, expires)| *expires > now)
            .map(|(guest, _)| *guest))
    }

    async fn record_order_in(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        guest: UserId,
        email: &str,
        token_hash: &str,
        _: Timestamp,
    ) -> anyhow::Result<()> {
        let (orders, row) = (
            self.orders.clone(),
            (guest, email.to_owned(), token_hash.to_owned()),
        );
        work.after_commit(move || {
            lock(&orders).insert(order, row);
        });
        Ok(())
    }

    async fn order(&self, order: OrderId) -> anyhow::Result<Option<(UserId, String)>> {
        Ok(lock(&self.orders)
            .get(&order)
            .map(|(guest, _, hash)| (*guest, hash.clone())))
    }

    async fn sweep(&self, now: Timestamp, limit: i64) -> anyhow::Result<u64> {
        let mut carts = lock(&self.carts);
        let expired: Vec<String> = carts
            .iter()
            .filter(|(_, (_, expires))| *expires <= now)
            .map(|(hash, _)| hash.clone())
            .take(usize::try_from(limit).unwrap_or(0))
            .collect();
        for hash in &expired {
            carts.remove(hash);
        }
        Ok(expired.len() as u64)
    }
}

/// One set of rates for every destination.
pub(crate) struct FakeRates(pub(crate) DestinationRates);

#[async_trait::async_trait]
impl RateBook for FakeRates {
    async fn tax_rates(&self) -> anyhow::Result<Vec<(String, TaxRates, Timestamp)>> {
        unused("listing tax rates")
    }

    async fn put_tax_rates(&self, _: &str, _: TaxRates, _: Timestamp) -> anyhow::Result<()> {
        unused("setting tax rates")
    }

    async fn delete_tax_rates(&self, _: &str) -> anyhow::Result<bool> {
        unused("deleting tax rates")
    }

    async fn shipping_rates(
        &self,
    ) -> anyhow::Result<Vec<(String, Currency, ShippingRate, Timestamp)>> {
        unused("listing shipping rates")
    }

    async fn put_shipping_rate(
        &self,
        _: &str,
        _: Currency,
        _: ShippingRate,
        _: Timestamp,
    ) -> anyhow::Result<()> {
        unused("setting a shipping rate")
    }

    async fn delete_shipping_rate(&self, _: &str, _: Currency) -> anyhow::Result<bool> {
        unused("deleting a shipping rate")
    }

    async fn destination(&self, _: &str, _: Currency) -> anyhow::Result<DestinationRates> {
        Ok(self.0)
    }

    async fn destination_in(
        &self,
        _: &mut UnitOfWork,
        _: &str,
        _: Currency,
    ) -> anyhow::Result<DestinationRates> {
        Ok(self.0)
    }
}

/// Codes by name, with the orders each discounts; the code on a cart is the cart's.
pub(crate) struct FakePromotions {
    codes: Arc<Mutex<HashMap<String, Promotion>>>,
    uses: Arc<Mutex<Vec<(String, OrderId, UserId)>>>,
    carts: Arc<FakeCarts>,
}

impl FakePromotions {
    pub(crate) fn for_carts(carts: Arc<FakeCarts>) -> Self {
        Self {
            codes: Arc::default(),
            uses: Arc::default(),
            carts,
        }
    }

    pub(crate) fn offer(&self, promotion: Promotion) {
        lock(&self.codes).insert(promotion.code.as_str().to_owned(), promotion);
    }

    /// Another checkout takes uses of the code meanwhile.
    pub(crate) fn use_up(&self, code: &str) {
        if let Some(p) = lock(&self.codes).get_mut(code) {
            p.uses = p.max_uses.unwrap_or(p.uses);
        }
    }

    pub(crate) fn uses(&self, code: &str) -> i64 {
        lock(&self.codes).get(code).map_or(0, |p| p.uses)
    }
}

#[async_trait::async_trait]
impl PromotionBook for FakePromotions {
    async fn create(&self, promotion: &Promotion) -> anyhow::Result<bool> {
        self.offer(promotion.clone());
        Ok(true)
    }

    async fn get(&self, code: &PromotionCode) -> anyhow::Result<Option<Promotion>> {
        Ok(lock(&self.codes).get(code.as_str()).cloned())
    }

    async fn list(&self, _: &PageRequest) -> anyhow::Result<Page<Promotion>> {
        unused("listing codes")
    }

    async fn withdraw(&self, _: &PromotionCode, _: Timestamp) -> anyhow::Result<bool> {
        unused("withdrawing a code")
    }

    async fn customer_uses(&self, code: &PromotionCode, customer: UserId) -> anyhow::Result<i64> {
        let uses = lock(&self.uses);
        Ok(uses
            .iter()
            .filter(|(c, _, who)| c == code.as_str() && *who == customer)
            .count() as i64)
    }

    async fn put_on_cart(&self, _: UserId, _: &PromotionCode, _: Timestamp) -> anyhow::Result<()> {
        unused("putting a code on a cart")
    }

    async fn on_cart(&self, customer: UserId) -> anyhow::Result<Option<PromotionCode>> {
        Ok(lock(&self.carts.carts)
            .get(&customer)
            .and_then(|c| c.code.clone()))
    }

    async fn take_off_cart(&self, _: UserId) -> anyhow::Result<bool> {
        unused("taking a code off a cart")
    }

    async fn code_use(
        &self,
        _work: &mut UnitOfWork,
        code: &PromotionCode,
        customer: UserId,
    ) -> anyhow::Result<CodeUse> {
        Ok(CodeUse {
            promotion: self.get(code).await?,
            customer_uses: self.customer_uses(code, customer).await?,
        })
    }

    async fn take_use(
        &self,
        work: &mut UnitOfWork,
        code: &PromotionCode,
        order: OrderId,
        customer: UserId,
        _now: Timestamp,
    ) -> anyhow::Result<bool> {
        let available = lock(&self.codes)
            .get(code.as_str())
            .is_some_and(|p| p.active && p.max_uses.is_none_or(|max| p.uses < max));
        if available {
            let (codes, uses, code) = (
                self.codes.clone(),
                self.uses.clone(),
                code.as_str().to_owned(),
            );
            work.after_commit(move || {
                if let Some(p) = lock(&codes).get_mut(&code) {
                    p.uses += 1;
                }
                lock(&uses).push((code, order, customer));
            });
        }
        Ok(available)
    }
}

/// A gateway that answers charges from a script (then approves), approves refunds, and
/// records what it was asked.
#[derive(Default)]
pub(crate) struct FakeGateway {
    charges: Mutex<VecDeque<Result<String, GatewayError>>>,
    /// (kind, idempotency key, amount) of every call.
    pub(crate) calls: Mutex<Vec<(&'static str, String, Money)>>,
}

impl FakeGateway {
    pub(crate) fn answer_charges(
        &self,
        answers: impl IntoIterator<Item = Result<String, GatewayError>>,
    ) {
        lock(&self.charges).extend(answers);
    }

    pub(crate) fn calls(&self) -> Vec<(&'static str, String, Money)> {
        lock(&self.calls).clone()
    }
}

#[async_trait::async_trait]
impl PaymentGateway for FakeGateway {
    async fn authorize(
        &self,
        idempotency_key: &str,
        _token: &str,
        amount: Money,
    ) -> Result<String, GatewayError> {
        lock(&self.calls).push(("charge", idempotency_key.to_owned(), amount));
        lock(&self.charges)
            .pop_front()
            .unwrap_or_else(|| Ok(format!("ch_{idempotency_key}")))
    }

    async fn refund(
        &self,
        idempotency_key: &str,
        _charge_reference: &str,
        amount: Money,
    ) -> Result<String, GatewayError> {
        lock(&self.calls).push(("refund", idempotency_key.to_owned(), amount));
        Ok(format!("re_{idempotency_key}"))
    }
}
