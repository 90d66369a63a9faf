//! The merged OpenAPI document: the root's operations endpoints plus every context's fragment.

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
