//! Who is shopping: a signed-in customer (a bearer token) or a guest (the cart token of a
//! guest cart, `X-Cart-Token`); and who may read an order: its customer, an admin, or the
//! guest holding its order token (`X-Order-Token`).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
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
/// (the edge and this context must not read two different tokens).
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

/// The guest credential `name` (a cart or order token), refusing one sent beside a bearer
/// token: a request speaks for one shopper.
fn guest_token(req: &HttpRequest, name: &str) -> Result<Option<String>, ApiError> {
    let token = single(req, name)?;
    if token.is_some()
        && req
            .headers()
            .contains_key(actix_web::http::header::AUTHORIZATION)
    {
        return Err(ApiError::bad_request(
            "ambiguous_request",
            format!("send a bearer token or {name}, not both"),
        ));
    }
    Ok(token)
}

fn state(req: &HttpRequest) -> Result<web::Data<State>, ApiError> {
    req.app_data::<web::Data<State>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("ordering state not configured")))
}

impl FromRequest for Shopper {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let found = guest_token(req, CART_TOKEN).and_then(|t| Ok((t, state(req)?)));
        let user = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let (token, state) = found?;
            let Some(cart_token) = token else {
                return Ok(Shopper::Customer(user.await?));
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

/// Who reads an order: a signed-in caller (the order's customer or an admin) or the guest
/// whose order token it is.
pub(crate) enum OrderReader {
    Caller(AuthUser),
    /// An order token, checked against the order named in the path.
    Guest(String),
}

impl OrderReader {
    /// Who the caller is for the order `id` and whether they are an admin; a wrong order
    /// token is no such order.
    pub(crate) async fn of(&self, state: &State, id: OrderId) -> Result<(UserId, bool), ApiError> {
        match self {
            OrderReader::Caller(user) => Ok((user.user_id, user.is_admin())),
            OrderReader::Guest(token) => match state.guests.reader(id, token).await? {
                Some(guest) => Ok((guest, false)),
                None => Err(crate::application::OrderingError::OrderNotFound.into()),
            },
        }
    }
}

impl FromRequest for OrderReader {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let token = guest_token(req, ORDER_TOKEN);
        let user = AuthUser::from_request(req, payload);
        Box::pin(async move {
            match token? {
                Some(token) => Ok(OrderReader::Guest(token)),
                None => Ok(OrderReader::Caller(user.await?)),
            }
        })
    }
}
