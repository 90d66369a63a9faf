//! Response compression: gzip or brotli as the client's `Accept-Encoding` prefers, by actix's
//! `Compress`, except for bodies under [`MIN_BYTES`] (the encoding's framing costs more than it
//! saves) and media that is compressed already (images other than SVG, audio, video, archives,
//! web fonts). `Compress` leaves alone any answer that has a `Content-Encoding`, so the layer
//! inside it marks those answers `identity` and the layer outside it takes the mark off again.

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::ResponseError;
use platform::error::{ApiError, PROBLEM_JSON};

/// Bodies shorter than this are sent as they are.
pub const MIN_BYTES: u64 = 1024;

const MARK: HeaderValue = HeaderValue::from_static("identity");

/// Inside `Compress`: marks what it should not encode.
pub async fn leave_alone(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let small = matches!(res.response().body().size(), BodySize::Sized(n) if n < MIN_BYTES);
    let packed = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(already_compressed);
    if (small || packed) && !res.headers().contains_key(header::CONTENT_ENCODING) {
        res.headers_mut().insert(header::CONTENT_ENCODING, MARK);
    }
    Ok(res)
}

/// Outside `Compress`: takes the mark off, and words `Compress`'s own refusal (a client that
/// accepts none of the encodings, not even `identity`) as a problem like every other.
pub async fn unmark(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let mut res = next.call(req).await?.map_into_boxed_body();
    if res.headers().get(header::CONTENT_ENCODING) == Some(&MARK) {
        res.headers_mut().remove(header::CONTENT_ENCODING);
    }
    if res.status() == StatusCode::NOT_ACCEPTABLE
        && !res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
    {
        let problem = ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "none of the content codings in Accept-Encoding is available: gzip, br and identity are",
        );
        let (req, _) = res.into_parts();
        let mut answer = problem.error_response();
        answer
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        return Ok(ServiceResponse::new(req, answer));
    }
    Ok(res)
}

fn already_compressed(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/').unwrap_or((&essence, ""));
    match kind {
        "image" => subtype != "svg+xml",
        "audio" | "video" => true,
        "font" => matches!(subtype, "woff" | "woff2"),
        "application" => matches!(
            subtype,
            "zip" | "gzip" | "x-gzip" | "zstd" | "x-bzip2" | "x-xz" | "x-7z-compressed" | "pdf"
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::already_compressed;

    #[test]
    fn media_that_is_compressed_already_is_told_apart() {
        for packed in [
            "image/png",
            "image/webp; q=1",
            "video/mp4",
            "font/woff2",
            "application/zip",
        ] {
            assert!(already_compressed(packed), "{packed}");
        }
        for plain in [
            "application/json",
            "application/problem+json",
            "text/html; charset=utf-8",
            "image/svg+xml",
            "application/javascript",
            "text/css",
        ] {
            assert!(!already_compressed(plain), "{plain}");
        }
    }
}
