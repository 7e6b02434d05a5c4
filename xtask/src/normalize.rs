//! Normalizes the media types of real-world (ASP.NET / Swashbuckle style)
//! OpenAPI documents before progenitor sees them.
//!
//! Swashbuckle lists one body under several media types (`text/plain`,
//! `application/json`, `text/json`, `application/*+json`) and error bodies as
//! `application/problem+json`. progenitor 0.15 panics on a request body with
//! more than one media type and types a response that has no
//! `application/json` entry as a byte stream (toolchain notes §10, pitfall 4).
//! [`normalize`] therefore reduces every request body and response `content`
//! map to a single `application/json` entry whenever a JSON-ish media type is
//! present. Content without any JSON media type is left alone: the preflight
//! check reports it.

use serde_json::{Map, Value};

/// The operation keys of an OpenAPI 3.0 path item.
const OPERATION_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The media type every body ends up under.
const JSON: &str = "application/json";

/// Normalizes the `content` maps of every request body and response in
/// `spec` (operations, `components.responses` and `components.requestBodies`)
/// and returns one human-readable line per change, each starting with the
/// JSON location of the changed object.
///
/// Values that do not have the expected shape are skipped, never rejected:
/// the preflight check and the OpenAPI deserializer report them.
/// Normalizing an already normalized document changes nothing.
pub fn normalize(spec: &mut Value) -> Vec<String> {
    let mut changes = Vec::new();
    let Some(root) = spec.as_object_mut() else {
        return changes;
    };

    if let Some(paths) = root.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                if !OPERATION_METHODS.contains(&method.as_str()) {
                    continue;
                }
                let Some(operation) = operation.as_object_mut() else {
                    continue;
                };
                let location = format!("paths.{path}.{method}");
                if let Some(body) = operation.get_mut("requestBody") {
                    normalize_holder(body, &format!("{location}.requestBody"), &mut changes);
                }
                if let Some(responses) = operation
                    .get_mut("responses")
                    .and_then(Value::as_object_mut)
                {
                    for (status, response) in responses.iter_mut() {
                        normalize_holder(
                            response,
                            &format!("{location}.responses.{status}"),
                            &mut changes,
                        );
                    }
                }
            }
        }
    }

    if let Some(components) = root.get_mut("components").and_then(Value::as_object_mut) {
        for section in ["responses", "requestBodies"] {
            let Some(entries) = components.get_mut(section).and_then(Value::as_object_mut) else {
                continue;
            };
            for (name, entry) in entries.iter_mut() {
                normalize_holder(entry, &format!("components.{section}.{name}"), &mut changes);
            }
        }
    }

    changes
}

/// Normalizes the `content` map of one response or request body object.
/// References (`$ref`) are skipped: their targets under `components` are
/// normalized on their own.
fn normalize_holder(holder: &mut Value, location: &str, changes: &mut Vec<String>) {
    let Some(holder) = holder.as_object_mut() else {
        return;
    };
    if holder.contains_key("$ref") {
        return;
    }
    let Some(content) = holder.get_mut("content").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(change) = normalize_content(content) {
        changes.push(format!("{location}: {change}"));
    }
}

/// Reduces one `content` map to a single `application/json` entry if it
/// holds a JSON-ish media type and is not already in that shape. Returns a
/// description of the change, or `None` if nothing changed.
fn normalize_content(content: &mut Map<String, Value>) -> Option<String> {
    // Prefer application/json (also with parameters such as charset), else
    // the first JSON-ish media type in document order.
    let chosen = content
        .keys()
        .find(|key| is_plain_json(key))
        .or_else(|| content.keys().find(|key| is_json_like(key)))?
        .clone();

    if content.len() == 1 && chosen == JSON {
        return None;
    }

    let dropped: Vec<String> = content
        .keys()
        .filter(|key| **key != chosen)
        .cloned()
        .collect();
    let media = content.remove(&chosen)?;
    content.clear();
    content.insert(JSON.to_owned(), media);

    let kept = if chosen == JSON {
        format!("kept {JSON}")
    } else if dropped.is_empty() {
        return Some(format!("{chosen} -> {JSON}"));
    } else {
        format!("kept {chosen} as {JSON}")
    };
    Some(format!("{kept}, dropped {}", dropped.join(", ")))
}

/// The media type without parameters, trimmed and lowercased.
fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// `application/json`, with or without parameters.
fn is_plain_json(media_type: &str) -> bool {
    essence(media_type) == JSON
}

/// A JSON media type: `application/json`, `text/json` or any `…+json`
/// structured syntax suffix (`application/problem+json`,
/// `application/*+json`, `*/*+json`, vendor types).
fn is_json_like(media_type: &str) -> bool {
    let essence = essence(media_type);
    essence == JSON || essence == "text/json" || essence.ends_with("+json")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    const ASPNET: &str = include_str!("../fixtures/aspnet-swagger.json");

    fn schema_ref(name: &str) -> Value {
        json!({ "schema": { "$ref": format!("#/components/schemas/{name}") } })
    }

    #[test]
    fn aspnet_style_content_is_reduced_to_application_json() {
        let mut spec = json!({
            "openapi": "3.0.1",
            "info": { "title": "t", "version": "v1" },
            "paths": {
                "/api/v1/x": {
                    "get": {
                        "operationId": "X_List",
                        "responses": {
                            "200": {
                                "description": "Success",
                                "content": {
                                    "text/plain": schema_ref("Text"),
                                    "application/json": schema_ref("X"),
                                    "text/json": schema_ref("TextJson")
                                }
                            },
                            "400": {
                                "description": "Bad Request",
                                "content": { "application/problem+json": schema_ref("ProblemDetails") }
                            },
                            "401": { "$ref": "#/components/responses/Problem" }
                        }
                    },
                    "post": {
                        "operationId": "X_Create",
                        "requestBody": {
                            "content": {
                                "text/json": schema_ref("Create"),
                                "application/*+json": schema_ref("CreateStar")
                            }
                        },
                        "responses": {
                            "204": { "description": "No Content" },
                            "415": {
                                "description": "Unsupported",
                                "content": { "application/octet-stream": {} }
                            }
                        }
                    }
                }
            },
            "components": {
                "responses": {
                    "Problem": {
                        "description": "Problem",
                        "content": {
                            "text/plain": schema_ref("ProblemDetails"),
                            "application/problem+json": schema_ref("ProblemDetails")
                        }
                    }
                },
                "requestBodies": {
                    "Lone": { "content": { "text/json": schema_ref("Lone") } },
                    "Plain": { "content": { "application/json": schema_ref("Plain") } }
                }
            }
        });

        let changes = normalize(&mut spec);
        assert_eq!(
            changes,
            vec![
                "paths./api/v1/x.get.responses.200: kept application/json, dropped text/plain, text/json",
                "paths./api/v1/x.get.responses.400: application/problem+json -> application/json",
                "paths./api/v1/x.post.requestBody: kept text/json as application/json, dropped application/*+json",
                "components.responses.Problem: kept application/problem+json as application/json, dropped text/plain",
                "components.requestBodies.Lone: text/json -> application/json",
            ]
        );

        let x = &spec["paths"]["/api/v1/x"];
        assert_eq!(
            x["get"]["responses"]["200"]["content"],
            json!({ "application/json": schema_ref("X") })
        );
        assert_eq!(
            x["get"]["responses"]["400"]["content"],
            json!({ "application/json": schema_ref("ProblemDetails") })
        );
        // references are left alone, their targets are normalized
        assert_eq!(
            x["get"]["responses"]["401"],
            json!({ "$ref": "#/components/responses/Problem" })
        );
        assert_eq!(
            x["post"]["requestBody"]["content"],
            json!({ "application/json": schema_ref("Create") })
        );
        // no content and non-JSON-only content are untouched
        assert_eq!(
            x["post"]["responses"]["204"],
            json!({ "description": "No Content" })
        );
        assert_eq!(
            x["post"]["responses"]["415"]["content"],
            json!({ "application/octet-stream": {} })
        );
        assert_eq!(
            spec["components"]["responses"]["Problem"]["content"],
            json!({ "application/json": schema_ref("ProblemDetails") })
        );
        assert_eq!(
            spec["components"]["requestBodies"]["Plain"]["content"],
            json!({ "application/json": schema_ref("Plain") })
        );

        // idempotent
        let once = spec.clone();
        assert!(normalize(&mut spec).is_empty());
        assert_eq!(spec, once);
    }

    #[test]
    fn json_with_parameters_and_vendor_types_count_as_json() {
        let mut content = json!({
            "application/xml": {},
            "application/vnd.protime.v1+json": { "schema": { "type": "string" } },
            "application/json; charset=utf-8": { "schema": { "type": "integer" } }
        });
        let map = content.as_object_mut().unwrap();
        assert_eq!(
            normalize_content(map).as_deref(),
            Some(
                "kept application/json; charset=utf-8 as application/json, dropped application/xml, application/vnd.protime.v1+json"
            )
        );
        assert_eq!(
            content,
            json!({ "application/json": { "schema": { "type": "integer" } } })
        );

        let mut only_xml = json!({ "application/xml": {}, "text/plain": {} });
        assert_eq!(normalize_content(only_xml.as_object_mut().unwrap()), None);
        assert_eq!(only_xml, json!({ "application/xml": {}, "text/plain": {} }));

        let mut star = json!({ "*/*+json": { "schema": { "type": "string" } } });
        assert_eq!(
            normalize_content(star.as_object_mut().unwrap()).as_deref(),
            Some("*/*+json -> application/json")
        );
    }

    #[test]
    fn never_panics_on_pathological_input() {
        let inputs = [
            json!(null),
            json!([]),
            json!(42),
            json!("openapi"),
            json!({ "openapi": 3 }),
            json!({ "openapi": "3.0.3" }),
            json!({ "openapi": "3.0.3", "paths": { "/x": { "get": 5 } } }),
            json!({ "openapi": "3.0.3", "paths": [] }),
            json!({ "openapi": "3.0.3", "paths": [{ "/x": {} }] }),
            json!({ "openapi": "3.0.3", "paths": { "/x": [] } }),
            json!({ "openapi": "3.0.3", "paths": { "/x": { "$ref": 7 } } }),
            json!({ "openapi": "3.0.3", "paths": { "/x": { "get": {
                "operationId": ["a"],
                "requestBody": { "$ref": 1, "content": [] },
                "parameters": [{ "$ref": "#/components/parameters/Nope" }, 3],
                "responses": {
                    "200": { "content": { "application/json": 5 } },
                    "400": { "content": { "application/json": { "schema": 5, "encoding": 1 } } },
                    "401": { "content": null },
                    "402": "x",
                    "4XX": { "$ref": "#/components/responses/A" },
                    "default": { "$ref": "#/components/responses/" },
                    "abc": {},
                    "": {}
                }
            } } } }),
            json!({ "openapi": "3.0.3", "paths": { "/x": { "get": {
                "operationId": "a",
                "responses": { "400": { "$ref": "#/components/responses/A" } }
            } } }, "components": { "responses": {
                "A": { "$ref": "#/components/responses/B" },
                "B": { "$ref": "#/components/responses/A" }
            } } }),
            json!({ "openapi": "3.0.3", "paths": {}, "components": [] }),
            json!({ "openapi": "3.0.3", "paths": {}, "components": { "responses": [], "requestBodies": 1 } }),
            json!({ "$ref": "#/components/schemas/é~1/\u{0}" }),
        ];
        for input in inputs {
            let mut value = input.clone();
            let first = normalize(&mut value);
            let again = normalize(&mut value);
            assert!(
                again.is_empty(),
                "{input}: second run changed {again:?} after {first:?}"
            );
            if let Err(error) = crate::preflight::check(&value) {
                assert!(!error.problems.is_empty(), "{input}");
                assert_eq!(
                    error.to_string().lines().count(),
                    error.problems.len(),
                    "{input}"
                );
            }
        }
    }

    #[test]
    fn aspnet_fixture_normalizes_and_passes_preflight() {
        let mut spec: Value = serde_json::from_str(ASPNET).unwrap();
        assert!(
            crate::preflight::check(&spec).is_err(),
            "the raw Swashbuckle document should need normalizing"
        );

        let changes = normalize(&mut spec);
        assert!(!changes.is_empty());
        assert!(changes.contains(
            &"paths./connector/protimeapi/api/v1/webhooks.get.responses.200: kept application/json, dropped text/plain, text/json"
                .to_owned()
        ));
        assert!(changes.contains(
            &"paths./connector/protimeapi/api/v1/webhooks.post.requestBody: kept application/json, dropped text/json, application/*+json"
                .to_owned()
        ));
        assert!(changes.contains(
            &"paths./connector/protimeapi/api/v1/webhooks/{id}.delete.responses.404: application/problem+json -> application/json"
                .to_owned()
        ));
        for change in &changes {
            assert!(
                change.starts_with("paths./connector/protimeapi/api/v1/"),
                "{change}"
            );
        }

        let result = crate::preflight::check(&spec);
        assert!(
            result.is_ok(),
            "preflight failed after normalize:\n{}",
            result
                .map_err(|error| error.to_string())
                .err()
                .unwrap_or_default()
        );
        assert!(normalize(&mut spec).is_empty(), "normalize is idempotent");
    }

    #[test]
    fn aspnet_fixture_generates() {
        let mut spec: Value = serde_json::from_str(ASPNET).unwrap();
        normalize(&mut spec);
        let spec: openapiv3::OpenAPI = serde_json::from_value(spec).unwrap();
        let mut generator = progenitor::Generator::new(&progenitor::GenerationSettings::default());
        let tokens = generator.generate_tokens(&spec).unwrap();
        let file: syn::File = syn::parse2(tokens).unwrap();
        let code = prettyplease::unparse(&file);

        for method in [
            "pub async fn webhooks_list",
            "pub async fn webhooks_create",
            "pub async fn webhooks_get",
            "pub async fn webhooks_delete",
            "pub async fn clockings_list",
        ] {
            assert!(code.contains(method), "missing {method}");
        }
        // problem+json errors are typed, not byte streams (pitfall 4)
        assert!(code.contains("Error<types::ProblemDetails>"));
        assert!(!code.contains("Error<::reqwest::ByteStream>"));
        assert!(!code.contains("ResponseValue<::reqwest::ByteStream>"));
    }
}
