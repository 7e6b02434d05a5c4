//! The HTTP API over loopback: tokens, auth errors, webhooks, paging, delta, clockings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Api, CLOCKINGS, DELTA, WEBHOOKS, error_code, q, small_config};
use protime_sandbox::{ClientConfig, Sandbox, SandboxConfig, scopes};
use reqwest::StatusCode;
use serde_json::{Value, json};

const RANGE: &str = "date ge '2026-01-01' and date le '2026-01-31'";

fn list_path(filter: &str) -> String {
    format!("{CLOCKINGS}?filter={}", q(filter))
}

#[tokio::test]
async fn token_endpoint_issues_tokens_and_counts_requests() {
    let sandbox = Sandbox::start(small_config()).await.unwrap();
    let api = Api::new(&sandbox);
    assert_eq!(sandbox.stats().token_requests, 0);

    let ok = api
        .token_request(
            &sandbox,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "sandbox-client"),
                ("client_secret", "sandbox-secret"),
                ("scope", "connector-protimeapi-clockings.read"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.header("cache-control"), Some("no-store"));
    let body = ok.json();
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "connector-protimeapi-clockings.read");
    assert!(body["access_token"].as_str().unwrap().len() >= 40);

    // No scope: every scope of the client.
    let all = api
        .token_request(
            &sandbox,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "sandbox-client"),
                ("client_secret", "sandbox-secret"),
            ],
        )
        .await;
    let granted: BTreeSet<String> = all.json()["scope"]
        .as_str()
        .unwrap()
        .split(' ')
        .map(str::to_owned)
        .collect();
    assert_eq!(
        granted,
        scopes::ALL.into_iter().map(str::to_owned).collect()
    );
    assert_ne!(
        all.json()["access_token"],
        body["access_token"],
        "tokens are random"
    );

    for (form, status, error) in [
        (
            vec![("grant_type", "password"), ("client_id", "sandbox-client")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            vec![
                ("client_id", "sandbox-client"),
                ("client_secret", "sandbox-secret"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "sandbox-client"),
                ("client_secret", "wrong"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![("grant_type", "client_credentials")],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "sandbox-client"),
                ("client_secret", "sandbox-secret"),
                ("scope", "connector-protimeapi-people.read"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
    ] {
        let answer = api.token_request(&sandbox, &form).await;
        assert_eq!(answer.status, status, "{form:?}: {}", answer.text);
        assert_eq!(answer.json()["error"], error, "{form:?}");
    }

    // HTTP Basic client authentication works too.
    let basic = api
        .http
        .post(sandbox.token_url())
        .basic_auth("sandbox-client", Some("sandbox-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::OK);

    // Discovery points at the token endpoint.
    let discovery: Value = api
        .http
        .get(format!(
            "{}/tenants/sandbox/.well-known/openid-configuration",
            sandbox.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["token_endpoint"], sandbox.token_url());
    // Another tenant does not exist.
    let other = api
        .http
        .post(format!(
            "{}/tenants/other/connect/token",
            sandbox.base_url()
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    let stats = sandbox.stats();
    assert_eq!(stats.token_requests, 9);
    assert_eq!(stats.tokens_issued, 3);
    assert_eq!(stats.api_requests, 0);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn auth_errors_401_403_400_and_429() {
    let config = SandboxConfig {
        clients: vec![
            ClientConfig::default_client(),
            ClientConfig::new("reader", "reader-secret", [scopes::CLOCKINGS_READ]),
        ],
        rate_limit_per_second: Some(5),
        ..small_config()
    };
    let sandbox = Sandbox::start(config).await.unwrap();
    let path = list_path(RANGE);

    // 401: no token, a wrong one, an expired one; each with the documented body.
    let mut anonymous = Api::new(&sandbox);
    let answer = anonymous.get(&path).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&answer), "Unauthorized");
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    anonymous.token = Some("made-up".into());
    assert_eq!(anonymous.get(&path).await.status, StatusCode::UNAUTHORIZED);

    let api = Api::authorized(&sandbox).await;
    assert_eq!(api.get(&path).await.status, StatusCode::OK);

    // 400: the User-Agent is mandatory.
    let mut no_agent = Api::authorized(&sandbox).await;
    no_agent.user_agent = None;
    let answer = no_agent.get(&path).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&answer), "BadRequest");
    assert!(answer.text.contains("User-Agent"));

    // 403: a valid token without the scope.
    let mut reader = Api::new(&sandbox);
    let token = reader
        .token_request(
            &sandbox,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "reader"),
                ("client_secret", "reader-secret"),
            ],
        )
        .await;
    reader.token = Some(token.json()["access_token"].as_str().unwrap().to_owned());
    assert_eq!(reader.get(&path).await.status, StatusCode::OK);
    let answer = reader.get(WEBHOOKS).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&answer), "Forbidden");
    assert!(answer.text.contains(scopes::WEBHOOKS_READ));

    // 429 with Retry-After past the per-token rate; another token is not affected.
    let limited = Api::authorized(&sandbox).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(limited.get(&path).await);
    }
    let too_many: Vec<_> = statuses
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(!too_many.is_empty(), "no 429 in 8 requests at 5/s");
    assert!(too_many.len() <= 3);
    let first = too_many[0];
    assert_eq!(error_code(first), "TooManyRequests");
    let retry_after: u64 = first.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=1).contains(&retry_after));
    assert_eq!(reader.get(&path).await.status, StatusCode::OK);
    assert!(sandbox.stats().rate_limited >= 1);

    // Expired tokens: 401 until a new token is fetched.
    sandbox.expire_tokens();
    let answer = api.get(&path).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.text.contains("expired"));
    let fresh = Api::authorized(&sandbox).await;
    assert_eq!(fresh.get(&path).await.status, StatusCode::OK);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn token_lifetime_is_enforced() {
    let sandbox = Sandbox::start(SandboxConfig {
        token_lifetime: Duration::from_millis(700),
        ..small_config()
    })
    .await
    .unwrap();
    let api = Api::authorized(&sandbox).await;
    let path = list_path(RANGE);
    assert_eq!(api.get(&path).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(api.get(&path).await.status, StatusCode::UNAUTHORIZED);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn maintenance_and_injected_failures() {
    let sandbox = Sandbox::start(small_config()).await.unwrap();
    let api = Api::authorized(&sandbox).await;
    sandbox.set_maintenance(Some(Duration::from_secs(30)));
    let answer = api.get(WEBHOOKS).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header("retry-after"), Some("30"));
    assert_eq!(error_code(&answer), "ServiceUnavailable");
    sandbox.set_maintenance(None);
    sandbox.fail_next_requests(2);
    assert_eq!(
        api.get(WEBHOOKS).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        api.get(WEBHOOKS).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(api.get(WEBHOOKS).await.status, StatusCode::OK);
    // Unknown routes: 404 with the error body.
    let answer = api.get("/connector/protimeapi/api/v1/people").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&answer), "NotFound");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn webhooks_crud_filter_and_expiry() {
    let sandbox = Sandbox::start(SandboxConfig {
        webhook_validity: Duration::from_secs(3600),
        ..small_config()
    })
    .await
    .unwrap();
    let api = Api::authorized(&sandbox).await;

    let created = api
        .post(
            &format!(
                "{WEBHOOKS}?externalReferences={}",
                q("(people,@badge-number)(terminals,@external-code)")
            ),
            &json!({"destinationUrl": "http://127.0.0.1:9/hooks", "collectionName": "clockings"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let body = created.json();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.header("location").unwrap(),
        format!("{WEBHOOKS}/{id}")
    );
    assert_eq!(body["status"], "Enabled");
    assert!(body["key"].as_str().unwrap().len() >= 40);
    let valid_until: chrono::DateTime<chrono::Utc> =
        body["validUntil"].as_str().unwrap().parse().unwrap();
    let left = valid_until - chrono::Utc::now();
    assert!(left > chrono::TimeDelta::minutes(59) && left <= chrono::TimeDelta::hours(1));

    // The key is returned only at creation.
    let got = api.get(&format!("{WEBHOOKS}/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.json().get("key").is_none());
    assert_eq!(
        got.json()["externalReferences"],
        json!({"people": "@badge-number", "terminals": "@external-code"})
    );

    let other = api
        .post(
            WEBHOOKS,
            &json!({"destinationUrl": "http://127.0.0.1:9/people", "collectionName": "people"}),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED);
    let other_id = other.json()["id"].as_str().unwrap().to_owned();

    let list = |filter: &str| format!("{WEBHOOKS}?filter={}", q(filter));
    let ids = |answer: &common::Answer| -> Vec<String> {
        answer.json()["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&api.get(WEBHOOKS).await).len(), 2);
    assert_eq!(
        ids(&api.get(&list("collectionName eq 'clockings'")).await),
        vec![id.clone()]
    );
    assert!(ids(&api.get(&list("status eq 'Disabled'")).await).is_empty());

    // Soft delete: 204, then Disabled and still queryable.
    assert_eq!(
        api.delete(&format!("{WEBHOOKS}/{other_id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let deleted = api.get(&format!("{WEBHOOKS}/{other_id}")).await;
    assert_eq!(deleted.json()["status"], "Disabled");
    assert_eq!(
        ids(&api.get(&list("status eq 'Disabled'")).await),
        vec![other_id.clone()]
    );
    assert_eq!(
        ids(&api
            .get(&list(
                "status eq 'Enabled' and collectionName eq 'clockings'"
            ))
            .await),
        vec![id.clone()]
    );

    // Expiry is checked lazily.
    assert!(sandbox.expire_webhook(&id));
    assert_eq!(
        api.get(&format!("{WEBHOOKS}/{id}")).await.json()["status"],
        "Disabled"
    );

    // Errors.
    for (body, needle) in [
        (
            json!({"destinationUrl": "not a url", "collectionName": "clockings"}),
            "destinationUrl",
        ),
        (
            json!({"destinationUrl": "ftp://x.example/", "collectionName": "clockings"}),
            "scheme",
        ),
    ] {
        let answer = api.post(WEBHOOKS, &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&answer), "BadRequest");
        assert!(answer.text.contains(needle), "{}", answer.text);
    }
    let answer = api
        .post(
            WEBHOOKS,
            &json!({"destinationUrl": "http://x.example/", "collectionName": "nope"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.json()["validationErrors"].is_array(),
        "{}",
        answer.text
    );
    let answer = api
        .post(
            &format!("{WEBHOOKS}?externalReferences=people"),
            &json!({"destinationUrl": "http://x.example/", "collectionName": "clockings"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    for filter in [
        "status eq",
        "status eq 'Sleeping'",
        "owner eq 'me'",
        "status eq 'Enabled' or status eq 'Disabled'",
    ] {
        let answer = api.get(&list(filter)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{filter}");
        assert!(
            !answer.json()["error"]["reasons"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
    let missing = format!("{WEBHOOKS}/{}", uuid::Uuid::new_v4());
    assert_eq!(api.get(&missing).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api.delete(&missing).await.status, StatusCode::NOT_FOUND);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn https_destinations_can_be_required() {
    let sandbox = Sandbox::start(SandboxConfig {
        require_https_destinations: true,
        ..small_config()
    })
    .await
    .unwrap();
    let api = Api::authorized(&sandbox).await;
    let answer = api
        .post(
            WEBHOOKS,
            &json!({"destinationUrl": "http://127.0.0.1:9/", "collectionName": "clockings"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.text.contains("HTTPS"));
    sandbox.shutdown().await;
}

fn ids_of(pages: &[Value]) -> Vec<u64> {
    pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap().iter())
        .map(|c| c["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn paging_with_an_empty_middle_page() {
    let sandbox = Sandbox::start(SandboxConfig {
        page_size: 7,
        empty_page_every: Some(3),
        ..small_config()
    })
    .await
    .unwrap();
    let api = Api::authorized(&sandbox).await;
    let pages = api.all_pages(&list_path(RANGE)).await;
    assert!(pages.len() >= 4, "{} pages", pages.len());

    // Every third page is empty but has a nextLink: a client must not stop there.
    let empty: Vec<usize> = pages
        .iter()
        .enumerate()
        .filter(|(_, p)| p["value"].as_array().unwrap().is_empty())
        .map(|(i, _)| i)
        .collect();
    assert!(empty.contains(&2), "{empty:?}");
    for &i in &empty {
        assert!(
            pages[i]["nextLink"].is_string(),
            "empty page {i} ends the list"
        );
    }
    let last = pages.last().unwrap();
    assert!(last.get("nextLink").is_none() && last.get("deltaLink").is_none());
    assert!(!last["value"].as_array().unwrap().is_empty());

    // nextLink is host-relative and carries the filter and a continuation token.
    let link = pages[0]["nextLink"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{CLOCKINGS}?filter=date%20ge%20'2026-01-01'")),
        "{link}"
    );
    assert!(link.contains("&continuationToken="), "{link}");

    // All of them, in id order, exactly the sandbox's.
    let ids = ids_of(&pages);
    let expected: Vec<u64> = sandbox.all_clockings().iter().map(|c| c.id.get()).collect();
    assert_eq!(ids, expected);

    // A bad continuation token is a 400.
    let answer = api
        .get(&format!("{}&continuationToken=garbage", list_path(RANGE)))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn unencoded_links_are_as_in_the_docs() {
    let sandbox = Sandbox::start(SandboxConfig {
        page_size: 5,
        unencoded_links: true,
        ..small_config()
    })
    .await
    .unwrap();
    let api = Api::authorized(&sandbox).await;
    let page = api.get(&list_path("date ge '2026-01-01'")).await.json();
    let link = page["nextLink"].as_str().unwrap();
    assert!(
        link.starts_with(&format!(
            "{CLOCKINGS}?filter=date ge '2026-01-01'&continuationToken="
        )),
        "{link}"
    );
    // reqwest::Url encodes the spaces, so following it works.
    let pages = api.all_pages(&list_path("date ge '2026-01-01'")).await;
    assert_eq!(ids_of(&pages).len(), sandbox.all_clockings().len());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn list_filters() {
    let sandbox = Sandbox::start(SandboxConfig {
        page_size: 10,
        ..small_config()
    })
    .await
    .unwrap();
    let api = Api::authorized(&sandbox).await;
    let all = sandbox.all_clockings();
    let people = sandbox.person_ids();
    let (p1, p2) = (people[0], people[1]);

    type Keep = Box<dyn Fn(&protime_raw::types::Clocking) -> bool>;
    let cases: Vec<(String, Keep)> = vec![
        (
            format!("date ge '2026-01-06' and date le '2026-01-07' and person eq {p1}"),
            Box::new(move |c| {
                c.person.id.get() == p1
                    && (c.date.to_string() == "2026-01-06" || c.date.to_string() == "2026-01-07")
            }),
        ),
        (
            format!("person in ({p1}, {p2}) and date ge '2026-01-01' and date le '2026-12-31'"),
            Box::new(move |c| c.person.id.get() == p1 || c.person.id.get() == p2),
        ),
        (
            "date ge '2026-01-01' and date le '2026-01-31' and kind eq 'Reason'".to_owned(),
            Box::new(|c| c.kind == protime_raw::types::ClockingKind::Reason),
        ),
    ];
    for (filter, keep) in cases {
        let ids = ids_of(&api.all_pages(&list_path(&filter)).await);
        let expected: Vec<u64> = all.iter().filter(|c| keep(c)).map(|c| c.id.get()).collect();
        assert!(!expected.is_empty(), "{filter} selects nothing");
        assert_eq!(ids, expected, "{filter}");
    }

    for filter in [
        "person eq 1",
        "date ge '2025-01-01' and date le '2026-01-01'",
        "date ge '2026-01-01' and",
        "date ge '2026-01-01' or person eq 1",
    ] {
        let answer = api.get(&list_path(filter)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{filter}");
        assert_eq!(error_code(&answer), "BadRequest");
        assert!(
            !answer.json()["error"]["reasons"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(api.get(CLOCKINGS).await.status, StatusCode::BAD_REQUEST);

    // External references on related objects.
    let page = api
        .get(&format!(
            "{}&externalReferences={}",
            list_path(RANGE),
            q("(people,@badge-number)(people,HRMID)(terminals,@external-code)")
        ))
        .await
        .json();
    let first = &page["value"][0];
    assert!(
        first["person"]["externalReferences"]["@badge-number"].is_string(),
        "{first}"
    );
    assert!(
        first["person"]["externalReferences"]["HRMID"].is_string(),
        "{first}"
    );
    assert!(
        page["nextLink"]
            .as_str()
            .unwrap()
            .contains("externalReferences=")
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn get_and_create_clockings() {
    let sandbox = Sandbox::start(small_config()).await.unwrap();
    let api = Api::authorized(&sandbox).await;
    let any = sandbox.all_clockings()[3].clone();
    let got = api.get(&format!("{CLOCKINGS}/{}", any.id)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json(), serde_json::to_value(&any).unwrap());
    assert_eq!(
        api.get(&format!("{CLOCKINGS}/1")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&format!("{CLOCKINGS}/abc")).await.status,
        StatusCode::NOT_FOUND
    );

    let person = sandbox.person_ids()[0];
    let version_before = sandbox.change_version();
    let answer = api
        .post(
            CLOCKINGS,
            &json!({"person": {"id": person}, "date": "2026-01-15", "timeOfDayInMinutes": 1800,
                    "terminal": {"externalReferences": {"@external-code": "TERM-765"}},
                    "kind": "Reason", "reason": {"id": 12}, "isOpen": true}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    assert!(answer.text.is_empty());
    let location = answer.header("location").unwrap().to_owned();
    let created = api.get(&location).await.json();
    assert_eq!(created["timeOfDayInMinutes"], 1800);
    assert_eq!(created["kind"], "Reason");
    assert_eq!(created["terminal"]["id"], 765);
    assert_eq!(created["status"], "Active");
    assert!(created["changeVersion"].as_str().unwrap() > version_before.as_str());

    let activity = api
        .post(
            CLOCKINGS,
            &json!({"person": {"id": person}, "date": "2026-01-15", "timeOfDayInMinutes": -30,
                    "kind": "Activity", "activityLevels": [{"level": 1, "activityDefinition": {"id": "38fc2206-0000-4000-8000-000000000001"}}]}),
        )
        .await;
    assert_eq!(activity.status, StatusCode::CREATED, "{}", activity.text);

    for (body, needle) in [
        (
            json!({"person": {"id": person}, "date": "2026-01-15", "timeOfDayInMinutes": 2881, "kind": "InOut"}),
            "out of range",
        ),
        (
            json!({"person": {"id": 999_999}, "date": "2026-01-15", "timeOfDayInMinutes": 5, "kind": "InOut"}),
            "does not exist",
        ),
        (
            json!({"person": {}, "date": "2026-01-15", "timeOfDayInMinutes": 5, "kind": "InOut"}),
            "needs an id",
        ),
        (
            json!({"person": {"id": person}, "date": "2026-01-15", "timeOfDayInMinutes": 5, "kind": "Reason"}),
            "reason is required",
        ),
        (
            json!({"person": {"id": person}, "date": "2026-01-15", "timeOfDayInMinutes": 5, "kind": "InOut", "reason": {"id": 12}}),
            "only allowed for kind Reason",
        ),
        (
            json!({"person": {"id": person}, "date": "2026-01-15", "timeOfDayInMinutes": 5, "kind": "InOut", "isOpen": false}),
            "isOpen",
        ),
        (
            json!({"person": {"id": person}, "date": "2026-01-15", "timeOfDayInMinutes": 5, "kind": "Activity"}),
            "activityLevels is required",
        ),
        (
            json!({"person": {"id": person}, "date": "2026-01-15", "timeOfDayInMinutes": 5, "kind": "ActivityEnd",
                "activityLevels": [{"level": 1, "activityDefinition": {"id": "x"}}]}),
            "only allowed for kind Activity",
        ),
        (
            json!({"person": {"id": person}, "date": "2026-01-15", "timeOfDayInMinutes": 5, "kind": "InOut",
                "geolocation": {"latitude": 91.0, "longitude": 4.0}}),
            "latitude",
        ),
    ] {
        let answer = api.post(CLOCKINGS, &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(answer.text.contains(needle), "{body}: {}", answer.text);
    }
    // A body that does not deserialize: validationErrors without the wrapper.
    let answer = api
        .post(
            CLOCKINGS,
            &json!({"person": {"id": person}, "kind": "InOut"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let errors = answer.json()["validationErrors"].clone();
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("missing field"),
        "{errors}"
    );
    assert!(answer.json().get("error").is_none());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn delta_initial_load_then_changes_then_410() {
    let sandbox = Sandbox::start(SandboxConfig {
        page_size: 20,
        empty_page_every: Some(2),
        ..small_config()
    })
    .await
    .unwrap();
    let api = Api::authorized(&sandbox).await;
    let filter = "date ge '2026-01-01'";

    // Initial load: pages with nextLink, the last one with deltaLink instead.
    let pages = api.all_pages(&format!("{}&delta", list_path(filter))).await;
    assert!(pages.len() >= 3);
    for page in &pages[..pages.len() - 1] {
        assert!(page.get("deltaLink").is_none());
        assert!(page["nextLink"].as_str().unwrap().contains("deltaToken="));
    }
    let last = pages.last().unwrap();
    assert!(last.get("nextLink").is_none());
    let delta_link = last["deltaLink"].as_str().unwrap().to_owned();
    assert!(
        delta_link.starts_with(&format!("{DELTA}?deltaToken=")),
        "{delta_link}"
    );
    let mut state: std::collections::BTreeMap<u64, Value> = pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap().clone())
        .map(|c| (c["id"].as_u64().unwrap(), c))
        .collect();
    assert_eq!(state.len(), sandbox.all_clockings().len());

    // Nothing changed yet: an empty page and a fresh link.
    let nothing = api.get(&delta_link).await;
    assert_eq!(nothing.status, StatusCode::OK, "{}", nothing.text);
    assert!(nothing.json()["value"].as_array().unwrap().is_empty());
    let mut link = nothing.json()["deltaLink"].as_str().unwrap().to_owned();

    // Changes: exactly the generated ones, in order; applying them reproduces the sandbox.
    let generated = sandbox.generate(60);
    let answer = api.get(&link).await.json();
    let items = answer["value"].as_array().unwrap();
    assert_eq!(items.len(), generated.len());
    assert_eq!(
        items,
        &serde_json::to_value(&generated)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    );
    for item in items {
        let id = item["data"]["id"].as_u64().unwrap();
        if item["changeType"] == "Delete" {
            state.remove(&id);
        } else {
            state.insert(id, item["data"].clone());
        }
    }
    let expected: std::collections::BTreeMap<u64, Value> = sandbox
        .all_clockings()
        .into_iter()
        .map(|c| (c.id.get(), serde_json::to_value(&c).unwrap()))
        .collect();
    assert_eq!(state, expected);
    link = answer["deltaLink"].as_str().unwrap().to_owned();
    assert!(
        api.get(&link).await.json()["value"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A delta filtered by person sees only that person's changes.
    let person = sandbox.person_ids()[1];
    let pages = api
        .all_pages(&format!(
            "{}&delta",
            list_path(&format!("{filter} and person eq {person}"))
        ))
        .await;
    let person_link = pages.last().unwrap()["deltaLink"]
        .as_str()
        .unwrap()
        .to_owned();
    sandbox.generate(80);
    let answer = api.get(&person_link).await.json();
    for item in answer["value"].as_array().unwrap() {
        if item["changeType"] == "InsertOrUpdate" {
            assert_eq!(item["data"]["person"]["id"].as_u64(), Some(person));
        }
    }

    // Unknown and expired deltas: 410 Gone with the error body; a missing token is a 400.
    let answer = api
        .get(&format!("{DELTA}?deltaToken=eyJub3QiOiJhIHRva2VuIn0"))
        .await;
    assert_eq!(answer.status, StatusCode::GONE);
    assert_eq!(error_code(&answer), "Gone");
    assert_eq!(api.get(DELTA).await.status, StatusCode::BAD_REQUEST);
    sandbox.expire_deltas();
    let answer = api.get(&link).await;
    assert_eq!(answer.status, StatusCode::GONE);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn delta_tokens_expire_after_the_ttl() {
    let sandbox = Sandbox::start(SandboxConfig {
        delta_token_ttl: Duration::from_millis(800),
        ..small_config()
    })
    .await
    .unwrap();
    let api = Api::authorized(&sandbox).await;
    let pages = api
        .all_pages(&format!("{}&delta", list_path("date ge '2026-01-01'")))
        .await;
    let link = pages.last().unwrap()["deltaLink"]
        .as_str()
        .unwrap()
        .to_owned();
    // Each request keeps the delta alive...
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(api.get(&link).await.status, StatusCode::OK);
    }
    // ...until it is left alone longer than the TTL.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(api.get(&link).await.status, StatusCode::GONE);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn embedded_router_works_with_the_generated_client() {
    // Sandbox::router in our own server, used through protime-raw.
    let sandbox = Sandbox::new(small_config()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().merge(sandbox.router());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("http://{address}{}", sandbox.token_path()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", token["access_token"].as_str().unwrap())
            .parse()
            .unwrap(),
    );
    let authed = reqwest::Client::builder()
        .user_agent(common::USER_AGENT)
        .default_headers(headers)
        .build()
        .unwrap();
    let client = protime_raw::Client::new_with_client(
        &format!("http://{address}"),
        authed,
        protime_raw::Hooks::default(),
    );
    let page = client
        .list_clockings()
        .filter(RANGE)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.value.len(), sandbox.all_clockings().len().min(100));
    let created = client
        .create_webhook()
        .body(protime_raw::types::WebhookCreateRequest {
            destination_url: "http://127.0.0.1:9/hooks".into(),
            collection_name: protime_raw::types::CollectionName::Clockings,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    let id = created.id.unwrap();
    let got = client.get_webhook().id(&id).send().await.unwrap();
    assert_eq!(got.status, protime_raw::types::WebhookStatus::Enabled);
    client.delete_webhook().id(&id).send().await.unwrap();
    let listed = client
        .list_webhooks()
        .filter("status eq 'Disabled'")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.value.len(), 1);
    let missing = client.get_clocking().id(1).send().await.unwrap_err();
    assert_eq!(missing.status(), Some(reqwest::StatusCode::NOT_FOUND));
    server.abort();
}

#[tokio::test]
async fn example_shaped_items_look_like_the_docs_examples() {
    let sandbox = Sandbox::start(SandboxConfig {
        example_shaped_items: true,
        ..small_config()
    })
    .await
    .unwrap();
    let api = Api::authorized(&sandbox).await;
    let filter = q("date ge '2026-01-05' and date le '2026-01-18'");

    // A plain list and a get: complete clockings without changeVersion (fetch-resources).
    let list = api
        .all_pages(&format!(
            "/connector/protimeapi/api/v1/clockings?filter={filter}"
        ))
        .await;
    let items: Vec<&Value> = list
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap())
        .collect();
    assert!(!items.is_empty());
    for item in &items {
        assert!(item.get("changeVersion").is_none(), "{item}");
        assert!(item["id"].is_u64() && item["kind"].is_string() && item["person"].is_object());
    }
    let id = items[0]["id"].as_u64().unwrap();
    let got = api
        .get(&format!("/connector/protimeapi/api/v1/clockings/{id}"))
        .await
        .json();
    assert!(
        got.get("changeVersion").is_none() && got["id"] == id,
        "{got}"
    );

    // A delta's initial load and its pages: only changeVersion, id and date
    // (track-changes-with-delta).
    let load = api
        .all_pages(&format!(
            "/connector/protimeapi/api/v1/clockings?filter={filter}&delta"
        ))
        .await;
    fn shape(item: &Value) -> Vec<&str> {
        let mut names: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names
    }
    for item in load.iter().flat_map(|p| p["value"].as_array().unwrap()) {
        assert_eq!(shape(item), ["changeVersion", "date", "id"], "{item}");
    }
    sandbox.sandbox().generate(5);
    let delta_link = load.last().unwrap()["deltaLink"]
        .as_str()
        .unwrap()
        .to_owned();
    let changes = api.get(&delta_link).await.json();
    let changes = changes["value"].as_array().unwrap();
    assert!(!changes.is_empty());
    for change in changes {
        if change["changeType"] == "InsertOrUpdate" {
            assert_eq!(
                shape(&change["data"]),
                ["changeVersion", "date", "id"],
                "{change}"
            );
        } else {
            assert_eq!(shape(&change["data"]), ["changeVersion", "id"], "{change}");
        }
    }
    sandbox.shutdown().await;
}
