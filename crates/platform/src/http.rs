//! Request plumbing shared by every context: request ids, trace context, problem+json for
//! everything (including actix's own extractor and routing errors) and a validating JSON body
//! extractor.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use validator::Validate;

use crate::error::{ApiError, FieldError, PROBLEM_JSON};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// What a request carries into the events it causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// `X-Request-Id`, accepted from the caller or generated; the correlation id of events.
    pub request_id: String,
    /// W3C `traceparent`, accepted or started here.
    pub traceparent: String,
}

impl RequestContext {
    /// A context for work that no request started (timers, start-up).
    pub fn background() -> Self {
        Self {
            request_id: uuid::Uuid::now_v7().to_string(),
            traceparent: new_traceparent(),
        }
    }
}

impl FromRequest for RequestContext {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ctx = req
            .extensions()
            .get::<RequestContext>()
            .cloned()
            .unwrap_or_else(RequestContext::background);
        std::future::ready(Ok(ctx))
    }
}

fn accept_request_id(value: &HeaderValue) -> Option<String> {
    request_id_from(value.to_str().ok()?)
}

/// A caller's request id, if it is one we keep (at most 128 of `[A-Za-z0-9-_.:/+=]`).
pub fn request_id_from(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b));
    ok.then(|| s.to_owned())
}

fn accept_traceparent(value: &HeaderValue) -> Option<String> {
    traceparent_from(value.to_str().ok()?)
}

/// A caller's W3C `traceparent`, if well-formed, in lower case.
pub fn traceparent_from(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split('-').collect();
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let ok = parts.len() == 4
        && hex(parts[0], 2)
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1] != "00000000000000000000000000000000";
    ok.then(|| s.to_ascii_lowercase())
}

pub fn new_traceparent() -> String {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    format!("00-{trace}-{span}-01")
}

/// The route a handler reports for the metrics when the router matched none (a catch-all
/// such as the gateway's proxy), instead of `unmatched`.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// Middleware: request id + trace context in, access log, request id out, and every error
/// response rewritten as problem+json if it is not one already.
pub async fn request_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Read before an inner layer answers HEAD through GET.
    let method = method_label(req.method());
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(accept_request_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let span = tracing::info_span!(
        "http",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    // The caller's trace continues here; the request's own span becomes the parent of what it
    // causes (events carry it), or a fresh trace starts.
    let incoming = req.headers().get(TRACEPARENT).and_then(accept_traceparent);
    if let Some(parent) = &incoming {
        crate::trace_context::adopt(&span, parent);
    }
    let traceparent = crate::trace_context::traceparent_of(&span)
        .or(incoming)
        .unwrap_or_else(new_traceparent);
    req.extensions_mut().insert(RequestContext {
        request_id: request_id.clone(),
        traceparent,
    });
    // A NUL can be stored by neither backend's text columns (PostgreSQL refuses it): refuse
    // it at the door in paths and query strings, as it is refused in JSON bodies.
    if has_encoded_nul(req.path()) || has_encoded_nul(req.query_string()) {
        let problem = ApiError::bad_request(
            "invalid_characters",
            "the path or query contains a NUL character",
        );
        let response = req.into_response(problem.error_response());
        return Ok(response.map_into_boxed_body());
    }
    let started = Instant::now();
    // Handler and extractor errors arrive here as responses; an `Err` (from an inner
    // middleware) is rendered by its own `ResponseError`, which for ours is a problem.
    let response = next.call(req).instrument(span.clone()).await?;
    let mut response = as_problem(response.map_into_boxed_body());
    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    let elapsed_ms = elapsed * 1000.0;
    // Labelled by route pattern, never by raw path, so ids do not explode the series.
    let labelled = response
        .request()
        .extensions()
        .get::<RouteLabel>()
        .map(|l| l.0.to_owned());
    let route = labelled
        .or_else(|| response.request().match_pattern())
        .unwrap_or_else(|| "unmatched".to_owned());
    metrics::counter!(
        "emporium_http_requests_total",
        "method" => method,
        "route" => route.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(
        "emporium_http_request_duration_seconds",
        "method" => method,
        "route" => route
    )
    .record(elapsed);
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, elapsed_ms, "request finished");
        } else {
            tracing::info!(status, elapsed_ms, "request finished");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    // What a handler did not mark as shareable is the caller's own (or an error): no shared
    // cache keeps it, and the caller revalidates before reusing it.
    if !response.headers().contains_key(header::CACHE_CONTROL) {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
    }
    Ok(response)
}

/// The method as a metrics label, from a closed set: any other name a client invents is
/// `other` (each new label value would be a new series, kept for the life of the process).
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: a HEAD request is served by the resource's GET route (RFC 9110 §9.3.2). The
/// connection still knows it was HEAD, so the answer carries the GET's headers, its
/// `Content-Length` included, and no body.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == actix_web::http::Method::HEAD {
        req.head_mut().method = actix_web::http::Method::GET;
    }
    next.call(req).await
}

fn is_problem(res: &HttpResponse<BoxBody>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON))
}

fn as_problem(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if status.as_u16() < 400 || is_problem(res.response()) {
        return res;
    }
    let (req, old) = res.into_parts();
    let error = if status == StatusCode::TOO_MANY_REQUESTS {
        // The limiter says how long to wait (in whole seconds, possibly 0): never less than 1.
        let wait = ["retry-after", "x-ratelimit-after"]
            .iter()
            .find_map(|h| {
                old.headers()
                    .get(*h)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(1);
        ApiError::too_many_requests(wait.max(1))
    } else {
        status_problem(status)
    };
    let mut new = error.error_response();
    // The CORS answer (so a browser may read the problem) and the rate-limit fields stay.
    for (name, value) in old.headers().iter() {
        let kept = name == header::ALLOW
            || name == header::WWW_AUTHENTICATE
            || name == header::VARY
            || name.as_str().starts_with("access-control-")
            || name.as_str().starts_with("ratelimit");
        if kept {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(req, new)
}

/// The problem for a bare status produced outside our handlers (routing, extractors).
pub fn status_problem(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::not_found("not_found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            "this method is not allowed on this resource",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(status, "payload_too_large", "the request body is too large")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            status,
            "unsupported_media_type",
            "send the body as application/json",
        ),
        StatusCode::REQUEST_TIMEOUT => body_timed_out(),
        StatusCode::UNAUTHORIZED => ApiError::unauthorized("authentication required"),
        StatusCode::FORBIDDEN => ApiError::forbidden("not allowed"),
        StatusCode::TOO_MANY_REQUESTS => ApiError::too_many_requests(1),
        s if s.is_server_error() => ApiError::internal(anyhow::anyhow!("status {s}")),
        s => ApiError::new(
            s,
            "bad_request",
            s.canonical_reason().unwrap_or("bad request"),
        ),
    }
}

/// Extractor configuration that renders path, query and JSON errors as problems.
pub fn configure_extractors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::PathConfig::default()
            .error_handler(|err, _| ApiError::bad_request("invalid_path", err.to_string()).into()),
    )
    .app_data(
        web::QueryConfig::default()
            .error_handler(|err, _| ApiError::bad_request("invalid_query", err.to_string()).into()),
    )
    .app_data(
        web::JsonConfig::default()
            .limit(DEFAULT_BODY_LIMIT)
            .error_handler(|err, _| json_error(err).into()),
    )
    .app_data(
        web::FormConfig::default()
            .limit(16 * 1024)
            .error_handler(|err, _| form_error(err).into()),
    );
}

fn form_error(err: actix_web::error::UrlencodedError) -> ApiError {
    use actix_web::error::UrlencodedError as E;
    match err {
        E::Overflow { .. } | E::UnknownLength => status_problem(StatusCode::PAYLOAD_TOO_LARGE),
        E::ContentType => status_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        other => ApiError::bad_request("invalid_request", other.to_string()),
    }
}

fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::Overflow { .. } | E::OverflowKnownLength { .. } => {
            status_problem(StatusCode::PAYLOAD_TOO_LARGE)
        }
        E::ContentType => status_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        E::Deserialize(e) if e.is_data() => ApiError::bad_request("invalid_body", e.to_string()),
        other => ApiError::bad_request("malformed_json", other.to_string()),
    }
}

/// The body size limit, as app data (default 1 MiB).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// How long a client may take to send a request body, as app data (default 15 s): a client
/// that trickles its body cannot hold a connection and a worker's attention for longer.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// 408: the body did not arrive in time. The connection is closed after the answer.
pub fn body_timed_out() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "the request body did not arrive in time",
    )
}

/// Reads a whole body within `limit` bytes and `timeout` (413, 408, 400 otherwise).
pub async fn read_body<S, E>(
    payload: &mut S,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<web::Bytes, ApiError>
where
    S: futures::Stream<Item = Result<web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::bad_request("malformed_body", e.to_string()))?;
            if body.len() + chunk.len() > limit {
                return Err(status_problem(StatusCode::PAYLOAD_TOO_LARGE));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| body_timed_out())?
}

/// The declared `Content-Length`, if any, checked against `limit` before reading (413).
pub fn check_declared_length(req: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(status_problem(StatusCode::PAYLOAD_TOO_LARGE));
    }
    Ok(())
}

/// A JSON body, deserialised with the path of any bad field and validated: malformed JSON
/// is a 400, a well-formed body with a wrong or invalid field is a 422 naming the field.
#[derive(Debug)]
pub struct ValidJson<T>(pub T);

impl<T> ValidJson<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for ValidJson<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + Validate + 'static> FromRequest for ValidJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(DEFAULT_BODY_LIMIT);
        let json_type = req
            .mime_type()
            .ok()
            .flatten()
            .is_some_and(|m| m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"));
        let timeout = req
            .app_data::<BodyTimeout>()
            .map_or(DEFAULT_BODY_TIMEOUT, |t| t.0);
        let declared = check_declared_length(req, limit);
        let mut payload = payload.take();
        Box::pin(async move {
            if !json_type {
                return Err(status_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE).into());
            }
            declared?;
            let body = read_body(&mut payload, limit, timeout).await?;
            // Derived deserialisers accept an array of a struct's fields in order; a body is
            // an object, nothing else.
            if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return Err(ApiError::bad_request(
                    "malformed_json",
                    "the body must be a JSON object",
                )
                .into());
            }
            if has_nul_escape(&body) {
                return Err(ApiError::bad_request(
                    "invalid_characters",
                    "text in the body contains a NUL character",
                )
                .into());
            }
            let value = parse_json::<T>(&body)?;
            value.validate().map_err(ApiError::from)?;
            Ok(ValidJson(value))
        })
    }
}

fn has_encoded_nul(raw: &str) -> bool {
    raw.contains('\0')
        || raw
            .as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

/// True when a JSON text has a `\u0000` escape (a NUL inside a string), not counting an
/// escaped backslash followed by `u0000`.
fn has_nul_escape(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' {
            if body[i + 1..].starts_with(b"u0000") {
                return true;
            }
            // Skip the escaped character (a backslash escapes exactly one).
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// For `Option<Option<T>>` fields of partial updates: a field sent as `null` becomes
/// `Some(None)` (clear it), an absent one stays `None` (leave it) with `#[serde(default)]`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

pub use kernel::schema::whole_number;

/// Deserialises JSON, telling malformed documents (400) from wrong fields (422).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let first = serde_path_to_error::deserialize::<_, T>(&mut de);
    let err = match first {
        Ok(value) => {
            de.end().map_err(|e| malformed(&e))?;
            return Ok(value);
        }
        Err(err) => err,
    };
    if !err.inner().is_data() {
        return Err(malformed(err.inner()));
    }
    // JSON Schema calls `250.0` an integer, so a client may send a whole number that way:
    // read again with such numbers as integers (only when the first reading refused the body,
    // so well-formed requests pay nothing).
    if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body) {
        if integral_numbers_as_integers(&mut value) {
            return serde_path_to_error::deserialize::<_, T>(value).map_err(|e| invalid_field(&e));
        }
    }
    Err(invalid_field(&err))
}

fn invalid_field<E: std::fmt::Display>(err: &serde_path_to_error::Error<E>) -> ApiError {
    let path = err.path().to_string();
    let field = if path == "." { "body".to_owned() } else { path };
    let message = clean_serde_message(&err.inner().to_string());
    ApiError::validation(vec![FieldError::new(field, message)])
}

/// Rewrites every number with a zero fraction that fits an `i64` as that integer; true when
/// any was rewritten.
fn integral_numbers_as_integers(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && (-9.0e18..=9.0e18).contains(&f) => {
                *value = serde_json::Value::from(f as i64);
                true
            }
            _ => false,
        },
        serde_json::Value::Array(items) => items
            .iter_mut()
            .fold(false, |any, v| integral_numbers_as_integers(v) | any),
        serde_json::Value::Object(map) => map
            .values_mut()
            .fold(false, |any, v| integral_numbers_as_integers(v) | any),
        _ => false,
    }
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
}

/// serde's messages end with a position ("at line 1 column 9"); the field path says more.
fn clean_serde_message(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        amount: i64,
    }

    #[test]
    fn malformed_json_is_400_and_wrong_fields_are_422_with_their_path() {
        let e = parse_json::<Body>(b"{").err().map(|e| e.code().to_owned());
        assert_eq!(e.as_deref(), Some("malformed_json"));
        let e = parse_json::<Body>(br#"{"inner":{"amount":1.5}}"#).err();
        let fields: Vec<String> = e
            .iter()
            .flat_map(|e| e.errors().iter().map(|f| f.field.clone()))
            .collect();
        assert_eq!(fields, vec!["inner.amount".to_owned()]);
        assert!(parse_json::<Body>(br#"{"inner":{"amount":1}} x"#).is_err());
    }

    #[test]
    fn whole_numbers_written_with_a_zero_fraction_are_integers() {
        #[derive(Debug, serde::Deserialize)]
        struct Counts {
            quantity: u32,
            list: Vec<i64>,
        }
        let counts = parse_json::<Counts>(br#"{"quantity":250.0,"list":[1,2.0,-3e0]}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((counts.quantity, counts.list), (250, vec![1, 2, -3]));
        for refused in [
            &br#"{"quantity":2.5,"list":[]}"#[..],
            br#"{"quantity":-1.0,"list":[]}"#,
            br#"{"quantity":1e300,"list":[]}"#,
        ] {
            let e = parse_json::<Counts>(refused).err();
            assert_eq!(e.map(|e| e.status_code().as_u16()), Some(422));
        }
        let e = parse_json::<Counts>(br#"{"quantity":2.0,"list":[]} x"#).err();
        assert!(e.is_some());
    }

    #[test]
    fn nul_characters_are_found_in_json_escapes_and_percent_encoding() {
        assert!(has_nul_escape(br#"{"name":"a\u0000b"}"#));
        assert!(!has_nul_escape(br#"{"name":"a\\u0000b"}"#));
        assert!(has_nul_escape(br#"{"name":"a\\\u0000b"}"#));
        assert!(!has_nul_escape(br#"{"name":"a\u0001b\"}"#));
        assert!(has_encoded_nul("q=a%00b"));
        assert!(!has_encoded_nul("q=a%200"));
    }

    #[test]
    fn request_ids_and_traceparents_are_checked() {
        assert!(accept_request_id(&HeaderValue::from_static("abc-123")).is_some());
        assert!(accept_request_id(&HeaderValue::from_static("a b")).is_none());
        assert!(accept_traceparent(&HeaderValue::from_static(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ))
        .is_some());
        assert!(accept_traceparent(&HeaderValue::from_static("00-zz-00-01")).is_none());
        assert!(accept_traceparent(
            &HeaderValue::from_str(&new_traceparent()).unwrap_or(HeaderValue::from_static("x"))
        )
        .is_some());
    }
}

#[cfg(test)]
mod whole_number_tests {
    #[derive(serde::Deserialize)]
    struct Q {
        #[serde(deserialize_with = "super::whole_number")]
        n: i64,
    }

    fn n(json: &str) -> Option<i64> {
        serde_json::from_str::<Q>(json).ok().map(|q| q.n)
    }

    #[test]
    fn takes_integers_written_either_way_and_refuses_fractions() {
        assert_eq!(n(r#"{"n": 2}"#), Some(2));
        assert_eq!(n(r#"{"n": 2.0}"#), Some(2));
        assert_eq!(n(r#"{"n": -3e0}"#), Some(-3));
        assert_eq!(n(r#"{"n": 2.5}"#), None);
        assert_eq!(n(r#"{"n": 1e30}"#), None);
        assert_eq!(n(r#"{"n": "2"}"#), None);
    }
}
