//! Promotion codes, as admins manage them.

use std::sync::Arc;

use kernel::{Clock, FieldError};
use platform::pagination::{Page, PageRequest};

use super::ports::PromotionBook;
use super::OrderingError;
use crate::domain::promotion::{Benefit, Promotion, PromotionCode, PromotionTerms};

pub(crate) struct Promotions {
    pub(crate) book: Arc<dyn PromotionBook>,
    pub(crate) clock: Arc<dyn Clock>,
}

fn code(raw: &str) -> Result<PromotionCode, OrderingError> {
    PromotionCode::parse(raw).map_err(|m| OrderingError::Invalid(vec![FieldError::new("code", m)]))
}

impl Promotions {
    /// `WELCOME-10`, 10 % off once per customer, where a shop has no code yet (`emporium
    /// seed`); how many were created.
    pub(crate) async fn seed_demo(&self) -> Result<usize, OrderingError> {
        if !self
            .book
            .list(&PageRequest::first(1))
            .await?
            .items
            .is_empty()
        {
            return Ok(0);
        }
        let terms = PromotionTerms {
            benefit: Benefit::Percent(1000),
            min_subtotal: vec![],
            starts_at: None,
            ends_at: None,
            max_uses: None,
            max_uses_per_customer: Some(1),
        };
        match self.create("WELCOME-10", terms).await {
            Ok(_) => Ok(1),
            Err(OrderingError::DuplicatePromotion) => Ok(0),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn create(
        &self,
        raw_code: &str,
        terms: PromotionTerms,
    ) -> Result<Promotion, OrderingError> {
        let code = code(raw_code)?;
        let promotion = Promotion::new(code, terms, self.clock.now()).map_err(|errors| {
            OrderingError::Invalid(
                errors
                    .into_iter()
                    .map(|(field, message)| FieldError::new(field, message))
                    .collect(),
            )
        })?;
        if self.book.create(&promotion).await? {
            Ok(promotion)
        } else {
            Err(OrderingError::DuplicatePromotion)
        }
    }

    pub(crate) async fn list(&self, page: &PageRequest) -> Result<Page<Promotion>, OrderingError> {
        Ok(self.book.list(page).await?)
    }

    /// An unknown or malformed code is 404 alike.
    pub(crate) async fn get(&self, raw_code: &str) -> Result<Promotion, OrderingError> {
        let Ok(code) = PromotionCode::parse(raw_code) else {
            return Err(OrderingError::PromotionNotFound);
        };
        self.book
            .get(&code)
            .await?
            .ok_or(OrderingError::PromotionNotFound)
    }

    /// Stops the code applying to new orders; orders it discounted keep their discount.
    pub(crate) async fn withdraw(&self, raw_code: &str) -> Result<Promotion, OrderingError> {
        let promotion = self.get(raw_code).await?;
        self.book
            .withdraw(&promotion.code, self.clock.now())
            .await?;
        self.get(raw_code).await
    }
}
