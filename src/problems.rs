//! The pages a problem's `type` refers to: `GET /problems/<code>` answers the row of
//! `docs/problems.md` for that code as a small HTML page (and `GET /problems` lists them all),
//! so the URI in every error answer resolves, on every process and on the gateway.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use platform::error::ApiError;

const SOURCE: &str = include_str!("../docs/problems.md");

/// One problem type: its status and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemType {
    pub status: u16,
    pub meaning: &'static str,
}

/// Every documented code, from the table in `docs/problems.md`.
pub fn catalogue() -> &'static BTreeMap<&'static str, ProblemType> {
    static TABLE: OnceLock<BTreeMap<&'static str, ProblemType>> = OnceLock::new();
    TABLE.get_or_init(|| {
        SOURCE
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line
                    .strip_prefix('|')?
                    .strip_suffix('|')?
                    .split('|')
                    .map(str::trim)
                    .collect();
                let [code, status, meaning] = cells[..] else {
                    return None;
                };
                let status = status.parse().ok()?;
                Some((code, ProblemType { status, meaning }))
            })
            .collect()
    })
}

/// What `code` means, if it is documented.
pub fn describe(code: &str) -> Option<ProblemType> {
    catalogue().get(code).copied()
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/problems").route(web::get().to(index)))
        .service(web::resource("/problems/{code}").route(web::get().to(page)));
}

async fn page(code: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let code = code.into_inner();
    let problem =
        describe(&code).ok_or_else(|| ApiError::not_found("not_found", "no such problem type"))?;
    let body = format!(
        "<h1><code>{code}</code></h1>\n<p>HTTP {status} {reason}</p>\n<p>{meaning}</p>\n<p><a href=\"/problems\">Every problem type</a></p>",
        code = escape(&code),
        status = problem.status,
        reason = actix_web::http::StatusCode::from_u16(problem.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or_default(),
        meaning = escape(problem.meaning),
    );
    Ok(html(&format!("Problem: {code}"), &body))
}

async fn index() -> HttpResponse {
    let rows: String = catalogue()
        .iter()
        .map(|(code, p)| {
            format!(
                "<tr><td><a href=\"/problems/{code}\"><code>{code}</code></a></td><td>{}</td><td>{}</td></tr>\n",
                p.status,
                escape(p.meaning)
            )
        })
        .collect();
    html(
        "Problem types",
        &format!("<h1>Problem types</h1>\n<table>\n<tr><th>code</th><th>status</th><th>meaning</th></tr>\n{rows}</table>"),
    )
}

fn html(title: &str, body: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}\n</body></html>\n",
            escape(title)
        ))
}

/// The table's text is plain, with `code` spans in backticks.
fn escape(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let mut out = String::with_capacity(escaped.len());
    for (i, part) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(part);
            out.push_str("</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_reads_every_row_of_the_table() {
        let rows = SOURCE
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| code"))
            .count();
        assert_eq!(
            catalogue().len(),
            rows,
            "a row did not parse, or a code is twice"
        );
        for (code, p) in catalogue() {
            assert!((400..=599).contains(&p.status), "{code}: {}", p.status);
            assert!(
                code.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.'),
                "{code}"
            );
            assert!(!p.meaning.is_empty(), "{code}");
        }
        assert_eq!(describe("ordering.cart_empty").map(|p| p.status), Some(422));
    }
}
