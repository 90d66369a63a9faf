//! Returns, the use cases: a customer or an admin opens one; an admin approves, rejects or
//! receives it. Each step is one change of the order (see `domain::returns` for the rules),
//! stored with its events; receiving grants the return's refund, which is then sent like
//! every refund.

use bus::Causation;
use kernel::id::{OrderId, ProductId, UserId};

use super::checkout::Checkout;
use super::ports::Applied;
use super::OrderingError;
use crate::domain::{Change, Opened, Order, ReturnAsk, ReturnError};

/// A return asked for through the API.
pub(crate) struct NewReturn {
    pub(crate) lines: Vec<(ProductId, u32)>,
    pub(crate) reason: String,
    /// The request's `Idempotency-Key`.
    pub(crate) client_key: Option<String>,
}

impl Checkout {
    /// Makes the change `decide` chooses, or says why it refused; sends a refund the change
    /// granted.
    async fn change_return(
        &self,
        id: OrderId,
        cause: &Causation,
        decide: &(dyn Fn(&Order) -> Result<Change, ReturnError> + Send + Sync),
    ) -> Result<Order, OrderingError> {
        let quiet = |o: &Order| decide(o).ok();
        match self.saga.apply_now(id, cause, &quiet).await? {
            Applied::Changed(order) => {
                if !order.refund_outstanding() {
                    return Ok(*order);
                }
                self.saga.process_refund(id, cause).await?;
                Ok(self.orders.get(id).await?.unwrap_or(*order))
            }
            Applied::Unchanged(order) => Err(match decide(&order) {
                Err(e) => OrderingError::Return(e),
                Ok(_) => OrderingError::Unexpected(anyhow::anyhow!(
                    "a return change of order {id} was decided but not stored"
                )),
            }),
            Applied::Missing => Err(OrderingError::OrderNotFound),
        }
    }

    /// Opens a return on the caller's order (admins: any order, at any time after dispatch);
    /// the order, the return's id, and whether an earlier request with the same key opened it.
    pub(crate) async fn request_return(
        &self,
        caller: UserId,
        admin: bool,
        id: OrderId,
        asked: NewReturn,
        cause: &Causation,
    ) -> Result<(Order, uuid::Uuid, bool), OrderingError> {
        self.get(caller, admin, id).await?;
        let ask = ReturnAsk {
            id: uuid::Uuid::now_v7(),
            lines: asked.lines,
            reason: asked.reason,
            by_admin: admin,
            window: self.return_window,
            now: self.clock.now(),
            client_key: asked.client_key,
        };
        let decide = |o: &Order| match o.request_return(&ask) {
            Ok(Opened::New(change)) => Some(*change),
            _ => None,
        };
        match self.saga.apply_now(id, cause, &decide).await? {
            Applied::Changed(order) => Ok((*order, ask.id, false)),
            Applied::Unchanged(order) => match order.request_return(&ask) {
                Ok(Opened::Replayed(earlier)) => Ok((*order, earlier, true)),
                Err(e) => Err(OrderingError::Return(e)),
                Ok(Opened::New(_)) => Err(OrderingError::Unexpected(anyhow::anyhow!(
                    "a return of order {id} was decided but not stored"
                ))),
            },
            Applied::Missing => Err(OrderingError::OrderNotFound),
        }
    }

    pub(crate) async fn approve_return(
        &self,
        id: OrderId,
        return_id: uuid::Uuid,
        refund_shipping: bool,
        cause: &Causation,
    ) -> Result<Order, OrderingError> {
        let now = self.clock.now();
        self.change_return(id, cause, &move |o: &Order| {
            o.approve_return(return_id, refund_shipping, now)
        })
        .await
    }

    pub(crate) async fn reject_return(
        &self,
        id: OrderId,
        return_id: uuid::Uuid,
        note: String,
        cause: &Causation,
    ) -> Result<Order, OrderingError> {
        let now = self.clock.now();
        self.change_return(id, cause, &move |o: &Order| {
            o.reject_return(return_id, &note, now)
        })
        .await
    }

    /// The parcel arrived: what is not in `no_restock` goes back on sale, and the return's
    /// share of the charge is refunded.
    pub(crate) async fn receive_return(
        &self,
        id: OrderId,
        return_id: uuid::Uuid,
        no_restock: Vec<ProductId>,
        cause: &Causation,
    ) -> Result<Order, OrderingError> {
        let (now, refund_id) = (self.clock.now(), uuid::Uuid::now_v7());
        self.change_return(id, cause, &move |o: &Order| {
            o.receive_return(return_id, &no_restock, refund_id, now)
        })
        .await
    }
}
