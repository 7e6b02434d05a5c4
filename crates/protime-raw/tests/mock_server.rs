//! The generated `protime-raw` client against a local mock server (loopback only).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use protime_raw::{Client, Error, types};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WEBHOOKS: &str = "/connector/protimeapi/api/v1/webhooks";
const CLOCKINGS: &str = "/connector/protimeapi/api/v1/clockings";
const TOKEN: &str = "test-token-123";
const USER_AGENT: &str = "ProtimeTests/1.0 (Protime Rust Workspace)";

fn client(server: &MockServer) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().unwrap(),
    );
    let http = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .default_headers(headers)
        .build()
        .unwrap();
    Client::new_with_client(&server.uri(), http, protime_raw::Hooks::default())
}

fn webhook_json(id: &str, status: &str) -> serde_json::Value {
    json!({
        "id": id,
        "validUntil": "2025-03-31T12:30:00+02:00",
        "status": status,
        "destinationUrl": "https://www.your-company.com/protime/clockings",
        "collectionName": "clockings"
    })
}

#[tokio::test]
async fn webhook_crud_sends_bearer_token_and_user_agent() {
    let server = MockServer::start().await;
    let id = "a7d853ea-89eb-4735-83d1-b891c6fde398";
    let auth = format!("Bearer {TOKEN}");

    Mock::given(method("POST"))
        .and(path(WEBHOOKS))
        .and(header("authorization", auth.as_str()))
        .and(header("user-agent", USER_AGENT))
        .and(query_param("externalReferences", "(people,@badge-number)"))
        .and(body_json(json!({
            "destinationUrl": "https://www.your-company.com/protime/clockings",
            "collectionName": "clockings"
        })))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("location", format!("{WEBHOOKS}/{id}").as_str())
                .set_body_json(json!({"id": id, "key": "c2VjcmV0LWtleQ==", "validUntil": "2025-03-31T12:30:00+02:00"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(WEBHOOKS))
        .and(header("authorization", auth.as_str()))
        .and(query_param("filter", "status eq 'Disabled'"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"value": [webhook_json(id, "Disabled")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{WEBHOOKS}/{id}")))
        .and(header("authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook_json(id, "Enabled")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{WEBHOOKS}/{id}")))
        .and(header("authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;

    let client = client(&server);
    let created = client
        .create_webhook()
        .external_references("(people,@badge-number)")
        .body(types::WebhookCreateRequest {
            destination_url: "https://www.your-company.com/protime/clockings".into(),
            collection_name: types::CollectionName::Clockings,
        })
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    assert_eq!(
        created.headers().get("location").unwrap(),
        &format!("{WEBHOOKS}/{id}")
    );
    assert_eq!(created.key, "c2VjcmV0LWtleQ==");
    assert_eq!(
        created.valid_until.to_rfc3339(),
        "2025-03-31T10:30:00+00:00"
    );

    let listed = client
        .list_webhooks()
        .filter("status eq 'Disabled'")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.value.len(), 1);
    assert_eq!(listed.value[0].status, types::WebhookStatus::Disabled);

    let fetched = client.get_webhook().id(id).send().await.unwrap();
    assert_eq!(fetched.collection_name, types::CollectionName::Clockings);
    assert_eq!(fetched.status, types::WebhookStatus::Enabled);

    let deleted = client.delete_webhook().id(id).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    // `expect(1)` on every mock is verified when the server drops.
}

#[tokio::test]
async fn clockings_list_follows_next_link_across_two_pages() {
    let server = MockServer::start().await;
    let filter = "date ge '2024-01-01' and date le '2024-12-31'";
    let clocking = |id: u64, minute: i32| {
        json!({"id": id, "changeVersion": format!("00000902000000{id:06}"), "person": {"id": 1},
               "date": "2024-01-02", "timeOfDayInMinutes": minute, "kind": "InOut", "isGenerated": false})
    };
    Mock::given(method("GET"))
        .and(path(CLOCKINGS))
        .and(query_param("filter", filter))
        .and(query_param_is_missing("continuationToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [clocking(21369, 480), clocking(21370, 1020)],
            "nextLink": format!("{CLOCKINGS}?filter={filter}&continuationToken=eyJwYWdlIjoyfQ==")
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(CLOCKINGS))
        .and(query_param("filter", filter))
        .and(query_param("continuationToken", "eyJwYWdlIjoyfQ=="))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"value": [clocking(21371, 1500)]})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let client = client(&server);
    let mut ids = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let mut request = client.list_clockings().filter(filter);
        if let Some(token) = &continuation {
            request = request.continuation_token(token.as_str());
        }
        let page = request.send().await.unwrap().into_inner();
        ids.extend(page.value.iter().map(|c| c.id.get()));
        // nextLink is host-relative; the raw layer only needs its continuationToken.
        let Some(next) = page.next_link else { break };
        let url = reqwest::Url::parse(&format!("{}{}", server.uri(), next)).unwrap();
        continuation = url
            .query_pairs()
            .find(|(k, _)| k == "continuationToken")
            .map(|(_, v)| v.into_owned());
        assert!(
            continuation.is_some(),
            "nextLink without continuationToken: {next}"
        );
    }
    assert_eq!(ids, vec![21369, 21370, 21371]);
}

#[tokio::test]
async fn a_400_decodes_into_the_typed_error_body() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CLOCKINGS))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"code": "BadRequest", "message": "The request was invalid",
                      "reasons": ["The provided date range is invalid"]}
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(WEBHOOKS))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "validationErrors": [{"field": "destinationUrl", "message": "must be https"}]
        })))
        .mount(&server)
        .await;

    let client = client(&server);
    let error = client
        .list_clockings()
        .filter("date ge '2024-01-01'")
        .send()
        .await
        .unwrap_err();
    match error {
        Error::ErrorResponse(response) => {
            assert_eq!(response.status().as_u16(), 400);
            let detail = response.into_inner().error.unwrap();
            assert_eq!(detail.code, "BadRequest");
            assert_eq!(detail.message, "The request was invalid");
            assert_eq!(
                detail.reasons,
                vec!["The provided date range is invalid".to_string()]
            );
        }
        other => panic!("expected a typed error response, got {other:?}"),
    }

    let error = client
        .create_webhook()
        .body(types::WebhookCreateRequest {
            destination_url: "http://insecure.example".into(),
            collection_name: types::CollectionName::Clockings,
        })
        .send()
        .await
        .unwrap_err();
    match error {
        Error::ErrorResponse(response) => {
            let body = response.into_inner();
            assert!(body.error.is_none());
            assert_eq!(body.validation_errors.len(), 1);
        }
        other => panic!("expected a typed error response, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_required_parameter_fails_before_any_request() {
    let server = MockServer::start().await;
    let client = client(&server);
    let error = client.list_clockings().send().await.unwrap_err();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// A transport that authorizes, records every status and re-sends once after a 401: what
/// the typed hooks make possible (the transport owns the request).
#[derive(Debug, Default)]
struct Recording {
    statuses: std::sync::Mutex<Vec<u16>>,
}

impl protime_raw::Transport for Recording {
    fn send<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: reqwest::Request,
        _operation: &'static str,
    ) -> protime_raw::TransportFuture<'a> {
        Box::pin(async move {
            let mut last = None;
            for token in ["Bearer stale", "Bearer fresh"] {
                let mut attempt = request.try_clone().unwrap();
                attempt
                    .headers_mut()
                    .insert(reqwest::header::AUTHORIZATION, token.parse().unwrap());
                let response = http.execute(attempt).await?;
                let status = response.status().as_u16();
                self.statuses.lock().unwrap().push(status);
                if status != 401 {
                    return Ok(response);
                }
                last = Some(response);
            }
            Ok(last.unwrap())
        })
    }
}

#[tokio::test]
async fn a_transport_owns_each_request_and_can_send_it_again() {
    use std::sync::Arc;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{WEBHOOKS}/abc")))
        .and(header("authorization", "Bearer stale"))
        .respond_with(ResponseTemplate::new(401)) // empty body: not JSON
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{WEBHOOKS}/abc")))
        .and(header("authorization", "Bearer fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "abc", "destinationUrl": "https://x.example/h", "collectionName": "clockings",
            "status": "Enabled", "validUntil": "2026-03-31T12:00:00Z"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let transport = Arc::new(Recording::default());
    let client = Client::new_with_client(
        &server.uri(),
        reqwest::Client::new(),
        protime_raw::Hooks::with_transport(transport.clone()),
    );
    let webhook = client.get_webhook().id("abc").send().await.unwrap();
    assert_eq!(webhook.id, "abc");
    assert_eq!(*transport.statuses.lock().unwrap(), vec![401, 200]);
}

#[tokio::test]
async fn without_a_transport_requests_go_out_as_built() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(format!("{WEBHOOKS}/abc")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::new(&server.uri(), protime_raw::Hooks::default());
    client.delete_webhook().id("abc").send().await.unwrap();
}
