//! Placing an order: a sellable cart, priced as its quote is, becomes a pending order with
//! its prices snapshotted, and the order announces itself.

use kernel::address::PostalAddress;
use kernel::id::{OrderId, UserId};
use kernel::Timestamp;

use super::cart::{Refusal, SellableCart, Terms};
use super::events::OrderEvent;
use super::order::{Amounts, Order, OrderLine, OrderStatus, StatusEntry};

/// What the customer asks for at checkout, besides the cart.
#[derive(Debug, Clone)]
pub(crate) struct Placing {
    pub(crate) id: OrderId,
    pub(crate) customer_id: UserId,
    pub(crate) shipping_address: PostalAddress,
    pub(crate) payment_token: String,
    pub(crate) now: Timestamp,
    /// When the saga asks catalog again if no stock answer came.
    pub(crate) deadline: Timestamp,
}

impl Order {
    /// The order the cart becomes under `terms` (priced by [`SellableCart::quote`], so it
    /// charges what the quote showed), with the events it announces.
    pub(crate) fn place(
        placing: Placing,
        cart: SellableCart,
        terms: Terms,
    ) -> Result<(Order, Vec<OrderEvent>), Refusal> {
        let quote = cart.quote(terms)?;
        let breakdown = quote.breakdown;
        let lines = quote
            .lines
            .into_iter()
            .zip(&breakdown.lines)
            .map(|((p, quantity), amounts)| OrderLine {
                product_id: p.id,
                variant_of: p.variant_of,
                sku: p.sku,
                name: p.name,
                quantity,
                unit_price: p.price,
                discount: amounts.discount,
                tax: amounts.tax,
            })
            .collect();
        let order = Order {
            id: placing.id,
            customer_id: placing.customer_id,
            status: OrderStatus::Pending,
            cancellation_reason: None,
            lines,
            amounts: Amounts {
                subtotal: breakdown.subtotal,
                discount: breakdown.discount,
                shipping: breakdown.shipping,
                tax: breakdown.tax,
                weight_grams: breakdown.grams,
            },
            promotion_code: quote.promotion.map(|code| code.as_str().to_owned()),
            total: breakdown.total,
            shipping_address: placing.shipping_address,
            payment_token: placing.payment_token,
            shipment_id: None,
            tracking_number: None,
            placed_at: placing.now,
            updated_at: placing.now,
            deadline_at: Some(placing.deadline),
            version: 1,
            history: vec![StatusEntry {
                status: OrderStatus::Pending,
                reason: None,
                note: None,
                at: placing.now,
            }],
            payments: vec![],
            returns: vec![],
        };
        let events = order.placed_events();
        Ok((order, events))
    }
}
