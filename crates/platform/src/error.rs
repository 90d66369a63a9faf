//! The API error: every failure leaves as RFC 9457 `application/problem+json` with a stable
//! snake_case `code`. 5xx bodies are generic; their cause goes to the log only.

use std::borrow::Cow;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// What a 503 for an unavailable dependency asks the client to wait.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

pub use kernel::error::FieldError;

/// The problem+json document.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody {
    /// `/problems/<code>`: the page that says what the code means and what to do.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Stable, machine-readable error code.
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    detail: Option<String>,
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
    /// The `WWW-Authenticate` challenge of a 401 (a bearer token's unless said otherwise).
    challenge: Option<&'static str>,
    source: Option<anyhow::Error>,
}

/// What a 401 asks for unless its handler says otherwise: an access token (RFC 6750 §3).
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"emporium\"";

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.code)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        if let Some(s) = &self.source {
            write!(f, ": {s:#}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            detail: Some(detail.into()),
            errors: Vec::new(),
            retry_after: None,
            challenge: None,
            source: None,
        }
    }

    pub fn bad_request(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn conflict(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn precondition_failed(
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, code, detail)
    }

    pub fn unprocessable(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// 422 with per-field messages.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "the request has invalid fields",
            )
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests, slow down",
            )
        }
    }

    pub fn unavailable(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    /// An unexpected failure: logged with its cause, shown as a generic 500, or as 503
    /// `service_unavailable` with `Retry-After` when a dependency is out (database, broker):
    /// the client may retry, and the request did nothing wrong.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        let source = source.into();
        if crate::fault::is_transient(&source) {
            return Self {
                source: Some(source),
                ..Self::unavailable(
                    "service_unavailable",
                    "a service this request needs is unavailable; try again shortly",
                )
                .with_retry_after(UNAVAILABLE_RETRY_AFTER_SECS)
            };
        }
        Self {
            source: Some(source),
            ..Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "")
        }
    }

    /// The `WWW-Authenticate` challenge this 401 carries (e.g. `Basic realm="…"` where a
    /// client authenticates with HTTP Basic, RFC 6749 §5.2).
    pub fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    pub fn body(&self) -> ProblemBody {
        let detail = if self.status.is_server_error() {
            None
        } else {
            self.detail.clone().filter(|d| !d.is_empty())
        };
        ProblemBody {
            problem_type: problem_type(&self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail,
            code: self.code.to_string(),
            errors: self.errors.clone(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %self, "request failed: dependency unavailable");
        } else if self.status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110 §15.5.2: a 401 says how to authenticate.
            response.insert_header((
                header::WWW_AUTHENTICATE,
                self.challenge.unwrap_or(BEARER_CHALLENGE),
            ));
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of a late body may still be on its way: this connection is done.
            response.force_close();
        }
        response.body(serde_json::to_vec(&self.body()).unwrap_or_default())
    }
}

impl From<validator::ValidationErrors> for ApiError {
    fn from(errors: validator::ValidationErrors) -> Self {
        let mut fields = Vec::new();
        collect_validation_errors("", &errors, &mut fields);
        fields.sort_by(|a, b| a.field.cmp(&b.field));
        Self::validation(fields)
    }
}

fn collect_validation_errors(
    prefix: &str,
    errors: &validator::ValidationErrors,
    out: &mut Vec<FieldError>,
) {
    use validator::ValidationErrorsKind;
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for e in list {
                    let message = e
                        .message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| default_message(&e.code));
                    out.push(FieldError::new(path.clone(), message));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect_validation_errors(&path, inner, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect_validation_errors(&format!("{path}[{index}]"), inner, out);
                }
            }
        }
    }
}

fn default_message(code: &str) -> String {
    match code {
        "length" => "has an invalid length".to_owned(),
        "range" => "is out of range".to_owned(),
        "email" => "must be a valid email address".to_owned(),
        "required" => "is required".to_owned(),
        other => format!("is invalid ({other})"),
    }
}

/// Shorthand for use cases and handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// A problem's `type`: a reference to the page about its code, which the server answers
/// (`GET /problems/<code>`; `docs/problems.md` is its text).
pub fn problem_type(code: &str) -> String {
    format!("/problems/{code}")
}
