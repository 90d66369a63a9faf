//! The checkout and the saga's steps as use cases, on in-memory fakes of their ports: what
//! each decides and announces, without a database or a bus.

use std::sync::Arc;
use std::time::Duration;

use bus::{Causation, DetachedUnits, HandlesOnce, RetryPolicy, Units};
use catalog_contracts::{StockReserved, TaxClass};
use kernel::address::PostalAddress;
use kernel::clock::ManualClock;
use kernel::id::{OrderId, ProductId, UserId};
use kernel::{Clock, Currency, Money, Timestamp};

use super::checkout::{Checkout, Destination, PlaceOrder};
use super::customers::CustomerFeed;
use super::fakes::{
    FakeCarts, FakeCustomers, FakeGateway, FakeGuests, FakeOrders, FakePromotions, FakeRates,
};
use super::guests::Guests;
use super::ports::GatewayError;
use super::rates::Rates;
use super::saga::{Saga, Timeouts};
use super::OrderingError;
use crate::domain::cart::KnownProduct;
use crate::domain::pricing::{DestinationRates, Shipping, ShippingRate, TaxRate, TaxRates};
use crate::domain::promotion::{Benefit, Promotion, PromotionCode, PromotionTerms};
use crate::domain::{CancellationReason, Order, OrderStatus, PaymentKind, PaymentStatus};

fn eur(amount: i64) -> Money {
    let currency = Currency::parse("EUR").unwrap_or_else(|e| panic!("{e}"));
    Money::new(amount, currency).unwrap_or_else(|e| panic!("{e}"))
}

fn rate(bps: i64) -> TaxRate {
    TaxRate::from_bps(bps).unwrap_or_else(|e| panic!("{e}"))
}

struct Shop {
    units: DetachedUnits,
    orders: Arc<FakeOrders>,
    carts: Arc<FakeCarts>,
    promotions: Arc<FakePromotions>,
    gateway: Arc<FakeGateway>,
    customers: Arc<FakeCustomers>,
    guests: Arc<FakeGuests>,
    visitors: Guests,
    clock: ManualClock,
    checkout: Checkout,
    saga: Arc<Saga>,
    rates: Rates,
    customer: UserId,
    mug: ProductId,
}

/// A shop selling a 10.00 EUR mug (400 g, standard rate) to a destination taxed 19 % / 7 %,
/// shipped for 4.95 up to 2 kg.
fn shop() -> Shop {
    let units = DetachedUnits::new();
    let orders = Arc::new(FakeOrders::default());
    let carts = Arc::new(FakeCarts::default());
    let promotions = Arc::new(FakePromotions::for_carts(carts.clone()));
    let gateway = Arc::new(FakeGateway::default());
    let customers = Arc::new(FakeCustomers::default());
    let guests = Arc::new(FakeGuests::default());
    let clock = ManualClock::starting_at(Timestamp::now());
    let book = Arc::new(FakeRates(DestinationRates {
        tax: TaxRates {
            standard: rate(1900),
            reduced: rate(700),
        },
        shipping: Shipping::Rate(ShippingRate {
            flat: 495,
            per_kg: 100,
            included_grams: 2000,
        }),
    }));
    let mug = ProductId::new();
    carts.know(KnownProduct {
        id: mug,
        variant_of: None,
        sku: "MUG-1".into(),
        name: "Mug".into(),
        price: eur(1000),
        active: true,
        revision: 1,
        weight_grams: 400,
        tax_class: TaxClass::Standard,
        other_prices: vec![],
    });
    let shared_clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let saga = Arc::new(Saga {
        orders: orders.clone(),
        gateway: gateway.clone(),
        clock: shared_clock.clone(),
        units: Arc::new(units.clone()),
        timeouts: Timeouts {
            stock: Duration::from_secs(30),
            stock_give_up: Duration::from_secs(960),
            payment: Duration::from_secs(15),
            shipment: Duration::from_secs(60),
            payment_give_up: Duration::from_secs(120),
        },
        gateway_retry: RetryPolicy {
            max_attempts: 3,
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            ..RetryPolicy::default()
        },
    });
    Shop {
        checkout: Checkout {
            units: Arc::new(units.clone()),
            orders: orders.clone(),
            carts: carts.clone(),
            rates: book.clone(),
            promotions: promotions.clone(),
            customers: customers.clone(),
            guests: guests.clone(),
            saga: saga.clone(),
            clock: shared_clock.clone(),
            stock_timeout: Duration::from_secs(30),
            prices_include_tax: false,
            require_verified_email: false,
            return_window: Duration::from_secs(30 * 86_400),
        },
        rates: Rates {
            book,
            carts: carts.clone(),
            promotions: promotions.clone(),
            clock: shared_clock.clone(),
            prices_include_tax: false,
        },
        units,
        orders,
        carts,
        promotions,
        gateway,
        customers,
        visitors: Guests {
            book: guests.clone(),
            clock: shared_clock.clone(),
            cart_ttl: Duration::from_secs(3600),
        },
        guests,
        clock,
        saga,
        customer: UserId::new(),
        mug,
    }
}

fn request(customer: UserId, key: Option<&str>, body: &str) -> PlaceOrder {
    PlaceOrder {
        customer,
        guest: None,
        destination: Destination::Given(PostalAddress {
            name: "Ada".into(),
            line1: "1 Road".into(),
            line2: None,
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        }),
        payment_token: "tok_visa".into(),
        idempotency_key: key.map(str::to_owned),
        request_fingerprint: body.to_owned(),
    }
}

impl Shop {
    async fn place(&self, key: Option<&str>, body: &str) -> Result<(Order, bool), OrderingError> {
        self.checkout
            .place(request(self.customer, key, body), &Causation::system())
            .await
    }

    /// The event types published since last asked.
    fn announced(&self) -> Vec<String> {
        self.units
            .take_published()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    async fn stock_reserved(&self, order: OrderId) {
        let mut work = Units::begin(&self.units, Causation::system())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let event = StockReserved {
            order_id: order,
            lines: vec![],
            expires_at: self.clock.now().plus(Duration::from_secs(900)),
        };
        self.saga
            .handle_once(event, &mut work)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        work.commit().await.unwrap_or_else(|e| panic!("{e}"));
    }

    fn order(&self, id: OrderId) -> Order {
        self.orders
            .stored(id)
            .unwrap_or_else(|| panic!("order {id} stored"))
    }
}

fn ok<T>(r: Result<T, OrderingError>) -> T {
    r.unwrap_or_else(|e| panic!("{e:?}"))
}

#[tokio::test]
async fn checkout_places_the_order_its_quote_priced_and_announces_it() {
    let shop = shop();
    shop.carts.put(shop.customer, shop.mug, 2);
    let quote = ok(shop.rates.quote(shop.customer, "de").await);
    // 2 × 10.00, shipping 4.95 (800 g), tax 19 % of 20.00 and of 4.95 (0.9405, rounded).
    assert_eq!(quote.breakdown.total, eur(2000 + 495 + 380 + 94));
    let (order, new) = ok(shop.place(None, "{}").await);
    assert!(new);
    assert_eq!(order.total, quote.breakdown.total);
    assert_eq!(order.amounts.tax, eur(474));
    assert_eq!((order.status, order.version), (OrderStatus::Pending, 1));
    assert_eq!(shop.order(order.id), order, "stored as returned");
    assert_eq!(
        shop.announced(),
        ["ordering.order_placed", "ordering.order_status_changed"]
    );
    assert_eq!(shop.carts.held(shop.customer), 0, "the cart is claimed");
    assert!(matches!(
        shop.place(None, "{}").await,
        Err(OrderingError::CartEmpty)
    ));
    assert!(shop.announced().is_empty());
}

#[tokio::test]
async fn a_replayed_key_answers_with_the_same_order_and_another_request_is_refused() {
    let shop = shop();
    shop.carts.put(shop.customer, shop.mug, 1);
    let (first, new) = ok(shop.place(Some("k-1"), "{\"a\":1}").await);
    assert!(new);
    shop.announced();
    // The cart is empty now, but the key answers before the cart is looked at.
    let (again, new) = ok(shop.place(Some("k-1"), "{\"a\":1}").await);
    assert_eq!((again.id, new), (first.id, false));
    assert!(shop.announced().is_empty(), "a replay announces nothing");
    assert!(matches!(
        shop.place(Some("k-1"), "{\"a\":2}").await,
        Err(OrderingError::IdempotencyMismatch)
    ));
    assert_eq!(shop.orders.count(), 1);
}

fn code(max_uses: Option<i64>) -> Promotion {
    let code = PromotionCode::parse("WELCOME10").unwrap_or_else(|e| panic!("{e}"));
    let terms = PromotionTerms {
        benefit: Benefit::Percent(1000),
        min_subtotal: vec![],
        starts_at: None,
        ends_at: None,
        max_uses,
        max_uses_per_customer: None,
    };
    Promotion::new(code, terms, Timestamp::from_micros(0)).unwrap_or_else(|e| panic!("{e:?}"))
}

#[tokio::test]
async fn a_code_discounts_the_order_and_takes_one_use() {
    let shop = shop();
    shop.promotions.offer(code(Some(5)));
    shop.carts.put(shop.customer, shop.mug, 2);
    shop.carts.put_code(shop.customer, "WELCOME10");
    let (order, _) = ok(shop.place(None, "{}").await);
    // 10 % off 20.00; tax on 18.00 and on the shipping.
    assert_eq!(order.amounts.discount, eur(200));
    assert_eq!(order.total, eur(2000 - 200 + 495 + 342 + 94));
    assert_eq!(order.promotion_code.as_deref(), Some("WELCOME10"));
    assert_eq!(shop.promotions.uses("WELCOME10"), 1);
}

#[tokio::test]
async fn a_code_that_no_longer_applies_refuses_the_checkout_and_leaves_the_cart() {
    let shop = shop();
    shop.promotions.offer(code(Some(1)));
    shop.carts.put(shop.customer, shop.mug, 1);
    shop.carts.put_code(shop.customer, "WELCOME10");
    shop.promotions.use_up("WELCOME10");
    let refused = shop.place(None, "{}").await;
    assert!(
        matches!(&refused, Err(OrderingError::PromotionNotApplicable(why)) if why.contains("used")),
        "{refused:?}"
    );
    assert_eq!(
        shop.carts.held(shop.customer),
        1,
        "the cart stays as it was"
    );
    assert_eq!(shop.orders.count(), 0);
    assert!(shop.announced().is_empty());
}

#[tokio::test]
async fn a_reserved_order_is_charged_once_and_paid() {
    let shop = shop();
    shop.carts.put(shop.customer, shop.mug, 1);
    let (order, _) = ok(shop.place(None, "{}").await);
    shop.announced();
    shop.stock_reserved(order.id).await;
    let paid = shop.order(order.id);
    assert_eq!(paid.status, OrderStatus::Paid);
    let charge = paid
        .authorized_charge()
        .unwrap_or_else(|| panic!("authorised"));
    assert_eq!(charge.amount, order.total);
    assert_eq!(
        shop.gateway.calls(),
        [("charge", format!("{}:charge:1", order.id), order.total)]
    );
    assert_eq!(
        shop.announced(),
        [
            "ordering.order_status_changed",
            "ordering.order_paid",
            "ordering.order_status_changed"
        ]
    );
    // The same answer again (a duplicate delivery) changes nothing and charges nothing.
    shop.stock_reserved(order.id).await;
    assert_eq!(shop.gateway.calls().len(), 1);
    assert_eq!(shop.order(order.id), paid);
}

#[tokio::test]
async fn a_declined_charge_cancels_the_order_and_refunds_nothing() {
    let shop = shop();
    shop.gateway
        .answer_charges([Err(GatewayError::Declined("card_declined".into()))]);
    shop.carts.put(shop.customer, shop.mug, 1);
    let (order, _) = ok(shop.place(None, "{}").await);
    shop.stock_reserved(order.id).await;
    let cancelled = shop.order(order.id);
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(
        cancelled.cancellation_reason,
        Some(CancellationReason::PaymentDeclined)
    );
    assert_eq!(cancelled.payments[0].status, PaymentStatus::Declined);
    assert!(!cancelled.refund_outstanding());
    assert_eq!(shop.gateway.calls().len(), 1);
}

#[tokio::test]
async fn an_unreachable_gateway_is_asked_again_until_the_order_gives_up() {
    let shop = shop();
    let down = || Err(GatewayError::Unavailable("timeout".into()));
    shop.gateway.answer_charges((0..6).map(|_| down()));
    shop.carts.put(shop.customer, shop.mug, 1);
    let (order, _) = ok(shop.place(None, "{}").await);
    shop.stock_reserved(order.id).await;
    let waiting = shop.order(order.id);
    assert_eq!(waiting.status, OrderStatus::StockReserved);
    assert_eq!(waiting.payments[0].status, PaymentStatus::Pending);
    assert!(waiting
        .history
        .iter()
        .any(|h| h.note.as_deref().is_some_and(|n| n.contains("tried again"))));
    assert_eq!(shop.gateway.calls().len(), 3, "one round of retries");
    // Past the give-up time, the sweeper's next round ends it.
    shop.clock.advance(Duration::from_secs(600));
    ok(shop.saga.sweep().await.map_err(OrderingError::Unexpected));
    let given_up = shop.order(order.id);
    assert_eq!(given_up.status, OrderStatus::Cancelled);
    assert_eq!(
        given_up.cancellation_reason,
        Some(CancellationReason::PaymentUnavailable)
    );
    assert_eq!(given_up.payments[0].status, PaymentStatus::Failed);
    assert_eq!(shop.gateway.calls().len(), 6);
}

#[tokio::test]
async fn a_customer_cancellation_after_payment_refunds_the_charge_once() {
    let shop = shop();
    shop.carts.put(shop.customer, shop.mug, 1);
    let (order, _) = ok(shop.place(None, "{}").await);
    shop.stock_reserved(order.id).await;
    shop.announced();
    let cause = Causation::system();
    let other = UserId::new();
    assert!(matches!(
        shop.checkout.cancel(other, false, order.id, &cause).await,
        Err(OrderingError::OrderNotFound)
    ));
    let cancelled = ok(shop
        .checkout
        .cancel(shop.customer, false, order.id, &cause)
        .await);
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    let refund = cancelled
        .payments
        .iter()
        .find(|p| p.kind == PaymentKind::Refund)
        .unwrap_or_else(|| panic!("refunded"));
    assert_eq!(
        (refund.status, refund.amount),
        (PaymentStatus::Refunded, order.total)
    );
    assert_eq!(
        shop.gateway.calls().last(),
        Some(&("refund", format!("{}:refund", order.id), order.total))
    );
    let announced = shop.announced();
    assert!(
        announced.contains(&"ordering.order_cancelled".to_owned()),
        "{announced:?}"
    );
    assert!(matches!(
        shop.checkout
            .cancel(shop.customer, false, order.id, &cause)
            .await,
        Err(OrderingError::CannotCancel(_))
    ));
    assert_eq!(shop.gateway.calls().len(), 2, "one charge, one refund");
}

#[tokio::test]
async fn a_shop_that_requires_verified_addresses_refuses_others_until_identity_says_so() {
    let mut shop = shop();
    shop.checkout.require_verified_email = true;
    shop.carts.put(shop.customer, shop.mug, 1);
    assert!(matches!(
        shop.place(None, "{}").await,
        Err(OrderingError::EmailUnverified)
    ));
    // Nothing was claimed or announced: the cart is still there.
    assert!(shop.announced().is_empty());
    assert_eq!(shop.orders.count(), 0);
    let feed = CustomerFeed {
        customers: shop.customers.clone(),
    };
    let mut work = Units::begin(&shop.units, Causation::system())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let verified = identity_contracts::EmailVerified {
        user_id: shop.customer,
        email: "ada@example.com".into(),
        verified_at: shop.clock.now(),
    };
    ok(feed
        .handle_once(verified, &mut work)
        .await
        .map_err(OrderingError::from));
    ok(work.commit().await.map_err(OrderingError::from));
    let (order, new) = ok(shop.place(None, "{}").await);
    assert!(new);
    assert_eq!(order.customer_id, shop.customer);
}

#[tokio::test]
async fn a_saved_address_is_shipped_to_as_ordering_knows_it_and_nobody_elses_is() {
    let shop = shop();
    shop.carts.put(shop.customer, shop.mug, 1);
    let saved = PostalAddress {
        name: "Ada".into(),
        line1: "7 Saved Street".into(),
        line2: None,
        city: "Vienna".into(),
        postal_code: "1010".into(),
        country: "AT".into(),
    };
    let feed = CustomerFeed {
        customers: shop.customers.clone(),
    };
    let book = |user, revision| identity_contracts::AddressBookChanged {
        user_id: user,
        addresses: vec![identity_contracts::SavedAddress {
            address_id: "a-1".into(),
            address: saved.clone(),
            is_default: true,
        }],
        revision,
        changed_at: shop.clock.now(),
    };
    let stranger = UserId::new();
    let mut work = Units::begin(&shop.units, Causation::system())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ok(feed
        .handle_once(book(stranger, 1), &mut work)
        .await
        .map_err(OrderingError::from));
    ok(work.commit().await.map_err(OrderingError::from));
    let mut saved_elsewhere = request(shop.customer, None, "{}");
    saved_elsewhere.destination = Destination::Saved("a-1".into());
    assert!(matches!(
        shop.checkout.place(saved_elsewhere, &Causation::system()).await,
        Err(OrderingError::Invalid(errors)) if errors[0].field == "shipping_address_id"
    ));
    let mut work = Units::begin(&shop.units, Causation::system())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ok(feed
        .handle_once(book(shop.customer, 1), &mut work)
        .await
        .map_err(OrderingError::from));
    ok(work.commit().await.map_err(OrderingError::from));
    let mut mine = request(shop.customer, None, "{}");
    mine.destination = Destination::Saved("a-1".into());
    let (order, _) = ok(shop.checkout.place(mine, &Causation::system()).await);
    // The order keeps its own copy of where it ships.
    assert_eq!(order.shipping_address, saved);
}

#[tokio::test]
async fn a_guest_checks_out_a_cart_token_and_reads_the_order_with_its_order_token_only() {
    let mut shop = shop();
    shop.checkout.require_verified_email = true;
    let opened = ok(shop.visitors.open().await);
    let guest = ok(shop.visitors.shopper(&opened.cart_token).await)
        .unwrap_or_else(|| panic!("the new cart token opens its cart"));
    assert_eq!(ok(shop.visitors.shopper("not-a-token").await), None);
    shop.carts.put(guest, shop.mug, 1);
    let email =
        kernel::EmailAddress::parse(" Guest@Example.com ").unwrap_or_else(|e| panic!("{e}"));
    let mut command = request(guest, Some("g-1"), "{}");
    command.guest = Some(super::checkout::GuestContact {
        email: email.clone(),
        cart_token: opened.cart_token.clone(),
    });
    // A guest has no account to verify: the verified-email rule is about accounts.
    let (order, new) = ok(shop.checkout.place(command, &Causation::system()).await);
    assert!(new);
    assert_eq!(order.customer_id, guest);
    assert_eq!(
        shop.announced(),
        [
            "ordering.order_placed",
            "ordering.order_status_changed",
            "ordering.guest_checked_out"
        ]
    );
    assert_eq!(
        shop.guests.email_of(order.id).as_deref(),
        Some("guest@example.com")
    );
    let token = super::guests::order_token(&opened.cart_token, order.id);
    assert_eq!(
        ok(shop.visitors.reader(order.id, &token).await),
        Some(guest)
    );
    let other = super::guests::order_token(&opened.cart_token, OrderId::new());
    assert_eq!(ok(shop.visitors.reader(order.id, &other).await), None);
    assert_eq!(ok(shop.visitors.reader(OrderId::new(), &token).await), None);
    // An account's checkout still needs the verified address.
    shop.carts.put(shop.customer, shop.mug, 1);
    assert!(matches!(
        shop.place(None, "{}").await,
        Err(OrderingError::EmailUnverified)
    ));
}

#[tokio::test]
async fn an_expired_guest_cart_no_longer_opens_and_is_swept() {
    let shop = shop();
    let opened = ok(shop.visitors.open().await);
    let second = ok(shop.visitors.open().await);
    shop.clock.advance(Duration::from_secs(3599));
    assert!(ok(shop.visitors.shopper(&opened.cart_token).await).is_some());
    assert_eq!(ok(shop.visitors.sweep().await), 0);
    shop.clock.advance(Duration::from_secs(1));
    assert_eq!(ok(shop.visitors.shopper(&opened.cart_token).await), None);
    assert_eq!(ok(shop.visitors.sweep().await), 2);
    assert_eq!(ok(shop.visitors.shopper(&second.cart_token).await), None);
}

#[tokio::test]
async fn a_guest_uses_a_once_per_customer_code_once_per_email_address_whatever_the_cart() {
    let shop = shop();
    let mut once = code(None);
    once.max_uses_per_customer = Some(1);
    shop.promotions.offer(once);
    let email = kernel::EmailAddress::parse("saver@example.com").unwrap_or_else(|e| panic!("{e}"));
    let mut placed = Vec::new();
    for _ in 0..2 {
        let opened = ok(shop.visitors.open().await);
        let guest = ok(shop.visitors.shopper(&opened.cart_token).await)
            .unwrap_or_else(|| panic!("the cart opens"));
        shop.carts.put(guest, shop.mug, 1);
        shop.carts.put_code(guest, "WELCOME10");
        let mut command = request(guest, None, "{}");
        command.guest = Some(super::checkout::GuestContact {
            email: email.clone(),
            cart_token: opened.cart_token,
        });
        placed.push(shop.checkout.place(command, &Causation::system()).await);
    }
    assert!(placed[0].is_ok(), "{:?}", placed[0]);
    assert!(
        matches!(&placed[1], Err(OrderingError::PromotionNotApplicable(_))),
        "a second cart is the same customer for the code: {:?}",
        placed[1]
    );
    assert_eq!(shop.promotions.uses("WELCOME10"), 1);
}
