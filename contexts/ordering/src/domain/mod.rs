//! Ordering's domain: the cart and its pricing, placing an order, orders and their state
//! machine, payments, promotions. Pure.

pub(crate) mod cart;
mod checkout;
mod events;
mod lifecycle;
mod order;
mod order_return;
mod payment;
pub(crate) mod pricing;
pub(crate) mod promotion;
mod refund;
mod returns;

pub(crate) use checkout::Placing;
pub(crate) use events::OrderEvent;
pub(crate) use lifecycle::{Change, ChargeRetry, GatewayError};
pub(crate) use order::{
    Amounts, CancellationReason, Lifecycle, Order, OrderLine, OrderStatus, StatusEntry,
};
pub(crate) use order_return::{OrderReturn, ReturnLine, ReturnStatus};
pub(crate) use payment::{retry_delay, Payment, PaymentKind, PaymentStatus, ProviderEvent};
pub(crate) use refund::{Granted, RefundError, RefundRequest, MAX_REASON_CHARS};
pub(crate) use returns::{Opened, ReturnAsk, ReturnError};

/// A cart or order line quantity: 1..=99.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quantity(u32);

impl Quantity {
    pub(crate) fn parse(raw: i64) -> Result<Self, &'static str> {
        if (1..=99).contains(&raw) {
            Ok(Self(raw as u32))
        } else {
            Err("must be between 1 and 99")
        }
    }

    pub(crate) fn get(&self) -> u32 {
        self.0
    }
}
