//! Who is shopping: a signed-in customer (a bearer token) or a guest (the cart token of a
//! guest cart, `X-Cart-Token`); and who may read an order: its customer, an admin, or the
//! guest holding its order token (`X-Order-Token`).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use kernel::id::{OrderId, UserId};
use platform::auth::AuthUser;
use platform::error::ApiError;

use super::State;

pub(crate) const CART_TOKEN: &str = "x-cart-token";
pub(crate) const ORDER_TOKEN: &str = "x-order-token";

pub(crate) enum Shopper {
    Customer(AuthUser),
    Guest { id: UserId, cart_token: String },
}

impl Shopper {
    /// Whose cart this is.
    pub(crate) fn id(&self) -> UserId {
        match self {
            Shopper::Customer(user) => user.user_id,
            Shopper::Guest { id, .. } => *id,
        }
    }
}

/// The one value of `name`, if sent; sent twice, or with bytes that are not text: refused
/// (no two readers of the request may take different tokens from it).
fn single(req: &HttpRequest, name: &str) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(name);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request(
            "ambiguous_request",
            format!("send {name} once"),
        ));
    }
    let value = first.to_str().map_err(|_| {
        ApiError::bad_request("ambiguous_request", format!("{name} must be visible ASCII"))
    })?;
    Ok(Some(value.trim().to_owned()))
}

fn state(req: &HttpRequest) -> Result<web::Data<State>, ApiError> {
    req.app_data::<web::Data<State>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("ordering state not configured")))
}

impl FromRequest for Shopper {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    /// A bearer token, when sent, says whose cart it is (a cart token beside it is not
    /// read: the signed-in customer shops as themselves); else the cart token.
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bearer = req.headers().contains_key(AUTHORIZATION);
        let found = single(req, CART_TOKEN).and_then(|t| Ok((t, state(req)?)));
        let user = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let (token, state) = found?;
            let cart_token = match token {
                Some(token) if !bearer => token,
                _ => return Ok(Shopper::Customer(user.await?)),
            };
            match state
                .guests
                .shopper(&cart_token)
                .await
                .map_err(ApiError::from)?
            {
                Some(id) => Ok(Shopper::Guest { id, cart_token }),
                None => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "ordering.cart_token_invalid",
                    "this cart token is unknown or its cart has expired; open a new cart",
                )
                .into()),
            }
        })
    }
}

/// Who reads an order: a signed-in caller (the order's customer or an admin), the guest
/// whose order token it is, or both at once (a guest who has since signed in): either
/// credential that opens the order opens it.
pub(crate) struct OrderReader {
    caller: Option<AuthUser>,
    /// An order token, checked against the order named in the path.
    token: Option<String>,
}

impl OrderReader {
    /// Who the caller is for the order `id` and whether they are an admin: the guest when the
    /// order token is this order's, else the signed-in caller; a wrong order token alone is
    /// no such order.
    pub(crate) async fn of(&self, state: &State, id: OrderId) -> Result<(UserId, bool), ApiError> {
        if let Some(token) = &self.token {
            if let Some(guest) = state.guests.reader(id, token).await? {
                return Ok((guest, false));
            }
        }
        match &self.caller {
            Some(user) => Ok((user.user_id, user.is_admin())),
            None => Err(crate::application::OrderingError::OrderNotFound.into()),
        }
    }
}

impl FromRequest for OrderReader {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let token = single(req, ORDER_TOKEN);
        let bearer = req.headers().contains_key(AUTHORIZATION);
        let user = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let token = token?;
            // Without an order token the caller must be signed in (401 otherwise); a bearer
            // token that is sent must be valid.
            let caller = if bearer || token.is_none() {
                Some(user.await?)
            } else {
                None
            };
            Ok(OrderReader { caller, token })
        })
    }
}
