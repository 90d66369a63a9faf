//! The admin console: a few static files under `/admin/`, embedded at build time and served
//! by the monolith and the gateway alike. The page talks to the public API only, through the
//! operation table `emporium openapi` generates from the OpenAPI document (`admin/api.js`).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// Only this origin: no script, style, image or request goes anywhere else, and no page may
/// frame the console.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../admin/index.html"),
    },
    Asset {
        path: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../admin/app.js"),
    },
    Asset {
        path: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../admin/api.js"),
    },
    Asset {
        path: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../admin/style.css"),
    },
];

/// `/admin` (to `/admin/`), `/admin/` and its files.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin").route(web::get().to(|| async {
        HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, "/admin/"))
            .finish()
    })))
    .service(web::resource("/admin/{file:.*}").route(web::get().to(serve)));
}

async fn serve(file: web::Path<String>) -> HttpResponse {
    let Some(asset) = ASSETS.iter().find(|a| a.path == file.as_str()) else {
        let missing = platform::error::ApiError::not_found("not_found", "no such file");
        return actix_web::ResponseError::error_response(&missing);
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        // The files change with the binary; a browser asks again rather than run an old one.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(asset.body)
}

/// The console's API client: every operation of the OpenAPI document by its id, with its
/// method, path and the query parameters it takes. `emporium openapi` writes it next to the
/// document; a test fails when it is stale.
pub fn client_js(openapi: &str) -> anyhow::Result<String> {
    let doc: serde_json::Value = serde_json::from_str(openapi)?;
    let mut operations = std::collections::BTreeMap::new();
    let paths = doc["paths"]
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("the OpenAPI document has no paths"))?;
    for (path, item) in paths {
        let Some(methods) = item.as_object() else {
            continue;
        };
        for (method, op) in methods {
            let Some(id) = op["operationId"].as_str() else {
                continue;
            };
            let params = |place: &str| -> Vec<String> {
                op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == place)
                    .filter_map(|p| p["name"].as_str().map(str::to_owned))
                    .collect()
            };
            operations.insert(
                id.to_owned(),
                serde_json::json!({
                    "method": method.to_uppercase(),
                    "path": path,
                    "query": params("query"),
                    "headers": params("header"),
                    "body": op.get("requestBody").is_some(),
                }),
            );
        }
    }
    let table = serde_json::to_string_pretty(&operations)?;
    Ok(format!(
        "// Generated from openapi/openapi.json by `emporium openapi`: do not edit.\n\
         // Every operation by its id: method, path, query parameters, headers, and whether it\n\
         // takes a JSON body.\n\
         export const operations = Object.freeze({table});\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_lists_every_operation_with_its_parameters() {
        let spec = r#"{"paths": {"/api/v1/things/{id}": {
            "get": {"operationId": "get_thing", "parameters": [
                {"name": "id", "in": "path"}, {"name": "limit", "in": "query"}]},
            "patch": {"operationId": "update_thing", "requestBody": {},
                "parameters": [{"name": "If-Match", "in": "header"}]}}}}"#;
        let js = client_js(spec).unwrap_or_else(|e| panic!("{e}"));
        let table = js
            .split_once("Object.freeze(")
            .and_then(|(_, rest)| rest.strip_suffix(");\n"))
            .unwrap_or_else(|| panic!("no table in {js}"));
        let table: serde_json::Value =
            serde_json::from_str(table).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            table["get_thing"],
            serde_json::json!({"method": "GET", "path": "/api/v1/things/{id}",
                "query": ["limit"], "headers": [], "body": false})
        );
        assert_eq!(
            table["update_thing"]["headers"],
            serde_json::json!(["If-Match"])
        );
        assert_eq!(table["update_thing"]["body"], true);
    }
}
