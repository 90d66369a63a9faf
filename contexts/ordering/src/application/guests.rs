//! Guests: a visitor opens a cart with a cart token (no account), checks it out with an email
//! address, and reads the order with the order token the confirmation links to. Both tokens
//! are secrets of 256 bits (an order token is derived from its cart's), kept only as hashes.

use std::sync::Arc;
use std::time::Duration;

use kernel::id::{OrderId, UserId};
use kernel::Clock;
use platform::secret::{hash_secret, looks_like_secret, new_secret};
use sha2::{Digest, Sha256};

use super::ports::GuestBook;
use super::OrderingError;

pub(crate) struct Guests {
    pub(crate) book: Arc<dyn GuestBook>,
    pub(crate) clock: Arc<dyn Clock>,
    /// How long a guest cart lives (`EMPORIUM_GUEST_CART_TTL_SECS`).
    pub(crate) cart_ttl: Duration,
}

/// A guest cart just opened: the token is shown this once.
pub(crate) struct OpenedCart {
    pub(crate) cart_token: String,
    pub(crate) expires_at: kernel::Timestamp,
}

/// The order token of the order `order` placed from the cart `cart_token` opens: the same for
/// a replay of the checkout (so a retried request gets a token that works), unguessable
/// without the cart token, and different for every order of the cart.
pub(crate) fn order_token(cart_token: &str, order: OrderId) -> String {
    let mut digest = Sha256::new();
    digest.update(b"emporium order token\0");
    digest.update(cart_token.as_bytes());
    digest.update(b"\0");
    digest.update(order.to_string().as_bytes());
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.finalize())
}

/// Who a guest is for a promotion's per-customer limit: one holder per email address, so a
/// new cart does not make a new customer of the same person.
pub(crate) fn promotion_holder(email: &kernel::EmailAddress) -> UserId {
    let digest = Sha256::digest(format!("emporium guest promotion holder\0{email}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    UserId::from_uuid(uuid::Uuid::from_bytes(bytes))
}

impl Guests {
    pub(crate) async fn open(&self) -> Result<OpenedCart, OrderingError> {
        let cart_token = new_secret();
        let now = self.clock.now();
        let expires_at = now.plus(self.cart_ttl);
        self.book
            .open(&hash_secret(&cart_token), UserId::new(), now, expires_at)
            .await?;
        Ok(OpenedCart {
            cart_token,
            expires_at,
        })
    }

    /// The guest a cart token stands for; unknown, malformed or expired: `None`.
    pub(crate) async fn shopper(&self, cart_token: &str) -> Result<Option<UserId>, OrderingError> {
        if !looks_like_secret(cart_token) {
            return Ok(None);
        }
        Ok(self
            .book
            .guest(&hash_secret(cart_token), self.clock.now())
            .await?)
    }

    /// The guest who placed `order`, when `order_token` is its token; anyone else: `None`.
    pub(crate) async fn reader(
        &self,
        order: OrderId,
        order_token: &str,
    ) -> Result<Option<UserId>, OrderingError> {
        if !looks_like_secret(order_token) {
            return Ok(None);
        }
        let presented = hash_secret(order_token);
        Ok(match self.book.order(order).await? {
            // Both sides are hashes of 256-bit secrets: comparing them leaks nothing usable.
            Some((guest, kept)) if kept == presented => Some(guest),
            _ => None,
        })
    }

    /// Deletes expired guest carts (in batches); how many.
    pub(crate) async fn sweep(&self) -> Result<u64, OrderingError> {
        let now = self.clock.now();
        let mut total = 0;
        loop {
            let swept = self.book.sweep(now, 500).await?;
            total += swept;
            if swept < 500 {
                return Ok(total);
            }
        }
    }
}
