//! Helpers shared by the integration tests: a tiny HTTP client for the sandbox.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use protime_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const USER_AGENT: &str = "SandboxTests/1.0 (Protime Crate)";
pub const WEBHOOKS: &str = "/connector/protimeapi/api/v1/webhooks";
pub const CLOCKINGS: &str = "/connector/protimeapi/api/v1/clockings";
pub const DELTA: &str = "/connector/protimeapi/api/v1/delta/clockings";

/// A small, fast configuration for tests.
pub fn small_config() -> SandboxConfig {
    SandboxConfig {
        people: 4,
        days: 7,
        ..SandboxConfig::default()
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// A client for one running sandbox.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
    pub user_agent: Option<String>,
}

impl Api {
    pub fn new(sandbox: &RunningSandbox) -> Self {
        Self {
            base: sandbox.base_url(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            token: None,
            user_agent: Some(USER_AGENT.to_owned()),
        }
    }

    /// A client with a token of every scope of the default client.
    pub async fn authorized(sandbox: &RunningSandbox) -> Self {
        let mut api = Self::new(sandbox);
        let client = sandbox.client_credentials();
        let token = api
            .token_request(
                sandbox,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &client.client_id),
                    ("client_secret", &client.client_secret),
                    ("scope", &client.scope_string()),
                ],
            )
            .await;
        assert_eq!(token.status, StatusCode::OK, "{}", token.text);
        api.token = Some(token.json()["access_token"].as_str().unwrap().to_owned());
        api
    }

    pub async fn token_request(&self, sandbox: &Sandbox, form: &[(&str, &str)]) -> Answer {
        let url = format!("{}{}", self.base, sandbox.token_path());
        let response = self.http.post(url).form(form).send().await.unwrap();
        Self::answer(response).await
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Answer {
            status,
            headers,
            text,
        }
    }

    /// A request to a host-relative path (query included, encoded by `reqwest::Url`).
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        let url = reqwest::Url::parse(&format!("{}{}", self.base, path)).unwrap();
        let mut request = self.http.request(method, url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(agent) = &self.user_agent {
            request = request.header(reqwest::header::USER_AGENT, agent);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::answer(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None).await
    }

    /// Follows `nextLink` from `first` to the end; returns every page.
    pub async fn all_pages(&self, first: &str) -> Vec<Value> {
        let mut pages = Vec::new();
        let mut next = Some(first.to_owned());
        while let Some(path) = next {
            let answer = self.get(&path).await;
            assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
            let page = answer.json();
            next = page["nextLink"].as_str().map(str::to_owned);
            pages.push(page);
            assert!(pages.len() < 10_000, "paging does not end");
        }
        pages
    }
}

/// Percent-encodes a query value the simple way (for building request paths in tests).
pub fn q(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~'(),".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The error code of a `ProtimeError` body with the `error` wrapper.
pub fn error_code(answer: &Answer) -> String {
    answer.json()["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {}", answer.text))
        .to_owned()
}
