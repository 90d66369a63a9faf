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

/// A page answers as JSON with, when there is a next page, a `Link: <…>; rel="next"` field
/// (RFC 8288) beside `next_cursor`: the same request with that cursor.
impl<T: Serialize> actix_web::Responder for Page<T> {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, req: &actix_web::HttpRequest) -> actix_web::HttpResponse {
        let mut res = actix_web::HttpResponse::Ok();
        if let Some(link) = self.next_cursor.as_deref().map(|c| next_link(req, c)) {
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&link) {
                res.insert_header((actix_web::http::header::LINK, value));
            }
        }
        res.json(&self)
    }
}

/// `<path?query with cursor=…>; rel="next"`: the request's own path and query, its cursor
/// replaced (cursors are base64url, nothing to escape).
pub fn next_link(req: &actix_web::HttpRequest, cursor: &str) -> String {
    let mut query: Vec<&str> = req
        .query_string()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("cursor=") && *p != "cursor")
        .collect();
    let pair = format!("cursor={cursor}");
    query.push(&pair);
    format!("<{}?{}>; rel=\"next\"", req.path(), query.join("&"))
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

    /// Decodes a cursor whose parts must have the kinds in `shape`: anything else (not
    /// base64url JSON, a wrong number of parts, a part of the wrong kind, control
    /// characters) is 400 `invalid_cursor`, never a failure further in.
    pub fn decode(raw: &str, shape: &[Part]) -> Result<Self, ApiError> {
        let bad =
            || ApiError::bad_request("invalid_cursor", "the cursor is not one this API issued");
        if raw.len() > 512 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let parts: Vec<String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if parts.len() != shape.len() || !parts.iter().zip(shape).all(|(p, k)| k.accepts(p)) {
            return Err(bad());
        }
        Ok(Self(parts))
    }
}

/// The kind of one cursor part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A whole number (a timestamp in microseconds, an amount).
    Int,
    /// A UUID, as the API writes ids.
    Id,
    /// Text without control characters (a name, a slug).
    Text,
}

impl Part {
    fn accepts(self, raw: &str) -> bool {
        match self {
            Part::Int => raw.parse::<i64>().is_ok(),
            Part::Id => uuid::Uuid::parse_str(raw).is_ok(),
            Part::Text => raw.len() <= 400 && !raw.chars().any(char::is_control),
        }
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
        shape: &[Part],
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
            Some(raw) => Some(Cursor::decode(raw, shape)?),
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
        let id = uuid::Uuid::now_v7().to_string();
        let c = Cursor::new(vec!["10".into(), id.clone()]);
        let shape = [Part::Int, Part::Id];
        assert_eq!(Cursor::decode(&c.encode(), &shape).ok(), Some(c.clone()));
        assert!(Cursor::decode(&c.encode(), &[Part::Int]).is_err());
        assert!(Cursor::decode("!!!", &shape).is_err());
        assert!(Cursor::decode("bm90IGpzb24", &shape).is_err());
        // Well-formed JSON with parts of the wrong kind: `["x","y"]`.
        let wrong = Cursor::new(vec!["x".into(), "y".into()]).encode();
        assert!(Cursor::decode(&wrong, &shape).is_err());
        let wrong_id = Cursor::new(vec!["10".into(), "y".into()]).encode();
        assert!(Cursor::decode(&wrong_id, &shape).is_err());
        let nul = Cursor::new(vec!["a\u{0}b".into()]).encode();
        assert!(Cursor::decode(&nul, &[Part::Text]).is_err());
        let text = Cursor::new(vec!["Blue mug".into()]).encode();
        assert!(Cursor::decode(&text, &[Part::Text]).is_ok());
    }

    #[test]
    fn limits_are_bounded() {
        assert!(PageRequest::from_query(Some(0), None, &[Part::Id]).is_err());
        assert!(PageRequest::from_query(Some(101), None, &[Part::Id]).is_err());
        assert_eq!(
            PageRequest::from_query(None, None, &[Part::Id])
                .map(|p| p.limit)
                .ok(),
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
