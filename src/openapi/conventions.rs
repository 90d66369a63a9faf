//! What every operation of the API has in common, applied once to the merged document instead
//! of being repeated on each handler (where it would drift): who may call it (`security`),
//! required path parameters, the headers every answer carries (`X-Request-Id`, the rate-limit
//! fields, `Retry-After` on 429 and 503), the servers, contact and licence, and the country and
//! currency codes as two named schemas rather than one inline enum per field (which generators
//! turn into one enum class per field).

use serde_json::{json, Map, Value};

/// The operation keys of a path item (OpenAPI 3.1).
pub(crate) const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

pub(super) fn apply(doc: &mut Value) {
    info(doc);
    components(doc);
    name_code_lists(doc);
    name_page_items(doc);
    for_each_operation(doc, |_, _, op| operation(op));
}

fn info(doc: &mut Value) {
    doc["info"]["license"] = json!({"name": "Apache-2.0", "identifier": "Apache-2.0"});
    doc["info"]["contact"] = json!({"name": "Emporium"});
    doc["servers"] = json!([{
        "url": "http://127.0.0.1:8080",
        "description": "A local `emporium serve` on its default listener (EMPORIUM_LISTEN)"
    }]);
}

fn components(doc: &mut Value) {
    let components = object(&mut doc["components"]);
    let schemes = object(components.entry("securitySchemes").or_insert(json!({})));
    schemes.insert(
        "metrics_token".to_owned(),
        json!({
            "type": "http",
            "scheme": "bearer",
            "description": "The operations token (EMPORIUM_METRICS_TOKEN), for /metrics on the public listener"
        }),
    );
    schemes.insert(
        "cart_token".to_owned(),
        json!({
            "type": "apiKey",
            "in": "header",
            "name": "X-Cart-Token",
            "description": "A guest cart's token (POST /api/v1/ordering/carts): shop and check out without an account"
        }),
    );
    schemes.insert(
        "order_token".to_owned(),
        json!({
            "type": "apiKey",
            "in": "header",
            "name": "X-Order-Token",
            "description": "A guest order's token (the checkout's answer, and the link in the confirmation mail): reads and cancels that order only"
        }),
    );
    let headers = object(components.entry("headers").or_insert(json!({})));
    for (name, description, schema) in [
        (
            "X-Request-Id",
            "The request's id: the caller's own when it sent a valid one, else a new one; it is in the server's log and becomes the correlation id of the events the request causes",
            json!({"type": "string", "maxLength": 128}),
        ),
        (
            "Retry-After",
            "Seconds to wait before trying again",
            json!({"type": "integer", "minimum": 1}),
        ),
        (
            "RateLimit-Policy",
            "The client's rate-limit policy (IETF draft-ietf-httpapi-ratelimit-headers): `\"default\";q=<burst>;w=<seconds to refill it>`. Sent while rate limiting is on (EMPORIUM_RATE_LIMIT)",
            json!({"type": "string"}),
        ),
        (
            "RateLimit",
            "What is left of the client's quota: `\"default\";r=<requests left now>;t=<seconds until the quota is whole again>`. Sent while rate limiting is on",
            json!({"type": "string"}),
        ),
    ] {
        headers.insert(
            name.to_owned(),
            json!({"description": description, "schema": schema}),
        );
    }
    let schemas = object(components.entry("schemas").or_insert(json!({})));
    for (name, description, schema) in code_lists() {
        let mut schema = schema;
        schema["description"] = json!(description);
        schemas.insert(name.to_owned(), schema);
    }
}

/// The named code lists: (schema name, description, schema).
fn code_lists() -> [(&'static str, &'static str, Value); 2] {
    let as_value = |o: utoipa::openapi::schema::Object| serde_json::to_value(o).unwrap_or_default();
    [
        (
            "Country",
            "ISO 3166-1 alpha-2 country code",
            as_value(kernel::address::country_schema()),
        ),
        (
            "Currency",
            "ISO 4217 currency code",
            as_value(kernel::money::currency_schema()),
        ),
    ]
}

/// Every inline copy of a code list becomes a reference to its named schema (a field's own
/// description and example stay beside the reference).
fn name_code_lists(doc: &mut Value) {
    let lists: Vec<(String, Value)> = code_lists()
        .into_iter()
        .filter_map(|(name, _, schema)| Some((name.to_owned(), schema.get("enum")?.clone())))
        .collect();
    for key in ["paths", "components"] {
        if let Some(part) = doc.get_mut(key) {
            replace_lists(part, &lists, true);
        }
    }
}

fn replace_lists(value: &mut Value, lists: &[(String, Value)], top: bool) {
    match value {
        Value::Object(map) => {
            let named = map.get("enum").and_then(|codes| {
                lists
                    .iter()
                    .find(|(_, list)| list == codes)
                    .map(|(n, _)| n.clone())
            });
            if let Some(name) = named {
                let nullable = map
                    .get("type")
                    .and_then(Value::as_array)
                    .is_some_and(|t| t.contains(&json!("null")));
                map.remove("enum");
                map.remove("type");
                let reference = json!({"$ref": format!("#/components/schemas/{name}")});
                if nullable {
                    map.insert("oneOf".to_owned(), json!([{"type": "null"}, reference]));
                } else if let Value::Object(r) = reference {
                    map.extend(r);
                }
                return;
            }
            for (key, child) in map.iter_mut() {
                // The named schemas themselves keep their list.
                if top && key == "schemas" {
                    if let Value::Object(schemas) = child {
                        for (name, schema) in schemas.iter_mut() {
                            if !lists.iter().any(|(n, _)| n == name) {
                                replace_lists(schema, lists, false);
                            }
                        }
                    }
                    continue;
                }
                replace_lists(child, lists, false);
            }
        }
        Value::Array(items) => {
            for item in items {
                replace_lists(item, lists, false);
            }
        }
        _ => {}
    }
}

/// A page of `T` (`Page_T`, as utoipa names the generic) lists its items by reference to the
/// schema `T`, made from the inline copy when no fragment named it: generated clients get one
/// `T` type, not a `PageTItemsItem` per list.
fn name_page_items(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let pages: Vec<String> = schemas
        .keys()
        .filter(|k| k.starts_with("Page_"))
        .cloned()
        .collect();
    for page in pages {
        let item = page.trim_start_matches("Page_").to_owned();
        let Some(inline) = schemas
            .get_mut(&page)
            .and_then(|p| p.pointer_mut("/properties/items/items"))
        else {
            continue;
        };
        if inline.get("$ref").is_some() {
            continue;
        }
        let reference = json!({"$ref": format!("#/components/schemas/{item}")});
        let taken = std::mem::replace(inline, reference);
        schemas.entry(item).or_insert(taken);
    }
}

pub(crate) fn for_each_operation(doc: &mut Value, mut f: impl FnMut(&str, &str, &mut Value)) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for method in METHODS {
            if let Some(op) = item.get_mut(method) {
                f(path, method, op);
            }
        }
    }
}

fn operation(op: &mut Value) {
    let op = object(op);
    // A one-paragraph doc comment becomes the summary alone; linters and generated docs
    // read the description.
    if !op.contains_key("description") {
        if let Some(summary) = op.get("summary").cloned() {
            op.insert("description".to_owned(), summary);
        }
    }
    // An operation that names no scheme is public, and says so (tools otherwise read "unknown").
    op.entry("security").or_insert(json!([]));
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for param in params.iter_mut().filter(|p| p["in"] == "path") {
            param["required"] = json!(true);
        }
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        let headers = object(object(response).entry("headers").or_insert(json!({})));
        let mut add = |name: &str| {
            headers
                .entry(name.to_owned())
                .or_insert(json!({"$ref": format!("#/components/headers/{name}")}));
        };
        add("X-Request-Id");
        add("RateLimit-Policy");
        add("RateLimit");
        if status == "429" || status == "503" {
            add("Retry-After");
        }
    }
}

/// The object at `value`, made one if it is not.
fn object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("made an object above"),
    }
}
