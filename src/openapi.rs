//! The merged OpenAPI document: the root's operations endpoints plus every context's fragment,
//! with the conventions every operation shares applied once (`conventions`).

mod conventions;
mod webhooks;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;
use utoipa::Modify;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Emporium",
        description = "Commerce backend: identity, catalog, ordering, shipping and notifications as one API.",
        version = "1.0.0",
        license(name = "Apache-2.0")
    ),
    paths(crate::ops::live, crate::ops::ready, crate::ops::metrics, crate::ops::messaging, crate::ops::list_dead_letters, crate::ops::replay_dead_letter),
    components(schemas(platform::error::ProblemBody, kernel::error::FieldError)),
    modifiers(&BearerAuth),
    tags((name = "operations", description = "Health and operations"))
)]
struct RootDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Responses every operation can give, added once here rather than on each handler:
/// 429 (rate limit) everywhere, 413 and 415 wherever a body is read.
fn add_common_responses(openapi: &mut OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                platform::error::PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            responses.entry("429".to_owned()).or_insert_with(|| {
                problem("Too many requests from this address (see Retry-After)").into()
            });
            responses.entry("503".to_owned()).or_insert_with(|| {
                problem("A dependency (a database, the bus) is unavailable; try again later (see Retry-After)").into()
            });
            if operation.request_body.is_some() {
                responses
                    .entry("413".to_owned())
                    .or_insert_with(|| problem("Body too large").into());
                responses
                    .entry("415".to_owned())
                    .or_insert_with(|| problem("Body is not application/json").into());
            }
        }
    }
}

/// The whole API, as `emporium openapi` writes it and `/openapi.json` serves it.
pub fn document() -> OpenApi {
    let mut doc = <RootDoc as utoipa::OpenApi>::openapi();
    for fragment in [
        identity::openapi(),
        catalog::openapi(),
        ordering::openapi(),
        shipping::openapi(),
        notifications::openapi(),
        <crate::dashboard::ApiDoc as utoipa::OpenApi>::openapi(),
    ] {
        doc.merge(fragment);
    }
    add_common_responses(&mut doc);
    doc
}

pub fn to_json() -> anyhow::Result<String> {
    let mut value = serde_json::to_value(document())?;
    camel_case_links(&mut value);
    conventions::apply(&mut value);
    webhooks::describe(&mut value);
    let mut text = serde_json::to_string_pretty(&value)?;
    text.push('\n');
    Ok(text)
}

/// utoipa 5 writes a response link's fields as `operation_id` and `request_body`; OpenAPI
/// names them `operationId` and `requestBody` (tools ignore links otherwise).
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let responses = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|r| r.values_mut());
    for response in responses {
        let Some(links) = response.get_mut("links").and_then(|l| l.as_object_mut()) else {
            continue;
        };
        for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
            for (from, to) in [
                ("operation_id", "operationId"),
                ("request_body", "requestBody"),
            ] {
                if let Some(v) = link.remove(from) {
                    link.insert(to.to_owned(), v);
                }
            }
        }
    }
}

/// Interactive docs at `/docs/`, every asset served from the binary (no CDN), reading the
/// document from `/openapi.json`.
pub fn swagger_ui() -> utoipa_swagger_ui::SwaggerUi {
    utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
        .config(utoipa_swagger_ui::Config::new(["/openapi.json"]))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value;

    use super::conventions::for_each_operation;

    fn doc() -> Value {
        let text = super::to_json().unwrap_or_else(|e| panic!("{e:#}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn refs(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.insert(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = doc();
        let mut found = BTreeSet::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{r}: not local"));
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn every_operation_states_who_may_call_it_and_its_path_parameters_are_required() {
        let mut doc = doc();
        let schemes: BTreeSet<String> = doc["components"]["securitySchemes"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let mut public = Vec::new();
        for_each_operation(&mut doc, |path, method, op| {
            let security = op["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path}: no security"));
            if security.is_empty() {
                public.push(format!("{method} {path}"));
            }
            for requirement in security {
                for scheme in requirement.as_object().into_iter().flat_map(|m| m.keys()) {
                    assert!(
                        schemes.contains(scheme),
                        "{method} {path}: {scheme} is not defined"
                    );
                }
            }
            for param in op["parameters"].as_array().into_iter().flatten() {
                if param["in"] == "path" {
                    assert_eq!(
                        param["required"], true,
                        "{method} {path}: {}",
                        param["name"]
                    );
                    assert!(path.contains(&format!(
                        "{{{}}}",
                        param["name"].as_str().unwrap_or_default()
                    )));
                }
            }
            for status in ["429", "503"] {
                assert!(
                    op["responses"][status]["headers"]["Retry-After"].is_object(),
                    "{method} {path}: {status} without Retry-After"
                );
            }
        });
        // The public operations, and only they, carry `security: []`.
        assert!(
            public.contains(&"post /api/v1/identity/tokens".to_owned()),
            "{public:?}"
        );
        assert!(
            public.contains(&"get /api/v1/catalog/products".to_owned()),
            "{public:?}"
        );
        assert!(
            !public.contains(&"get /api/v1/ordering/cart".to_owned()),
            "{public:?}"
        );
        assert!(doc["servers"][0]["url"].is_string());
        assert!(doc["info"]["contact"].is_object());
    }

    #[test]
    fn links_name_operations_and_parameters_that_exist_and_walk_the_checkout_to_tracking() {
        let mut doc = doc();
        let mut params: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut links: Vec<(String, String, Value)> = Vec::new();
        for_each_operation(&mut doc, |_, _, op| {
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            let names = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect();
            params.insert(id.clone(), names);
            for response in op["responses"]
                .as_object()
                .into_iter()
                .flat_map(|r| r.values())
            {
                for (name, link) in response["links"].as_object().into_iter().flatten() {
                    links.push((id.clone(), name.clone(), link.clone()));
                }
            }
        });
        for (from, name, link) in &links {
            let to = link["operationId"].as_str().unwrap_or_default();
            let known = params
                .get(to)
                .unwrap_or_else(|| panic!("{from} → {name}: no operation {to}"));
            for param in link["parameters"]
                .as_object()
                .into_iter()
                .flat_map(|p| p.keys())
            {
                assert!(
                    known.contains(param),
                    "{from} → {name}: {to} has no parameter {param}"
                );
            }
        }
        let edge = |a: &str, b: &str| {
            links
                .iter()
                .any(|(from, _, link)| from == a && link["operationId"] == b)
        };
        for (a, b) in [
            ("get_product", "add_cart_item"),
            ("add_cart_item", "place_order"),
            ("place_order", "get_order"),
            ("get_order", "list_shipments"),
            ("list_shipments", "get_shipment"),
            ("get_shipment", "track_shipment"),
        ] {
            assert!(edge(a, b), "no link {a} → {b}");
        }
    }

    #[test]
    fn country_and_currency_codes_are_two_named_schemas() {
        let doc = doc();
        let text = doc.to_string();
        // The list is stated once, in its schema.
        assert_eq!(text.matches("\"ZW\"").count(), 1, "the country list once");
        assert_eq!(text.matches("\"ZWG\"").count(), 1, "the currency list once");
        assert!(doc["components"]["schemas"]["Country"]["enum"].is_array());
        assert!(doc["components"]["schemas"]["Currency"]["enum"].is_array());
        let quote = &doc["paths"]["/api/v1/ordering/cart/quote"]["get"]["parameters"][0];
        assert_eq!(quote["required"], true);
        assert_eq!(quote["schema"]["$ref"], "#/components/schemas/Country");
    }
}
