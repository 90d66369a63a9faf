//! Cursor pagination: `{items, next_cursor}` lists with a bounded limit and opaque cursors.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// A page of results. `next_cursor` is absent on the last page.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// An opaque position in a list: the sort key parts of the last item shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(Vec<String>);

impl Cursor {
    pub fn new(parts: Vec<String>) -> Self {
        Self(parts)
    }

    pub fn parts(&self) -> &[String] {
        &self.0
    }

    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(&self.0).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes a cursor that must carry exactly `arity` parts.
    pub fn decode(raw: &str, arity: usize) -> Result<Self, ApiError> {
        let bad =
            || ApiError::bad_request("invalid_cursor", "the cursor is not one this API issued");
        if raw.len() > 512 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let parts: Vec<String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if parts.len() != arity {
            return Err(bad());
        }
        Ok(Self(parts))
    }
}

/// `limit` and `cursor` query parameters, before checking.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A checked page request.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Cursor>,
}

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }

    pub fn from_query(
        limit: Option<i64>,
        cursor: Option<&str>,
        arity: usize,
    ) -> Result<Self, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=i64::from(MAX_LIMIT)).contains(&n) => n as u32,
            Some(_) => {
                return Err(ApiError::validation(vec![crate::error::FieldError::new(
                    "limit",
                    format!("must be between 1 and {MAX_LIMIT}"),
                )]))
            }
        };
        let after = match cursor {
            None | Some("") => None,
            Some(raw) => Some(Cursor::decode(raw, arity)?),
        };
        Ok(Self { limit, after })
    }

    /// Rows to fetch: one more than the limit, to learn whether a next page exists.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// Trims the extra row and builds the cursor from the last row kept.
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> Vec<String>) -> Page<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|last| Cursor::new(key(last)).encode())
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor::new(vec!["10".into(), "abc".into()]);
        assert_eq!(Cursor::decode(&c.encode(), 2).ok(), Some(c.clone()));
        assert!(Cursor::decode(&c.encode(), 1).is_err());
        assert!(Cursor::decode("!!!", 2).is_err());
        assert!(Cursor::decode("bm90IGpzb24", 2).is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert!(PageRequest::from_query(Some(0), None, 1).is_err());
        assert!(PageRequest::from_query(Some(101), None, 1).is_err());
        assert_eq!(
            PageRequest::from_query(None, None, 1).map(|p| p.limit).ok(),
            Some(20)
        );
    }

    #[test]
    fn finish_emits_a_cursor_only_when_more_rows_exist() {
        let req = PageRequest::first(2);
        let page = req.finish(vec![1, 2, 3], |n| vec![n.to_string()]);
        assert_eq!(page.items, vec![1, 2]);
        assert!(page.next_cursor.is_some());
        let page = req.finish(vec![1, 2], |n| vec![n.to_string()]);
        assert!(page.next_cursor.is_none());
    }
}
