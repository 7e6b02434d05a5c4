//! Spec conformance: every operation of `openapi/protime-api.json` is exercised for its
//! success status and every documented error status the sandbox can produce; each answer's
//! status must be listed for the operation, and each body must validate against the listed
//! schema (the spec's component schemas turned into a JSON Schema 2020-12 document, checked
//! with `jsonschema`, formats asserted).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use common::{Answer, Api, CLOCKINGS, DELTA, WEBHOOKS, q, small_config};
use protime_sandbox::{ClientConfig, RunningSandbox, Sandbox, SandboxConfig};
use reqwest::Method;
use serde_json::{Map, Value, json};

const SPEC: &str = include_str!("../../../openapi/protime-api.json");

/// `(operation, status)` pairs the sandbox answers although the spec does not list them,
/// each a gap in the spec (reported, not hidden). The test fails if one of them is no longer
/// a gap (the spec was fixed) or is no longer produced.
const KNOWN_SPEC_GAPS: &[(&str, u16, &str)] = &[];

/// Listed statuses the sandbox never produces.
const NOT_PRODUCED: &[(&str, u16)] = &[
    // The sandbox always answers 204 to a delete.
    ("delete_webhook", 200),
    // One delta per consumer and collection ("concurrency conflict") is not simulated.
    ("list_clockings", 409),
    ("get_clockings_delta", 409),
];

// -- OpenAPI 3.0 → JSON Schema 2020-12 -------------------------------------------------------

const DROPPED_FORMATS: &[&str] = &["int32", "int64", "double", "float"];
const SCHEMA_MAPS: &[&str] = &["properties", "patternProperties", "$defs", "definitions"];
const SCHEMA_VALUES: &[&str] = &[
    "items",
    "additionalProperties",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
];
const SCHEMA_ARRAYS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// OpenAPI-only keywords without a 2020-12 meaning.
const OPENAPI_ONLY: &[&str] = &["example", "discriminator", "xml", "externalDocs"];

/// Converts one OpenAPI 3.0 schema object.
fn convert(schema: &Value) -> Value {
    let Value::Object(object) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in object {
        if key.starts_with("x-") || key == "nullable" || OPENAPI_ONLY.contains(&key.as_str()) {
            continue;
        }
        let converted = match key.as_str() {
            "$ref" => Value::String(
                value
                    .as_str()
                    .unwrap()
                    .replace("#/components/schemas/", "#/$defs/"),
            ),
            "format" if DROPPED_FORMATS.contains(&value.as_str().unwrap_or_default()) => continue,
            k if SCHEMA_MAPS.contains(&k) => Value::Object(
                value
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(name, s)| (name.clone(), convert(s)))
                    .collect(),
            ),
            k if SCHEMA_VALUES.contains(&k) => convert(value),
            k if SCHEMA_ARRAYS.contains(&k) => {
                Value::Array(value.as_array().unwrap().iter().map(convert).collect())
            }
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if object.get("nullable") == Some(&Value::Bool(true)) {
        match out.get_mut("type") {
            Some(Value::String(t)) => {
                let t = t.clone();
                out.insert("type".into(), json!([t, "null"]));
            }
            Some(Value::Array(types)) => types.push("null".into()),
            _ => {
                return json!({"anyOf": [Value::Object(out), {"type": "null"}]});
            }
        }
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            values.push(Value::Null);
        }
    }
    Value::Object(out)
}

/// The component schemas as one 2020-12 document.
fn schema_document(spec: &Value) -> Value {
    let defs: Map<String, Value> = spec["components"]["schemas"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, s)| (name.clone(), convert(s)))
        .collect();
    json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs})
}

fn keys_with_prefix(value: &Value, prefix: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k.starts_with(prefix) {
                    found.push(k.clone());
                }
                keys_with_prefix(v, prefix, found);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| keys_with_prefix(v, prefix, found)),
        _ => {}
    }
}

#[test]
fn conversion_unit_cases() {
    let converted = convert(&json!({
        "type": "object",
        "x-assumption": "dropped",
        "properties": {
            "x-name": {"type": "integer", "format": "int64", "nullable": true, "x-protime-docs": "d"},
            "when": {"type": "string", "format": "date"},
            "ref": {"$ref": "#/components/schemas/Other", "nullable": true},
            "list": {"type": "array", "items": {"$ref": "#/components/schemas/Other"}},
            "kind": {"type": "string", "enum": ["A"], "nullable": true}
        }
    }));
    assert_eq!(
        converted,
        json!({
            "type": "object",
            "properties": {
                "x-name": {"type": ["integer", "null"]},
                "when": {"type": "string", "format": "date"},
                "ref": {"anyOf": [{"$ref": "#/$defs/Other"}, {"type": "null"}]},
                "list": {"type": "array", "items": {"$ref": "#/$defs/Other"}},
                "kind": {"type": ["string", "null"], "enum": ["A", null]}
            }
        })
    );
}

#[test]
fn the_converted_spec_is_a_valid_2020_12_document() {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let document = schema_document(&spec);
    jsonschema::meta::validate(&document).unwrap();
    let mut leftovers = Vec::new();
    keys_with_prefix(&document["$defs"], "x-", &mut leftovers);
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let text = document.to_string();
    assert!(!text.contains("#/components/"));
    assert!(!text.contains("\"nullable\""));
    for format in DROPPED_FORMATS {
        assert!(
            !text.contains(&format!("\"format\":\"{format}\"")),
            "{format}"
        );
    }
    // Formats are asserted: an impossible date fails.
    let conformance = Conformance::new();
    let clocking = json!({"id": 1, "person": {"id": 1}, "date": "2026-02-30",
                          "timeOfDayInMinutes": 5, "kind": "InOut"});
    assert!(!conformance.validator("Clocking").is_valid(&clocking));
    let clocking = json!({"id": 1, "person": {"id": 1}, "date": "2026-02-28",
                          "timeOfDayInMinutes": 5, "kind": "InOut"});
    assert!(conformance.validator("Clocking").is_valid(&clocking));
    // The validators have teeth.
    assert!(!conformance.validator("ClockingList").is_valid(&json!({})));
    assert!(
        !conformance
            .validator("ProtimeError")
            .is_valid(&json!({"error": "invalid_client"}))
    );
    assert!(
        !conformance
            .validator("ClockingDeltaPage")
            .is_valid(&json!({"value": []}))
    );
    assert!(
        !conformance
            .validator("Webhook")
            .is_valid(&json!({"id": "a", "validUntil": "tomorrow",
        "status": "Enabled", "destinationUrl": "x", "collectionName": "clockings"}))
    );
}

// -- the checker ---------------------------------------------------------------------------

struct Conformance {
    spec: Value,
    document: Value,
    validators: HashMap<String, jsonschema::Validator>,
    /// operation → statuses seen.
    seen: BTreeMap<String, BTreeSet<u16>>,
    /// operation → number of bodies validated.
    validated: BTreeMap<String, usize>,
}

impl Conformance {
    fn new() -> Self {
        let spec: Value = serde_json::from_str(SPEC).unwrap();
        let document = schema_document(&spec);
        let mut validators = HashMap::new();
        for name in spec["components"]["schemas"].as_object().unwrap().keys() {
            let mut root = document.clone();
            root["$ref"] = json!(format!("#/$defs/{name}"));
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            validators.insert(name.clone(), validator);
        }
        Self {
            spec,
            document,
            validators,
            seen: BTreeMap::new(),
            validated: BTreeMap::new(),
        }
    }

    fn validator(&self, name: &str) -> &jsonschema::Validator {
        &self.validators[name]
    }

    /// Every operation id with its listed statuses.
    fn operations(&self) -> BTreeMap<String, BTreeSet<u16>> {
        let mut out = BTreeMap::new();
        for item in self.spec["paths"].as_object().unwrap().values() {
            for (method, operation) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                let statuses = operation["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|s| s.parse().unwrap())
                    .collect();
                out.insert(
                    operation["operationId"].as_str().unwrap().to_owned(),
                    statuses,
                );
            }
        }
        out
    }

    fn operation(&self, id: &str) -> &Value {
        self.spec["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .find(|op| op["operationId"] == id)
            .unwrap_or_else(|| panic!("no operation {id}"))
    }

    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str() {
            Some(reference) => {
                let pointer = reference.trim_start_matches('#');
                self.spec.pointer(pointer).unwrap()
            }
            None => value,
        }
    }

    /// Checks one answer of `operation`.
    fn check(&mut self, operation: &str, answer: &Answer) {
        let status = answer.status.as_u16();
        self.seen
            .entry(operation.to_owned())
            .or_default()
            .insert(status);
        let listed = self.operation(operation)["responses"]
            .get(status.to_string())
            .cloned();
        let Some(listed) = listed else {
            assert!(
                KNOWN_SPEC_GAPS
                    .iter()
                    .any(|(op, s, _)| *op == operation && *s == status),
                "{operation} answered {status}, which the spec does not list: {}",
                answer.text
            );
            return;
        };
        let response = self.resolve(&listed).clone();
        // Declared headers that the sandbox always sends.
        if let Some(headers) = response["headers"].as_object() {
            if headers.contains_key("Location") {
                let location = answer
                    .header("location")
                    .unwrap_or_else(|| panic!("{operation} {status}: no Location"));
                assert!(
                    location.starts_with(protime_raw::API_PATH_PREFIX),
                    "{location}"
                );
            }
            if let Some(retry_after) = answer.header("retry-after") {
                assert!(
                    retry_after.bytes().all(|b| b.is_ascii_digit()),
                    "{retry_after}"
                );
            }
        }
        if matches!(status, 429 | 503) {
            assert!(
                answer.header("retry-after").is_some(),
                "{operation} {status}"
            );
        }
        match response["content"]["application/json"]["schema"]["$ref"].as_str() {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/schemas/");
                assert!(
                    answer
                        .header("content-type")
                        .is_some_and(|t| t.starts_with("application/json")),
                    "{operation} {status}: content type"
                );
                let body = answer.json();
                let validator = &self.validators[name];
                let errors: Vec<String> = validator
                    .iter_errors(&body)
                    .map(|e| format!("{} at {}", e, e.instance_path()))
                    .collect();
                assert!(
                    errors.is_empty(),
                    "{operation} {status}: body does not match {name}: {errors:?}\n{body}"
                );
                *self.validated.entry(operation.to_owned()).or_default() += 1;
            }
            None => assert!(
                answer.text.is_empty(),
                "{operation} {status}: the spec lists no body, got {}",
                answer.text
            ),
        }
    }

    /// Every listed status was produced, except the documented ones; every gap was seen.
    fn assert_complete(&self) {
        let document_defs = self.document["$defs"].as_object().unwrap().len();
        assert!(document_defs >= 20);
        let mut missing = BTreeSet::new();
        for (operation, listed) in self.operations() {
            let seen = self.seen.get(&operation).cloned().unwrap_or_default();
            for status in listed.difference(&seen) {
                missing.insert((operation.clone(), *status));
            }
            assert!(
                self.validated.get(&operation).copied().unwrap_or(0) > 0,
                "{operation}: no body validated"
            );
        }
        let expected: BTreeSet<(String, u16)> = NOT_PRODUCED
            .iter()
            .map(|(op, s)| ((*op).to_owned(), *s))
            .collect();
        assert_eq!(missing, expected, "listed statuses not exercised");
        for (operation, statuses) in &self.seen {
            eprintln!(
                "{operation:>20}: {statuses:?} ({} bodies validated)",
                self.validated.get(operation).copied().unwrap_or(0)
            );
        }
        for (operation, status, why) in KNOWN_SPEC_GAPS {
            assert!(
                !self.operations()[*operation].contains(status),
                "{operation} {status} is now in the spec: remove it from KNOWN_SPEC_GAPS"
            );
            assert!(
                self.seen[*operation].contains(status),
                "{operation} {status} ({why}) was not produced"
            );
        }
    }
}

// -- the exercise ----------------------------------------------------------------------------

struct Call {
    operation: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
}

impl Call {
    fn new(operation: &'static str, method: Method, path: impl Into<String>) -> Self {
        Self {
            operation,
            method,
            path: path.into(),
            body: None,
        }
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    async fn on(&self, api: &Api) -> Answer {
        api.send(self.method.clone(), &self.path, self.body.as_ref())
            .await
    }
}

fn config() -> SandboxConfig {
    SandboxConfig {
        page_size: 15,
        empty_page_every: Some(2),
        clients: vec![
            ClientConfig::default_client(),
            ClientConfig::new("no-scopes", "secret", ["connector-protimeapi-people.read"]),
        ],
        ..small_config()
    }
}

async fn token_for(sandbox: &RunningSandbox, client: &str, secret: &str) -> Api {
    let mut api = Api::new(sandbox);
    let answer = api
        .token_request(
            sandbox,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client),
                ("client_secret", secret),
            ],
        )
        .await;
    api.token = Some(answer.json()["access_token"].as_str().unwrap().to_owned());
    api
}

#[tokio::test]
async fn every_operation_and_status_conforms_to_the_spec() {
    let mut check = Conformance::new();
    let sandbox = Sandbox::start(config()).await.unwrap();
    let api = Api::authorized(&sandbox).await;
    let range = "date ge '2026-01-01' and date le '2026-01-31'";
    let list = format!("{CLOCKINGS}?filter={}", q(range));
    let person = sandbox.person_ids()[0];
    let clocking_id = sandbox.all_clockings()[0].id.get();
    let new_clocking = json!({"person": {"id": person}, "date": "2026-01-15",
        "timeOfDayInMinutes": 1800, "kind": "InOut", "terminal": {"id": 765},
        "geolocation": {"latitude": 51.144127, "longitude": 4.392225}});
    let new_webhook =
        json!({"destinationUrl": "http://127.0.0.1:9/hooks", "collectionName": "clockings"});

    // -- successes --------------------------------------------------------------------------
    let created = Call::new(
        "create_webhook",
        Method::POST,
        format!(
            "{WEBHOOKS}?externalReferences={}",
            q("(people,@badge-number)")
        ),
    )
    .body(new_webhook.clone())
    .on(&api)
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    check.check("create_webhook", &created);
    let webhook_id = created.json()["id"].as_str().unwrap().to_owned();
    let webhook = format!("{WEBHOOKS}/{webhook_id}");
    for path in [
        WEBHOOKS.to_owned(),
        format!(
            "{WEBHOOKS}?filter={}",
            q("status eq 'Enabled' and collectionName eq 'clockings'")
        ),
    ] {
        let answer = api.get(&path).await;
        assert_eq!(answer.status, 200);
        check.check("list_webhooks", &answer);
    }
    let answer = api.get(&webhook).await;
    assert_eq!(answer.status, 200);
    check.check("get_webhook", &answer);

    // A full listing (with an empty middle page), and a delta initial load.
    for first in [
        list.clone(),
        format!("{list}&delta"),
        format!(
            "{list}&externalReferences={}",
            q(
                "(people,@employee-number)(terminals,@external-code)(absence-definitions,@absence-code)(activity-definitions,@data-entry-code)"
            )
        ),
    ] {
        let mut next = Some(first);
        let mut empty_pages = 0;
        let mut delta_link = None;
        while let Some(path) = next {
            let answer = api.get(&path).await;
            assert_eq!(answer.status, 200, "{path}: {}", answer.text);
            check.check("list_clockings", &answer);
            let page = answer.json();
            if page["value"].as_array().unwrap().is_empty() {
                empty_pages += 1;
            }
            next = page["nextLink"].as_str().map(str::to_owned);
            if let Some(link) = &next {
                assert!(link.starts_with(protime_raw::API_PATH_PREFIX), "{link}");
            }
            delta_link = page["deltaLink"].as_str().map(str::to_owned);
        }
        assert!(empty_pages > 0, "no empty middle page");
        if let Some(link) = delta_link {
            sandbox.generate(30);
            let answer = api.get(&link).await;
            assert_eq!(answer.status, 200);
            check.check("get_clockings_delta", &answer);
            assert!(!answer.json()["value"].as_array().unwrap().is_empty());
        }
    }
    // Soft-deleted, edited and every kind of clocking, one by one.
    for clocking in sandbox.all_clockings().iter().take(60) {
        let answer = api
            .get(&format!(
                "{CLOCKINGS}/{}?externalReferences={}",
                clocking.id,
                q("(people,HRMID)")
            ))
            .await;
        assert_eq!(answer.status, 200);
        check.check("get_clocking", &answer);
    }
    let answer = Call::new("create_clocking", Method::POST, CLOCKINGS)
        .body(new_clocking.clone())
        .on(&api)
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    check.check("create_clocking", &answer);
    let answer = api.delete(&webhook).await;
    assert_eq!(answer.status, 204);
    check.check("delete_webhook", &answer);

    // -- errors -----------------------------------------------------------------------------
    let long = "x".repeat(4200);
    let gone_token = "eyJkZWx0YUlkIjo5OTksInN0YXJ0aW5nQ3Vyc29yIjoxLCJ0aW1lU3RhbXAiOiIyMDI2LTAxLTAxVDAwOjAwOjAwWiJ9";
    let calls = || {
        vec![
            Call::new("list_webhooks", Method::GET, WEBHOOKS),
            Call::new("create_webhook", Method::POST, WEBHOOKS).body(new_webhook.clone()),
            Call::new(
                "get_webhook",
                Method::GET,
                format!("{WEBHOOKS}/{webhook_id}"),
            ),
            Call::new(
                "delete_webhook",
                Method::DELETE,
                format!("{WEBHOOKS}/{webhook_id}"),
            ),
            Call::new("list_clockings", Method::GET, list.clone()),
            Call::new("create_clocking", Method::POST, CLOCKINGS).body(new_clocking.clone()),
            Call::new(
                "get_clocking",
                Method::GET,
                format!("{CLOCKINGS}/{clocking_id}"),
            ),
            Call::new(
                "get_clockings_delta",
                Method::GET,
                format!("{DELTA}?deltaToken={gone_token}"),
            ),
        ]
    };

    // 401, 403, 500, 503 and the missing User-Agent (400) on every operation.
    let anonymous = Api::new(&sandbox);
    let no_scopes = token_for(&sandbox, "no-scopes", "secret").await;
    let mut no_agent = Api::authorized(&sandbox).await;
    no_agent.user_agent = None;
    for call in calls() {
        let answer = call.on(&anonymous).await;
        assert_eq!(answer.status, 401, "{}", call.operation);
        check.check(call.operation, &answer);

        let answer = call.on(&no_scopes).await;
        assert_eq!(answer.status, 403, "{}", call.operation);
        check.check(call.operation, &answer);

        let answer = call.on(&no_agent).await;
        assert_eq!(answer.status, 400, "{}", call.operation);
        check.check(call.operation, &answer);

        sandbox.fail_next_requests(1);
        let answer = call.on(&api).await;
        assert_eq!(answer.status, 500, "{}", call.operation);
        check.check(call.operation, &answer);

        sandbox.set_maintenance(Some(Duration::from_secs(60)));
        let answer = call.on(&api).await;
        sandbox.set_maintenance(None);
        assert_eq!(answer.status, 503, "{}", call.operation);
        check.check(call.operation, &answer);
    }

    // 400 per operation.
    let bad_requests = vec![
        Call::new(
            "list_webhooks",
            Method::GET,
            format!("{WEBHOOKS}?filter={}", q("status eq 'Sleeping'")),
        ),
        Call::new("create_webhook", Method::POST, WEBHOOKS)
            .body(json!({"destinationUrl": "not a url", "collectionName": "clockings"})),
        Call::new("create_webhook", Method::POST, WEBHOOKS).body(json!({"destinationUrl": 5})),
        Call::new(
            "list_clockings",
            Method::GET,
            format!("{CLOCKINGS}?filter={}", q("person eq 1")),
        ),
        Call::new(
            "list_clockings",
            Method::GET,
            format!(
                "{CLOCKINGS}?filter={}",
                q("date ge '2025-01-01' and date le '2026-06-01'")
            ),
        ),
        Call::new("create_clocking", Method::POST, CLOCKINGS)
            .body(json!({"person": {"id": person},
            "date": "2026-01-15", "timeOfDayInMinutes": 3000, "kind": "Activity"})),
        Call::new("create_clocking", Method::POST, CLOCKINGS).body(json!({"kind": "InOut"})),
        Call::new("get_clockings_delta", Method::GET, DELTA),
    ];
    for call in bad_requests {
        let answer = call.on(&api).await;
        assert_eq!(answer.status, 400, "{} {}", call.operation, answer.text);
        check.check(call.operation, &answer);
    }

    // 404 and 410.
    let missing_webhook = format!("{WEBHOOKS}/{}", uuid::Uuid::new_v4());
    for call in [
        Call::new("get_webhook", Method::GET, missing_webhook.clone()),
        Call::new("delete_webhook", Method::DELETE, missing_webhook),
        Call::new("get_clocking", Method::GET, format!("{CLOCKINGS}/1")),
    ] {
        let answer = call.on(&api).await;
        assert_eq!(answer.status, 404, "{}", call.operation);
        check.check(call.operation, &answer);
    }
    let answer = api.get(&format!("{DELTA}?deltaToken={gone_token}")).await;
    assert_eq!(answer.status, 410);
    check.check("get_clockings_delta", &answer);
    // An expired delta token inside a delta initial load's nextLink.
    let answer = api
        .get(&format!("{list}&delta&deltaToken={gone_token}"))
        .await;
    assert_eq!(answer.status, 410, "{}", answer.text);
    check.check("list_clockings", &answer);

    // 414 where a long query is possible.
    for call in [
        Call::new(
            "list_webhooks",
            Method::GET,
            format!("{WEBHOOKS}?filter={long}"),
        ),
        Call::new(
            "create_webhook",
            Method::POST,
            format!("{WEBHOOKS}?externalReferences={long}"),
        )
        .body(new_webhook.clone()),
        Call::new(
            "list_clockings",
            Method::GET,
            format!("{list}&continuationToken={long}"),
        ),
        Call::new(
            "get_clockings_delta",
            Method::GET,
            format!("{DELTA}?deltaToken={long}"),
        ),
        // The limit is on the URI, so it applies to every operation.
        Call::new("get_webhook", Method::GET, format!("{WEBHOOKS}/{long}")),
        Call::new(
            "delete_webhook",
            Method::DELETE,
            format!("{WEBHOOKS}/{long}"),
        ),
        Call::new(
            "get_clocking",
            Method::GET,
            format!("{CLOCKINGS}/1?externalReferences={long}"),
        ),
        Call::new(
            "create_clocking",
            Method::POST,
            format!("{CLOCKINGS}?{long}"),
        )
        .body(new_clocking.clone()),
    ] {
        let answer = call.on(&api).await;
        assert_eq!(answer.status, 414, "{}", call.operation);
        check.check(call.operation, &answer);
    }
    sandbox.shutdown().await;

    // 429: one request per second per token.
    let limited = Sandbox::start(SandboxConfig {
        rate_limit_per_second: Some(1),
        ..config()
    })
    .await
    .unwrap();
    for call in calls() {
        let api = Api::authorized(&limited).await;
        let _first = call.on(&api).await;
        let answer = call.on(&api).await;
        assert_eq!(answer.status, 429, "{}", call.operation);
        check.check(call.operation, &answer);
    }
    limited.shutdown().await;

    check.assert_complete();
}
