//! The ergonomic client against a local mock server (loopback only): token sharing and
//! refresh, retries, paging, delta, error bodies, and the subscription lifecycle.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use protime_client::ExposeSecret as _;
use protime_client::{
    ClientSecret, ClockingsFilter, DeltaFilter, Error, ExternalReference, IfChanged, ProtimeClient,
    RetryPolicy, WebhookFilter,
};
use protime_raw::types::CollectionName;
use protime_webhooks::subscription::{Subscription, SubscriptionState};
use protime_webhooks::{InMemorySink, SignatureScheme, Verifier, WebhookKey};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const API: &str = "/connector/protimeapi/api/v1";
const TOKEN_PATH: &str = "/tenants/acme/connect/token";

fn token_response(token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": token, "expires_in": 1800, "token_type": "Bearer",
        "scope": "connector-protimeapi-webhooks.read"
    }))
}

fn client(server: &MockServer) -> ProtimeClient {
    client_with(server, protime_model::Profile::Documented)
}

fn client_with(server: &MockServer, profile: protime_model::Profile) -> ProtimeClient {
    ProtimeClient::builder()
        .base_url(server.uri())
        .token_url(format!("{}{TOKEN_PATH}", server.uri()))
        .client_credentials(
            "client-1",
            ClientSecret::new("s3cret"),
            ProtimeClient::WEBHOOK_SCOPES,
        )
        .user_agent("ProtimeTests/1.0 (Protime Rust Workspace)")
        .retry_policy(
            RetryPolicy::default()
                .with_max_attempts(4)
                .with_backoff(Duration::from_millis(10), Duration::from_millis(40)),
        )
        .allow_insecure_destinations(true)
        .profile(profile)
        .build()
        .unwrap()
}

fn webhook(id: &str, status: &str, valid_until: &str) -> serde_json::Value {
    json!({"id": id, "validUntil": valid_until, "status": status,
           "destinationUrl": "http://127.0.0.1/hook", "collectionName": "clockings"})
}

fn clocking(id: i64) -> serde_json::Value {
    json!({"changeVersion": format!("{id:020X}"), "id": id, "person": {"id": 1}, "date": "2026-01-15",
           "timeOfDayInMinutes": 480 + id, "kind": "InOut", "status": "Active"})
}

fn january() -> ClockingsFilter {
    ClockingsFilter::between(
        chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
    )
    .unwrap()
}

async fn mount_token(server: &MockServer, token: &str, times: Option<u64>) {
    let mock = Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_id=client-1"))
        .respond_with(token_response(token));
    match times {
        Some(n) => mock.up_to_n_times(n).expect(n).mount(server).await,
        None => mock.mount(server).await,
    }
}

#[tokio::test]
async fn one_token_request_serves_many_parallel_calls() {
    let server = MockServer::start().await;
    mount_token(&server, "t1", Some(1)).await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/webhooks")))
        .and(header("authorization", "Bearer t1"))
        .and(header(
            "user-agent",
            "ProtimeTests/1.0 (Protime Rust Workspace)",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
        .expect(24)
        .mount(&server)
        .await;
    let client = client(&server);
    let calls = (0..24).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.list_webhooks(&WebhookFilter::default()).await })
    });
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(client.token_requests(), 1);
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_retries() {
    let server = MockServer::start().await;
    mount_token(&server, "stale", Some(1)).await;
    mount_token(&server, "fresh", None).await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/webhooks/w1")))
        .and(header("authorization", "Bearer stale"))
        .respond_with(ResponseTemplate::new(401)) // empty body, as from a gateway
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/webhooks/w1")))
        .and(header("authorization", "Bearer fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook(
            "w1",
            "Enabled",
            "2030-01-01T00:00:00Z",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let webhook = client.get_webhook("w1").await.unwrap();
    assert_eq!(webhook.id, "w1");
    assert_eq!(client.token_requests(), 2);
}

#[tokio::test]
async fn a_persistent_empty_401_keeps_its_status() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/webhooks/w1")))
        .respond_with(ResponseTemplate::new(401))
        .expect(2) // the first try and the one after the refresh, no more
        .mount(&server)
        .await;
    let error = client(&server).get_webhook("w1").await.unwrap_err();
    assert_eq!(error.status(), Some(401), "{error}");
    assert!(error.is_auth());
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_succeeds() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/webhooks")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(
                    json!({"error": {"code": "TooManyRequests", "message": "slow down"}}),
                ),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/webhooks")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"value": [webhook("w1", "Enabled", "2030-01-01T00:00:00Z")]}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let webhooks = client(&server)
        .list_webhooks(&WebhookFilter::default())
        .await
        .unwrap();
    assert_eq!(webhooks.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After was not honoured"
    );
}

#[tokio::test]
async fn a_503_is_retried_with_backoff_and_a_400_is_not() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings/7")))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"error": {"code": "ServiceUnavailable", "message": "maintenance"}}),
        ))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings/7")))
        .respond_with(ResponseTemplate::new(200).set_body_json(clocking(7)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings/8")))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"code": "BadRequest", "message": "no"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    assert_eq!(client.get_clocking(7).await.unwrap().id.get(), 7);
    assert_eq!(
        client.get_clocking(8).await.unwrap_err().status(),
        Some(400)
    );
}

#[tokio::test]
async fn every_documented_error_body_is_decoded() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    let cases = [
        (
            400,
            json!({"error": {"code": "BadRequest", "message": "The request was invalid", "reasons": ["The provided date range is invalid"]}}),
        ),
        (
            400,
            json!({"validationErrors": [{"field": "destinationUrl", "message": "invalid"}]}),
        ),
        (
            403,
            json!({"error": {"code": "Forbidden", "message": "missing scope"}}),
        ),
        (
            404,
            json!({"error": {"code": "NotFound", "message": "no such webhook"}}),
        ),
        (
            500,
            json!({"error": {"code": "InternalServerError", "message": "boom"}}),
        ),
    ];
    for (index, (status, body)) in cases.iter().enumerate() {
        Mock::given(method("GET"))
            .and(path(format!("{API}/webhooks/e{index}")))
            .respond_with(ResponseTemplate::new(*status).set_body_json(body))
            .mount(&server)
            .await;
    }
    let client = client(&server);
    for (index, (status, _)) in cases.iter().enumerate() {
        match client.get_webhook(&format!("e{index}")).await.unwrap_err() {
            Error::Api {
                status: got, body, ..
            } => {
                assert_eq!(got, *status);
                match index {
                    0 => {
                        assert_eq!(body.code.as_deref(), Some("BadRequest"));
                        assert_eq!(
                            body.reasons,
                            vec!["The provided date range is invalid".to_string()]
                        );
                    }
                    1 => assert_eq!(body.validation_errors.len(), 1),
                    _ => assert!(body.message.is_some()),
                }
            }
            other => panic!("case {index}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn clockings_follow_next_link_across_three_pages_with_an_empty_middle_page() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    let filter = january();
    let expression = filter.expression();
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .and(query_param("filter", expression.as_str()))
        .and(wiremock::matchers::query_param_is_missing(
            "continuationToken",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [clocking(1), clocking(2)],
            // Unencoded spaces, as in Protime's own example.
            "nextLink": format!("{API}/clockings?filter={expression}&continuationToken=page2")
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .and(query_param("continuationToken", "page2"))
        .and(query_param("filter", expression.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [],
            "nextLink": format!("{API}/clockings?filter={expression}&continuationToken=page3")
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .and(query_param("continuationToken", "page3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [clocking(3)]})))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let ids: Vec<i64> = client
        .clockings(&filter)
        .map(|c| c.unwrap().id.get())
        .collect()
        .await;
    assert_eq!(ids, vec![1, 2, 3]);
}

#[tokio::test]
async fn an_invalid_item_is_reported_alone_and_does_not_end_its_page_or_the_list() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    let filter = january();
    let mut out_of_range = clocking(2);
    out_of_range["timeOfDayInMinutes"] = json!(99999);
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .and(wiremock::matchers::query_param_is_missing(
            "continuationToken",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [clocking(1), out_of_range, clocking(3)],
            "nextLink": format!("{API}/clockings?continuationToken=page2")
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .and(query_param("continuationToken", "page2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [clocking(4)]})))
        .mount(&server)
        .await;
    let client = client(&server);

    let pages: Vec<_> = client.clocking_pages(&filter).collect().await;
    let pages: Vec<_> = pages.into_iter().map(Result::unwrap).collect();
    assert_eq!(pages.len(), 2);
    let ids = |page: &protime_client::ClockingPage| -> Vec<i64> {
        page.clockings.iter().map(|c| c.id.get()).collect()
    };
    assert_eq!(ids(&pages[0]), vec![1, 3]);
    assert_eq!(pages[0].invalid.len(), 1);
    let pointers: Vec<&str> = pages[0].invalid[0]
        .errors()
        .iter()
        .map(|e| e.pointer.as_str())
        .collect();
    assert_eq!(pointers, vec!["/data/timeOfDayInMinutes"]);
    assert_eq!(ids(&pages[1]), vec![4]);

    // Item by item: the invalid one comes after the valid ones of its page.
    let items: Vec<_> = client.clockings(&filter).collect().await;
    let summary: Vec<Result<i64, &'static str>> = items
        .iter()
        .map(|item| match item {
            Ok(clocking) => Ok(clocking.id.get()),
            Err(Error::InvalidItem { operation, .. }) => Err(*operation),
            Err(other) => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(summary, vec![Ok(1), Ok(3), Err("list_clockings"), Ok(4)]);
}

/// The sync reads list items under the client's profile: an item with only what ordering
/// needs is synced by default and skipped as invalid under `Strict`; an item without
/// `changeVersion` (as in the docs' list examples) is synced by default with the absent
/// version (counted as unversioned) and skipped as invalid under `Strict`.
#[tokio::test]
async fn the_sync_validates_list_items_under_the_client_s_profile() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    let partial = json!({"changeVersion": "0000090200004BD0000B", "id": 2, "date": "2026-01-02"});
    let mut unordered = clocking(3);
    unordered.as_object_mut().unwrap().remove("changeVersion");
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [clocking(1), partial, unordered]
        })))
        .mount(&server)
        .await;
    for (profile, synced, invalid, unversioned) in [
        (protime_model::Profile::Documented, vec![1, 2, 3], 0, 1),
        (protime_model::Profile::Strict, vec![1], 2, 0),
    ] {
        let client = client_with(&server, profile);
        assert_eq!(client.profile(), profile);
        let sink = InMemorySink::default();
        let totals = protime_webhooks::subscription::sync(&client, &january(), &sink, "test", None)
            .await
            .unwrap();
        assert_eq!(totals.invalid, invalid, "{profile}");
        assert_eq!(totals.unversioned, unversioned, "{profile}");
        assert_eq!(totals.synced, synced.len() as u64, "{profile}");
        assert_eq!(totals.applied, synced.len() as u64, "{profile}");
        let mut ids: Vec<i64> = sink.tracker().current().map(|c| c.id.get()).collect();
        ids.sort_unstable();
        assert_eq!(ids, synced, "{profile}");
        let absent: Vec<i64> = sink
            .tracker()
            .current()
            .filter(|c| c.change_version.is_absent())
            .map(|c| c.id.get())
            .collect();
        assert_eq!(absent.len() as u64, unversioned, "{profile}");
        if unversioned > 0 {
            assert_eq!(absent, [3], "{profile}");
            // A second sync does not refresh it (a duplicate), and a versioned change of the
            // same id supersedes it.
            let again =
                protime_webhooks::subscription::sync(&client, &january(), &sink, "again", None)
                    .await
                    .unwrap();
            assert_eq!(again.unversioned, 1);
            assert_eq!(again.applied, 0, "everything was synced already");
            let body =
                serde_json::to_vec(&json!({"changeType": "InsertOrUpdate", "data": clocking(3)}))
                    .unwrap();
            let change = protime_model::parse_delivery(&body).unwrap();
            let delivery = protime_webhooks::sink::Delivery::webhook(
                change,
                protime_webhooks::sink::WebhookOrigin::new(body.into(), "test"),
            );
            assert_eq!(
                protime_webhooks::sink::DeliverySink::record(&sink, delivery)
                    .await
                    .unwrap(),
                protime_webhooks::sink::Receipt::Applied(protime_model::ApplyOutcome::Applied)
            );
            let stored = sink
                .tracker()
                .version(protime_model::ClockingId::new(3).unwrap())
                .cloned();
            assert_eq!(
                stored.map(|v| v.as_str().to_owned()),
                Some(format!("{:020X}", 3))
            );
        }
    }
}

#[tokio::test]
async fn a_delta_initial_load_of_items_shaped_like_the_docs_examples_loads_by_default() {
    // https://documentation.myprotime.eu/protimeapi/how-to/track-changes-with-delta/: the
    // items carry only changeVersion, id and date. One page of them, a next page with a
    // complete item: no page fails as a whole.
    for profile in [
        protime_model::Profile::Documented,
        protime_model::Profile::Strict,
    ] {
        let server = MockServer::start().await;
        mount_token(&server, "t", None).await;
        Mock::given(method("GET"))
            .and(path(format!("{API}/clockings")))
            .and(query_param("delta", ""))
            .and(wiremock::matchers::query_param_is_missing(
                "continuationToken",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "value": [
                    {"changeVersion": "0000090200004BD0000A", "id": 76547, "date": "2024-01-05"},
                    {"changeVersion": "0000090200004BD0000B", "id": 76548, "date": "2024-01-06"}
                ],
                "nextLink": format!("{API}/clockings?delta=&continuationToken=c1")
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("{API}/clockings")))
            .and(query_param("continuationToken", "c1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "value": [clocking(1)],
                "deltaLink": format!("{API}/delta/clockings?deltaToken=d1")
            })))
            .expect(1)
            .mount(&server)
            .await;
        let snapshot = client_with(&server, profile)
            .delta_initial_load(&DeltaFilter::since(recent_start()))
            .await
            .unwrap();
        let ids: Vec<i64> = snapshot.clockings.iter().map(|c| c.id.get()).collect();
        match profile {
            protime_model::Profile::Documented => {
                assert_eq!(ids, [76547, 76548, 1]);
                assert!(snapshot.invalid.is_empty());
                assert_eq!(snapshot.clockings[0].person, None);
                assert_eq!(snapshot.clockings[0].kind, None);
            }
            _ => {
                assert_eq!(ids, [1]);
                assert_eq!(snapshot.invalid.len(), 2, "kept with the JSON as listed");
                assert_eq!(snapshot.invalid[0].0["id"], 76547);
                assert!(snapshot.invalid[0].1.to_string().contains("/data/person"));
            }
        }
        assert!(snapshot.token.link().contains("deltaToken=d1"));
    }
}

#[tokio::test]
async fn a_next_link_to_the_page_just_read_is_refused_instead_of_looping() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    let looping = format!("{API}/clockings?delta=&continuationToken=same");
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [clocking(1)],
            "nextLink": looping
        })))
        .mount(&server)
        .await;
    let client = client(&server);
    let error = client
        .delta_initial_load(&DeltaFilter::since(recent_start()))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("never end"), "{error}");
    let pages: Vec<_> = client.clocking_pages(&january()).collect().await;
    assert_eq!(
        pages.len(),
        2,
        "the first page, then the refusal of the page linking to itself"
    );
    assert!(pages[0].is_ok());
    assert!(
        pages[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("never end")
    );
    assert!(server.received_requests().await.unwrap().len() < 10);
}

#[tokio::test]
async fn delta_initial_load_then_changes_then_410() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .and(query_param("delta", ""))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [clocking(1)],
            "deltaLink": format!("{API}/delta/clockings?deltaToken=d1")
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/delta/clockings")))
        .and(query_param("deltaToken", "d1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [
                {"changeType": "InsertOrUpdate", "data": clocking(2)},
                {"changeType": "Delete", "data": {"changeVersion": "0000090200004BD0000C", "id": 1}},
                {"changeType": "InsertOrUpdate", "data": {"changeVersion": "X", "id": 3, "person": {"id": 1},
                  "date": "2026-01-15", "timeOfDayInMinutes": 2881, "kind": "InOut"}}
            ],
            "deltaLink": format!("{API}/delta/clockings?deltaToken=d2")
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/delta/clockings")))
        .and(query_param("deltaToken", "d2"))
        .respond_with(
            ResponseTemplate::new(410)
                .set_body_json(json!({"error": {"code": "Gone", "message": "delta expired"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    // A start relative to today: a fixed one would fall below the floor in a later year.
    let snapshot = client
        .delta_initial_load(&DeltaFilter::since(recent_start()))
        .await
        .unwrap();
    assert_eq!(snapshot.clockings.len(), 1);
    let changes = client.delta(&snapshot.token).await.unwrap();
    assert_eq!(changes.changes.len(), 2);
    assert!(changes.changes[1].removes_clocking());
    assert_eq!(
        changes.invalid.len(),
        1,
        "the invalid change is kept, not dropped"
    );
    assert!(matches!(
        client.delta(&changes.next).await,
        Err(Error::DeltaExpired)
    ));
}

#[tokio::test]
async fn create_webhook_returns_the_key_and_refuses_http_unless_allowed() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/webhooks")))
        .and(query_param("externalReferences", "(people,@badge-number)"))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("location", format!("{API}/webhooks/new-1").as_str())
                // The key under another name and no id: the client copes with both.
                .set_body_json(
                    json!({"privateKey": "k-123", "validUntil": "2030-01-01T00:00:00+02:00"}),
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let created = client
        .create_webhook(
            "http://127.0.0.1:9/hook",
            CollectionName::Clockings,
            &[protime_client::ExternalReference::new(
                "people",
                "@badge-number",
            )],
        )
        .await
        .unwrap();
    assert_eq!(created.id, "new-1");
    assert_eq!(created.key.expose_secret(), "k-123");
    assert!(!format!("{created:?}").contains("k-123"));

    let strict = ProtimeClient::builder()
        .base_url(server.uri())
        .token_url(format!("{}{TOKEN_PATH}", server.uri()))
        .client_credentials(
            "client-1",
            ClientSecret::new("s3cret"),
            ProtimeClient::WEBHOOK_SCOPES,
        )
        .user_agent("ProtimeTests/1.0 (Protime Rust Workspace)")
        .build()
        .unwrap();
    let error = strict
        .create_webhook("http://example.com/hook", CollectionName::Clockings, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::InsecureDestination { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn the_lifecycle_replaces_a_webhook_that_expires_mid_stream() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    // The current webhook expires in one minute: inside the lead time.
    let soon = (chrono::Utc::now() + chrono::TimeDelta::minutes(1)).to_rfc3339();
    Mock::given(method("POST"))
        .and(path(format!("{API}/webhooks")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": "new", "key": "new-key", "validUntil": "2030-01-01T00:00:00Z"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"value": [clocking(1), clocking(2)]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{API}/webhooks/old")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/webhooks/new")))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook(
            "new",
            "Disabled",
            "2030-01-01T00:00:00Z",
        )))
        .mount(&server)
        .await;

    let old_key = WebhookKey::new("old-key").unwrap();
    let verifier = Verifier::new(SignatureScheme::default(), [old_key.clone()]).unwrap();
    let subscription =
        Subscription::new(client(&server), "http://127.0.0.1:9/hook", verifier.clone()).resume(
            SubscriptionState {
                webhook_id: "old".into(),
                valid_until: chrono::DateTime::parse_from_rfc3339(&soon).unwrap().into(),
                key_fingerprint: old_key.fingerprint(),
            },
        );
    assert!(subscription.time_left(chrono::Utc::now()).unwrap() < chrono::TimeDelta::minutes(2));
    assert!(subscription.needs_reinitialization().await.unwrap());

    let sink = InMemorySink::default();
    let report = subscription
        .reinitialize(
            &ClockingsFilter::between(
                chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                chrono::NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
            )
            .unwrap(),
            &sink,
        )
        .await
        .unwrap();
    assert_eq!(report.state.webhook_id, "new");
    assert_eq!((report.synced, report.applied), (2, 2));
    assert!(report.previous_deleted);
    assert_eq!(sink.tracker().current().count(), 2);
    let new_fingerprint = WebhookKey::new("new-key").unwrap().fingerprint();
    assert_eq!(
        verifier.key_fingerprints(),
        vec![new_fingerprint],
        "old key retired, new key active"
    );

    // The new webhook is reported Disabled (e.g. retries exhausted): detected.
    assert!(subscription.needs_reinitialization().await.unwrap());
}

// -- Client fidelity: external references, the delta filter, the webhook list filter,
// -- api-version, conditional GET ---------------------------------------------------------

const BADGE: &str = "(people,@badge-number)";

fn badge() -> [ExternalReference; 1] {
    [ExternalReference::new("people", "@badge-number")]
}

fn clocking_with_badge(id: i64) -> serde_json::Value {
    let mut value = clocking(id);
    value["person"]["externalReferences"] = json!({"@badge-number": format!("B{id}")});
    value
}

/// A delta start inside the allowed range whatever the day the test runs.
fn recent_start() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive() - chrono::TimeDelta::days(1)
}

#[tokio::test]
async fn list_pages_ask_for_external_references_also_where_next_link_omits_them() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    let filter = january();
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .and(query_param("filter", filter.expression()))
        .and(query_param("externalReferences", BADGE))
        .and(wiremock::matchers::query_param_is_missing(
            "continuationToken",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [clocking_with_badge(1)],
            // This nextLink does not repeat externalReferences: the client adds them.
            "nextLink": format!("{API}/clockings?filter=date ge '2026-01-01'&continuationToken=c1")
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .and(query_param("continuationToken", "c1"))
        .and(query_param("externalReferences", BADGE))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"value": [clocking_with_badge(2)]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let references = badge();
    let clockings: Vec<_> = client
        .clockings_with_references(&filter, &references)
        .collect()
        .await;
    let badges: Vec<_> = clockings
        .into_iter()
        .map(|c| c.unwrap().person.unwrap().external_references.unwrap()["@badge-number"].clone())
        .collect();
    assert_eq!(badges, vec!["B1", "B2"]);
}

#[tokio::test]
async fn get_asks_for_external_references_and_refuses_an_unwritable_one() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings/7")))
        .and(query_param("externalReferences", BADGE))
        .respond_with(ResponseTemplate::new(200).set_body_json(clocking_with_badge(7)))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let clocking = client
        .get_clocking_with_references(7, &badge())
        .await
        .unwrap();
    assert_eq!(
        clocking.person.unwrap().external_references.unwrap()["@badge-number"],
        "B7"
    );
    let refused = client
        .get_clocking_with_references(7, &[ExternalReference::new("people", "a)(b")])
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::InvalidFilter(_)), "{refused}");
}

#[tokio::test]
async fn delta_asks_for_external_references_on_the_load_its_pages_and_every_change() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    let filter = DeltaFilter::since(recent_start());
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .and(query_param("filter", filter.expression()))
        .and(query_param("delta", ""))
        .and(query_param("externalReferences", BADGE))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [clocking_with_badge(1)],
            "nextLink": format!("{API}/clockings?continuationToken=c1&deltaToken=d0")
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .and(query_param("continuationToken", "c1"))
        .and(query_param("externalReferences", BADGE))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [clocking_with_badge(2)],
            "deltaLink": format!("{API}/delta/clockings?deltaToken=d1")
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/delta/clockings")))
        .and(query_param("deltaToken", "d1"))
        .and(query_param("externalReferences", BADGE))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"changeType": "InsertOrUpdate", "data": clocking_with_badge(3)}],
            "deltaLink": format!("{API}/delta/clockings?deltaToken=d2")
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/delta/clockings")))
        .and(query_param("deltaToken", "d2"))
        .and(query_param("externalReferences", BADGE))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [], "deltaLink": format!("{API}/delta/clockings?deltaToken=d3")
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let snapshot = client
        .delta_initial_load_with_references(&filter, &badge())
        .await
        .unwrap();
    assert_eq!(snapshot.clockings.len(), 2);
    assert!(
        snapshot.clockings.iter().all(|c| c
            .person
            .as_ref()
            .is_some_and(|p| p.external_references.is_some())),
        "baseline rows carry the references"
    );
    let changes = client.delta(&snapshot.token).await.unwrap();
    assert_eq!(changes.changes.len(), 1);
    let again = client.delta(&changes.next).await.unwrap();
    assert!(again.changes.is_empty());
}

#[tokio::test]
async fn a_delta_start_before_the_floor_is_refused_before_anything_is_sent() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
        .expect(0)
        .mount(&server)
        .await;
    let client = client(&server);
    let today = chrono::Utc::now().date_naive();
    let too_early = DeltaFilter::earliest_start(today) - chrono::TimeDelta::days(1);
    let error = client
        .delta_initial_load(&DeltaFilter::since(too_early))
        .await
        .unwrap_err();
    match &error {
        Error::DeltaStartOutOfRange {
            start,
            earliest,
            latest,
            ..
        } => {
            assert_eq!(*start, too_early);
            assert_eq!(*earliest, DeltaFilter::earliest_start(today));
            assert_eq!(*latest, today);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(
        error.to_string().contains(
            "https://documentation.myprotime.eu/protimeapi/reference/collections/clockings/delta/"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn the_webhook_list_filters_by_collection_name_with_the_documented_spelling() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/webhooks")))
        .and(query_param(
            "filter",
            "status eq 'Enabled' and collection-name eq 'clockings'",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/webhooks")))
        .and(query_param("filter", "collectionName eq 'clockings'"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let filter = WebhookFilter::default()
        .status(protime_raw::types::WebhookStatus::Enabled)
        .collection(CollectionName::Clockings);
    client.list_webhooks(&filter).await.unwrap();
    let other = WebhookFilter::default()
        .collection(CollectionName::Clockings)
        .collection_identifier("collectionName");
    client.list_webhooks(&other).await.unwrap();
}

/// The `api-version` values of every API request the server received (token requests
/// excluded), one entry per request.
async fn api_versions(server: &MockServer) -> Vec<Option<String>> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|request| request.url.path().starts_with(API))
        .map(|request| {
            request
                .headers
                .get("api-version")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .collect()
}

async fn mount_api_version_endpoints(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(format!("{API}/webhooks/w1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook(
            "w1",
            "Enabled",
            "2030-01-01T00:00:00Z",
        )))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [clocking(1)]})))
        .mount(server)
        .await;
}

#[tokio::test]
async fn no_api_version_header_is_sent_unless_configured() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    mount_api_version_endpoints(&server).await;
    let filter = january();

    // Default: neither the generated operations nor the hand-built requests send it.
    let client = client(&server);
    client.get_webhook("w1").await.unwrap();
    client.raw().get_webhook().id("w1").send().await.unwrap();
    let _: Vec<_> = client.clockings(&filter).collect().await;
    assert_eq!(api_versions(&server).await, vec![None, None, None]);

    // Configured: every request sends the configured value (not the spec's `info.version`).
    server.reset().await;
    mount_token(&server, "t", None).await;
    mount_api_version_endpoints(&server).await;
    let configured = ProtimeClient::builder()
        .base_url(server.uri())
        .token_url(format!("{}{TOKEN_PATH}", server.uri()))
        .client_credentials(
            "client-1",
            ClientSecret::new("s3cret"),
            ProtimeClient::WEBHOOK_SCOPES,
        )
        .user_agent("ProtimeTests/1.0 (Protime Rust Workspace)")
        .api_version_header("2.0")
        .build()
        .unwrap();
    configured.get_webhook("w1").await.unwrap();
    configured
        .raw()
        .get_webhook()
        .id("w1")
        .send()
        .await
        .unwrap();
    let _: Vec<_> = configured.clockings(&filter).collect().await;
    let two = Some("2.0".to_owned());
    assert_eq!(
        api_versions(&server).await,
        vec![two.clone(), two.clone(), two]
    );
}

#[tokio::test]
async fn a_conditional_get_answers_not_modified_on_304() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings/7")))
        .and(header("if-none-match", "\"46ab44\""))
        .and(query_param("externalReferences", BADGE))
        .respond_with(ResponseTemplate::new(304))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings/7")))
        .and(wiremock::matchers::query_param_is_missing(
            "externalReferences",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"46ab44\"")
                .set_body_json(clocking(7)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let etag = match client.get_clocking_if_changed(7, None, &[]).await.unwrap() {
        IfChanged::Changed { clocking, etag } => {
            assert_eq!(clocking.id.get(), 7);
            etag.unwrap()
        }
        IfChanged::NotModified => panic!("no ETag was sent"),
    };
    assert_eq!(etag, "\"46ab44\"");
    assert!(matches!(
        client
            .get_clocking_if_changed(7, Some(&etag), &badge())
            .await
            .unwrap(),
        IfChanged::NotModified
    ));
}

#[tokio::test]
async fn the_subscription_sync_asks_for_the_webhook_s_external_references() {
    let server = MockServer::start().await;
    mount_token(&server, "t", None).await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/webhooks")))
        .and(query_param("externalReferences", BADGE))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": "new", "key": "new-key", "validUntil": "2030-01-01T00:00:00Z"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/clockings")))
        .and(query_param("externalReferences", BADGE))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"value": [clocking_with_badge(1), clocking_with_badge(2)]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let verifier = Verifier::without_keys(SignatureScheme::default()).unwrap();
    let subscription = Subscription::new(client(&server), "http://127.0.0.1:9/hook", verifier)
        .with_external_references(badge().to_vec());
    let sink = InMemorySink::default();
    let report = subscription.reinitialize(&january(), &sink).await.unwrap();
    assert_eq!((report.synced, report.applied), (2, 2));
}
