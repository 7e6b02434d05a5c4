//! The HTTP routes: the token endpoint and every operation of the vendored spec.

use std::collections::BTreeSet;
use std::time::Instant;

use axum::Router;
use axum::extract::rejection::{BytesRejection, FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use bytes::Bytes;
use protime_raw::types::{
    ClockingCreateRequest, ClockingDeltaPage, ClockingKind, ClockingList, Webhook,
    WebhookCreateRequest, WebhookCreated, WebhookList, WebhookStatus,
};
use serde_json::json;

use crate::Sandbox;
use crate::config::scopes;
use crate::data::{Draft, DraftKind, ExternalRefRequest};
use crate::error::ApiError;
use crate::filter::{ClockingFilter, WebhookFilter};
use crate::state::{Caller, Continuation, DeltaRefusal, TokenRefusal, WebhookEntry};

/// Longest request URI accepted; longer ones get `414`.
const MAX_URI_LENGTH: usize = 4096;

const WEBHOOKS: &str = "/connector/protimeapi/api/v1/webhooks";
const WEBHOOK: &str = "/connector/protimeapi/api/v1/webhooks/{id}";
const CLOCKINGS: &str = "/connector/protimeapi/api/v1/clockings";
const CLOCKING: &str = "/connector/protimeapi/api/v1/clockings/{id}";
const DELTA: &str = "/connector/protimeapi/api/v1/delta/clockings";

pub(crate) fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/tenants/{tenant}/connect/token", post(token))
        .route(
            "/tenants/{tenant}/.well-known/openid-configuration",
            get(discovery),
        )
        .route(WEBHOOKS, get(list_webhooks).post(create_webhook))
        .route(WEBHOOK, get(get_webhook).delete(delete_webhook))
        .route(CLOCKINGS, get(list_clockings).post(create_clocking))
        .route(CLOCKING, get(get_clocking))
        .route(DELTA, get(clockings_delta))
        .route(crate::trigger::TRIGGER, post(trigger))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(sandbox)
}

async fn not_found() -> ApiError {
    ApiError::not_found("No such resource.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

// -- helpers --------------------------------------------------------------------------------

/// Query parameters in order; the first of a repeated name wins.
struct Params(Vec<(String, String)>);

impl Params {
    fn new(query: Result<Query<Vec<(String, String)>>, QueryRejection>) -> Result<Self, ApiError> {
        query
            .map(|Query(pairs)| Self(pairs))
            .map_err(|e| ApiError::bad_request("The query string is invalid.", vec![e.body_text()]))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    fn external_references(&self) -> Result<ExternalRefRequest, ApiError> {
        match self.get("externalReferences") {
            None => Ok(ExternalRefRequest::default()),
            Some(text) => ExternalRefRequest::parse(text).map_err(|reasons| {
                ApiError::bad_request("externalReferences is invalid.", reasons)
            }),
        }
    }
}

/// The checks every API route makes, in this order: maintenance (`503`), injected failures
/// (`500`), URI length (`414`), bearer token (`401`), rate limit (`429`), `User-Agent`
/// (`400`), scope (`403`).
fn gate(
    sandbox: &Sandbox,
    headers: &HeaderMap,
    uri: &Uri,
    scope: &'static str,
) -> Result<Caller, ApiError> {
    let shared = &sandbox.shared;
    shared.counters.count_api_request();
    if let Some(retry_after) = shared.control.maintenance() {
        return Err(ApiError::unavailable(retry_after));
    }
    if shared.control.take_injected_failure() {
        return Err(ApiError::internal(
            "Injected failure (Sandbox::fail_next_requests).",
        ));
    }
    let length = uri.to_string().len();
    if length > MAX_URI_LENGTH {
        return Err(ApiError::uri_too_long(length));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("A bearer access token is required."))?;
    let caller = sandbox
        .lock()
        .authenticate(token, shared.config.rate_limit_per_second, Instant::now())
        .map_err(|refusal| match refusal {
            TokenRefusal::Unknown => ApiError::unauthorized("The access token is invalid."),
            TokenRefusal::Expired => ApiError::unauthorized("The access token has expired."),
            TokenRefusal::RateLimited {
                retry_after_seconds,
            } => {
                shared.counters.count_rate_limited();
                ApiError::too_many_requests(retry_after_seconds)
            }
        })?;
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    if user_agent.is_empty() {
        return Err(ApiError::bad_request(
            "The User-Agent header is mandatory.",
            vec!["Send a User-Agent of the form ServiceName/Version (Company Name).".into()],
        ));
    }
    if !caller.scopes.contains(scope) {
        tracing::debug!(client = %caller.client_id, scope, "request refused: missing scope");
        return Err(ApiError::forbidden(scope));
    }
    tracing::trace!(client = %caller.client_id, %uri, "API request");
    Ok(caller)
}

/// Percent-encodes a query value; with `raw`, spaces and quotes stay as they are (as in the
/// docs' examples).
fn encode_query_value(value: &str, raw: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'.' | b'_' | b'~' | b'\'' | b'(' | b')' | b',' | b'@'
            )
            || (raw && byte == b' ');
        if keep {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn link(path: &str, params: &[(&str, &str)], raw: bool) -> String {
    let mut out = path.to_owned();
    for (i, (name, value)) in params.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(name);
        out.push('=');
        out.push_str(&encode_query_value(value, raw));
    }
    out
}

/// The request body, or a `400` (too large, or not readable) in the error shape.
fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| ApiError::bad_request("The request body cannot be read.", vec![e.body_text()]))
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

fn created(location: String, body: Option<&impl serde::Serialize>) -> Response {
    let mut response = match body {
        Some(body) => json_response(StatusCode::CREATED, body),
        None => StatusCode::CREATED.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Random bytes from the OS (through `uuid`'s v4 generator; 122 random bits per UUID).
fn random_bytes(count: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(count + 16);
    while bytes.len() < count {
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    bytes.truncate(count);
    bytes
}

// -- token endpoint -------------------------------------------------------------------------

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = json_response(
        status,
        &json!({ "error": error, "error_description": description }),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /tenants/{tenant}/connect/token`: the OAuth 2.0 client-credentials grant (RFC 6749
/// §4.4), credentials in the form or as HTTP Basic.
async fn token(
    State(sandbox): State<Sandbox>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let shared = &sandbox.shared;
    shared.counters.count_token_request();
    if tenant != shared.config.tenant {
        return oauth_error(StatusCode::NOT_FOUND, "invalid_request", "unknown tenant");
    }
    let Ok(Form(fields)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match field("grant_type") {
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            );
        }
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only client_credentials is supported",
            );
        }
    }
    let basic = basic_credentials(&headers);
    let (client_id, client_secret) = match (&basic, field("client_id"), field("client_secret")) {
        (Some((id, secret)), _, _) => (id.as_str(), secret.as_str()),
        (None, Some(id), Some(secret)) => (id, secret),
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client_id and client_secret are required",
            );
        }
    };
    let Some(client) = shared
        .config
        .clients
        .iter()
        .find(|c| c.client_id == client_id && c.client_secret == client_secret)
    else {
        let mut response = oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
        if basic.is_some() {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"protime-sandbox\""),
            );
        }
        return response;
    };
    let granted: BTreeSet<String> = match field("scope").map(str::trim) {
        None | Some("") => client.scopes.iter().cloned().collect(),
        Some(requested) => {
            let requested: BTreeSet<String> =
                requested.split_whitespace().map(str::to_owned).collect();
            if let Some(missing) = requested.iter().find(|s| !client.scopes.contains(s)) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    &format!("the client may not request {missing}"),
                );
            }
            requested
        }
    };
    let access_token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(32));
    let lifetime = shared.config.token_lifetime;
    sandbox.lock().issue_token(
        access_token.clone(),
        &client.client_id,
        granted.clone(),
        lifetime,
        Instant::now(),
    );
    shared.counters.count_token_issued();
    tracing::debug!(client = %client.client_id, "access token issued");
    let mut response = json_response(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "expires_in": lifetime.as_secs(),
            "token_type": "Bearer",
            "scope": granted.into_iter().collect::<Vec<_>>().join(" "),
        }),
    );
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// `GET /tenants/{tenant}/.well-known/openid-configuration`: enough discovery for a client
/// to find the token endpoint.
async fn discovery(
    State(sandbox): State<Sandbox>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if tenant != sandbox.shared.config.tenant {
        return ApiError::not_found("Unknown tenant.").into_response();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let issuer = format!("http://{host}/tenants/{tenant}");
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": issuer,
            "token_endpoint": format!("{issuer}/connect/token"),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "scopes_supported": scopes::ALL,
        }),
    )
}

// -- webhooks -------------------------------------------------------------------------------

async fn list_webhooks(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    gate(&sandbox, &headers, &uri, scopes::WEBHOOKS_READ)?;
    let params = Params::new(query)?;
    let filter = match params.get("filter") {
        None => WebhookFilter::default(),
        Some(text) => WebhookFilter::parse(text)
            .map_err(|reasons| ApiError::bad_request("The filter is invalid.", reasons))?,
    };
    let now = crate::now_utc();
    let value: Vec<Webhook> = {
        let mut state = sandbox.lock();
        state.expire_webhooks(now);
        state
            .webhooks()
            .map(|w| &w.webhook)
            .filter(|w| filter.status.is_none_or(|s| s == w.status))
            .filter(|w| filter.collection.is_none_or(|c| c == w.collection_name))
            .cloned()
            .collect()
    };
    Ok(json_response(
        StatusCode::OK,
        &WebhookList {
            next_link: None,
            value,
        },
    ))
}

async fn create_webhook(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    gate(&sandbox, &headers, &uri, scopes::WEBHOOKS_WRITE)?;
    let body = read_body(body)?;
    let params = Params::new(query)?;
    let refs = params.external_references()?;
    let request: WebhookCreateRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::model_validation(&e))?;
    check_destination(
        &request.destination_url,
        sandbox.shared.config.require_https_destinations,
    )?;
    let now = crate::now_utc();
    let validity = chrono::TimeDelta::from_std(sandbox.shared.config.webhook_validity)
        .map_err(|_| ApiError::internal("webhook_validity is out of range"))?;
    let webhook = Webhook {
        collection_name: request.collection_name,
        destination_url: request.destination_url,
        external_references: refs.to_json_map(),
        id: uuid::Uuid::new_v4().to_string(),
        status: WebhookStatus::Enabled,
        valid_until: now + validity,
    };
    // A key the configured scheme can decode: base64 text (also usable as UTF-8 bytes), or
    // hexadecimal when the scheme decodes keys from hex.
    let bytes = random_bytes(32);
    let secret = match sandbox.shared.config.signature_scheme.key_encoding {
        protime_webhooks::signature::KeyEncoding::Hex => {
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        }
        _ => base64::engine::general_purpose::STANDARD.encode(bytes),
    };
    let key = protime_webhooks::WebhookKey::new(secret.clone())
        .map_err(|e| ApiError::internal(format!("key generation failed: {e}")))?;
    sandbox.lock().add_webhook(WebhookEntry {
        webhook: webhook.clone(),
        key,
        refs,
    });
    tracing::info!(webhook = %webhook.id, destination = %webhook.destination_url, collection = %webhook.collection_name, "webhook created");
    let location = format!("{WEBHOOKS}/{}", webhook.id);
    Ok(created(
        location,
        Some(&WebhookCreated {
            collection_name: Some(webhook.collection_name),
            destination_url: Some(webhook.destination_url),
            id: Some(webhook.id),
            key: secret,
            status: Some(webhook.status),
            valid_until: webhook.valid_until,
        }),
    ))
}

fn check_destination(url: &str, require_https: bool) -> Result<(), ApiError> {
    let reason = match reqwest::Url::parse(url) {
        Err(e) => Some(format!(
            "destinationUrl '{url}' is not an absolute URL: {e}"
        )),
        Ok(parsed) if parsed.host_str().is_none_or(str::is_empty) => {
            Some(format!("destinationUrl '{url}' has no host"))
        }
        Ok(parsed) => match parsed.scheme() {
            "https" => None,
            "http" if !require_https => None,
            "http" => Some(format!("destinationUrl '{url}' must use HTTPS")),
            other => Some(format!(
                "destinationUrl '{url}' has scheme '{other}'; use https (or http on the sandbox)"
            )),
        },
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(ApiError::bad_request(
            "The destination URL is invalid.",
            vec![reason],
        )),
    }
}

async fn get_webhook(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    gate(&sandbox, &headers, &uri, scopes::WEBHOOKS_READ)?;
    let now = crate::now_utc();
    let webhook = {
        let mut state = sandbox.lock();
        state.expire_webhooks(now);
        state.webhook(&id).map(|w| w.webhook.clone())
    };
    match webhook {
        Some(webhook) => Ok(json_response(StatusCode::OK, &webhook)),
        None => Err(ApiError::not_found(format!("Webhook {id} does not exist."))),
    }
}

async fn delete_webhook(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    gate(&sandbox, &headers, &uri, scopes::WEBHOOKS_WRITE)?;
    // A soft delete: the webhook stays queryable, as Disabled, and deliveries stop.
    if sandbox
        .lock()
        .set_webhook_status(&id, WebhookStatus::Disabled)
    {
        tracing::info!(webhook = %id, "webhook deleted: disabled");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(format!("Webhook {id} does not exist.")))
    }
}

// -- clockings ------------------------------------------------------------------------------

async fn list_clockings(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    gate(&sandbox, &headers, &uri, scopes::CLOCKINGS_READ)?;
    let params = Params::new(query)?;
    let filter_text = params.get("filter").ok_or_else(|| {
        ApiError::bad_request(
            "The filter is required.",
            vec![
                "Add filter=date ge 'YYYY-MM-DD' and date le 'YYYY-MM-DD' (at most one year)."
                    .into(),
            ],
        )
    })?;
    let filter = ClockingFilter::parse(filter_text)
        .map_err(|reasons| ApiError::bad_request("The filter is invalid.", reasons))?;
    let refs = params.external_references()?;
    let at = match params.get("continuationToken") {
        None => Continuation {
            after_id: 0,
            page: 0,
        },
        Some(token) => Continuation::decode(token).ok_or_else(|| {
            ApiError::bad_request(
                "The continuation token is invalid.",
                vec!["Use the continuationToken of the previous nextLink unchanged.".into()],
            )
        })?,
    };
    let config = &sandbox.shared.config;
    let now = Instant::now();
    let (delta_token, page, items) = {
        let mut state = sandbox.lock();
        let delta_token = match params.get("deltaToken") {
            Some(token) => {
                state
                    .touch_delta(token, now, config.delta_token_ttl)
                    .map_err(|DeltaRefusal::Gone| {
                        ApiError::gone(
                            "The delta token is unknown or expired: start a new initial load with ?delta.",
                        )
                    })?;
                Some(token.to_owned())
            }
            None if params.has("delta") => {
                Some(state.start_delta(filter.clone(), refs.clone(), now))
            }
            None => None,
        };
        let page = state.page(&filter, at, config.page_size, config.empty_page_every);
        let items: Vec<_> = page
            .items
            .iter()
            .map(|c| state.catalog.decorate(c, &refs))
            .collect();
        (delta_token, page, items)
    };
    let raw = config.unencoded_links;
    let next_link = page.next.map(|next| {
        let token = next.encode();
        let mut link_params = vec![("filter", filter_text)];
        if let Some(text) = params.get("externalReferences") {
            link_params.push(("externalReferences", text));
        }
        link_params.push(("continuationToken", token.as_str()));
        if let Some(delta) = &delta_token {
            link_params.push(("deltaToken", delta.as_str()));
        }
        link(CLOCKINGS, &link_params, raw)
    });
    let delta_link = match (&next_link, &delta_token) {
        (None, Some(token)) => Some(link(DELTA, &[("deltaToken", token)], raw)),
        _ => None,
    };
    let list = ClockingList {
        delta_link,
        next_link,
        value: items,
    };
    if config.example_shaped_items {
        let shape = if delta_token.is_some() {
            ItemShape::DeltaExample
        } else {
            ItemShape::ListExample
        };
        return Ok(json_response(
            StatusCode::OK,
            &example_shaped(&list, shape)?,
        ));
    }
    Ok(json_response(StatusCode::OK, &list))
}

/// The fields the docs' examples show, by page kind (see `SandboxConfig::example_shaped_items`).
#[derive(Debug, Clone, Copy)]
enum ItemShape {
    /// A delta's `InsertOrUpdate` item: `changeVersion`, `id`, `date`.
    DeltaExample,
    /// A listed or fetched clocking: everything but `changeVersion`.
    ListExample,
}

fn shape_item(item: &mut serde_json::Value, shape: ItemShape) {
    let Some(fields) = item.as_object_mut() else {
        return;
    };
    match shape {
        ItemShape::DeltaExample => {
            fields.retain(|name, _| matches!(name.as_str(), "changeVersion" | "id" | "date"));
        }
        ItemShape::ListExample => {
            fields.remove("changeVersion");
        }
    }
}

/// `page` with each item of its `value` (a clocking, or the `data` of a change) shaped.
fn example_shaped(
    page: &impl serde::Serialize,
    shape: ItemShape,
) -> Result<serde_json::Value, ApiError> {
    let mut page = serde_json::to_value(page)
        .map_err(|_| ApiError::internal("the page could not be serialized"))?;
    if let Some(serde_json::Value::Array(items)) = page.get_mut("value") {
        for item in items {
            match item.get_mut("data") {
                Some(data) => shape_item(data, shape),
                None => shape_item(item, shape),
            }
        }
    }
    Ok(page)
}

async fn get_clocking(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    gate(&sandbox, &headers, &uri, scopes::CLOCKINGS_READ)?;
    let refs = Params::new(query)?.external_references()?;
    let missing = || ApiError::not_found(format!("Clocking {id} does not exist."));
    let number: u64 = id.parse().map_err(|_| missing())?;
    let clocking = {
        let state = sandbox.lock();
        state
            .clocking(number)
            .map(|c| state.catalog.decorate(c, &refs))
    };
    let clocking = clocking.ok_or_else(missing)?;
    if sandbox.shared.config.example_shaped_items {
        let mut item = serde_json::to_value(&clocking)
            .map_err(|_| ApiError::internal("the clocking could not be serialized"))?;
        shape_item(&mut item, ItemShape::ListExample);
        return Ok(json_response(StatusCode::OK, &item));
    }
    Ok(json_response(StatusCode::OK, &clocking))
}

async fn create_clocking(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    gate(&sandbox, &headers, &uri, scopes::CLOCKINGS_WRITE)?;
    let body = read_body(body)?;
    let request: ClockingCreateRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::model_validation(&e))?;
    let draft = {
        let state = sandbox.lock();
        validate_clocking(&request, &state.catalog)
    }
    .map_err(|reasons| ApiError::bad_request("The clocking is invalid.", reasons))?;
    let changes = sandbox.publish(|state| state.insert(draft).into_iter().collect());
    let Some(change) = changes.first() else {
        return Err(ApiError::internal("the clocking could not be stored"));
    };
    tracing::info!(id = %change.data.id, "clocking created");
    Ok(created(
        format!("{CLOCKINGS}/{}", change.data.id),
        None::<&()>,
    ))
}

/// `POST /sandbox/trigger`: a control route of the sandbox, outside the Protime API (no
/// token: the sandbox's credentials are public anyway). Refused while in maintenance, like
/// the API.
async fn trigger(
    State(sandbox): State<Sandbox>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(body)?;
    let request: crate::TriggerRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::model_validation(&e))?;
    match sandbox.trigger(&request) {
        Ok(triggered) => {
            tracing::info!(id = triggered.id, action = ?triggered.action, "triggered");
            Ok(json_response(StatusCode::OK, &triggered))
        }
        Err(error @ crate::TriggerError::NoSuchClocking { .. }) => {
            Err(ApiError::not_found(error.to_string()))
        }
        Err(error) => Err(ApiError::bad_request(error.to_string(), Vec::new())),
    }
}

/// Resolves an `ObjectReferenceInput` by id or by one of the named external references.
fn resolve<T>(
    input: &protime_raw::types::ObjectReferenceInput,
    what: &str,
    by_id: impl Fn(u64) -> Option<T>,
    by_reference: impl Fn(&str, &str) -> Option<T>,
    reasons: &mut Vec<String>,
) -> Option<T> {
    if let Some(id) = input.id {
        let found = by_id(id.get());
        if found.is_none() {
            reasons.push(format!("{what} {id} does not exist"));
        }
        return found;
    }
    match input.external_references.as_ref().map(|r| &r.0) {
        Some(refs) if !refs.is_empty() => {
            let found = refs
                .iter()
                .find_map(|(name, value)| by_reference(name, value));
            if found.is_none() {
                reasons.push(format!("no {what} matches the external references given"));
            }
            found
        }
        _ => {
            reasons.push(format!("{what} needs an id or external references"));
            None
        }
    }
}

/// Business-rule validation of a new clocking; the errors are the `reasons` of a `400`.
fn validate_clocking(
    request: &ClockingCreateRequest,
    catalog: &crate::data::Catalog,
) -> Result<Draft, Vec<String>> {
    let mut reasons = Vec::new();
    // Ranges come from the model's checked constructors: one copy of every rule.
    let minute = request.time_of_day_in_minutes;
    if let Err(error) = protime_model::MinuteOfDay::new(i64::from(minute)) {
        reasons.push(format!("timeOfDayInMinutes: {error}"));
    }
    let person = resolve(
        &request.person,
        "person",
        |id| catalog.person(id).map(|p| p.id),
        |name, value| {
            catalog
                .people
                .iter()
                .find(|p| match name {
                    "@badge-number" => p.badge_number == value,
                    "@employee-number" => p.employee_number == value,
                    "HRMID" => p.hrm_id == value,
                    _ => false,
                })
                .map(|p| p.id)
        },
        &mut reasons,
    );
    let terminal = request.terminal.as_ref().and_then(|t| {
        resolve(
            t,
            "terminal",
            |id| catalog.terminal(id).map(|t| t.id),
            |name, value| {
                catalog
                    .terminals
                    .iter()
                    .find(|t| name == "@external-code" && t.external_code == value)
                    .map(|t| t.id)
            },
            &mut reasons,
        )
    });
    if let Some(geo) = &request.geolocation {
        if let Err(error) = protime_model::Latitude::new(geo.latitude) {
            reasons.push(format!("geolocation.latitude: {error}"));
        }
        if let Err(error) = protime_model::Longitude::new(geo.longitude) {
            reasons.push(format!("geolocation.longitude: {error}"));
        }
    }
    let kind_name = request.kind.to_string();
    if request.kind != ClockingKind::Reason {
        if request.reason.is_some() {
            reasons.push(format!(
                "reason is only allowed for kind Reason, not {kind_name}"
            ));
        }
        if request.is_open.is_some() {
            reasons.push(format!(
                "isOpen is only allowed for kind Reason, not {kind_name}"
            ));
        }
    }
    if request.kind != ClockingKind::Activity && !request.activity_levels.is_empty() {
        reasons.push(format!(
            "activityLevels is only allowed for kind Activity, not {kind_name}"
        ));
    }
    let kind = match request.kind {
        ClockingKind::InOut => Some(DraftKind::InOut),
        ClockingKind::ActivityEnd => Some(DraftKind::ActivityEnd),
        ClockingKind::Reason => match &request.reason {
            None => {
                reasons.push("reason is required for kind Reason".into());
                None
            }
            Some(reason) => resolve(
                reason,
                "reason",
                |id| catalog.reason(id).map(|r| r.id),
                |name, value| {
                    catalog
                        .reasons
                        .iter()
                        .find(|r| name == "@absence-code" && r.absence_code == value)
                        .map(|r| r.id)
                },
                &mut reasons,
            )
            .map(|reason| DraftKind::Reason {
                reason,
                is_open: request.is_open.unwrap_or(false),
            }),
        },
        ClockingKind::Activity => {
            if request.activity_levels.is_empty() {
                reasons.push("activityLevels is required (at least one) for kind Activity".into());
            }
            let mut seen = BTreeSet::new();
            for level in &request.activity_levels {
                if let Err(error) =
                    protime_model::ActivityDefinitionId::new(level.activity_definition.id.clone())
                {
                    reasons.push(format!("activityLevels[].activityDefinition.id: {error}"));
                }
                if !seen.insert(level.level) {
                    reasons.push(format!("activity level {} is given twice", level.level));
                }
            }
            Some(DraftKind::Activity {
                levels: request
                    .activity_levels
                    .iter()
                    .map(|l| protime_raw::types::ActivityLevel {
                        level: l.level,
                        activity_definition: protime_raw::types::ActivityDefinitionRef {
                            id: l.activity_definition.id.clone(),
                            external_references: None,
                        },
                    })
                    .collect(),
            })
        }
    };
    match (reasons.is_empty(), person, kind) {
        (true, Some(person), Some(kind)) => Ok(Draft {
            person,
            date: request.date,
            minute,
            original: None,
            calculated: Some(minute),
            is_generated: false,
            terminal,
            geolocation: request
                .geolocation
                .as_ref()
                .map(|g| (g.latitude, g.longitude)),
            kind,
            deleted: false,
        }),
        _ => Err(reasons),
    }
}

async fn clockings_delta(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    gate(&sandbox, &headers, &uri, scopes::CLOCKINGS_READ)?;
    let params = Params::new(query)?;
    let token = params.get("deltaToken").ok_or_else(|| {
        ApiError::bad_request(
            "deltaToken is required.",
            vec!["Use the deltaLink of the previous response unchanged.".into()],
        )
    })?;
    let ttl = sandbox.shared.config.delta_token_ttl;
    let (value, next) = sandbox
        .lock()
        .delta_changes(token, Instant::now(), ttl)
        .map_err(|DeltaRefusal::Gone| {
            ApiError::gone("The delta expired or is unknown: start a new initial load with ?delta.")
        })?;
    let delta_link = link(
        DELTA,
        &[("deltaToken", next.as_str())],
        sandbox.shared.config.unencoded_links,
    );
    let page = ClockingDeltaPage { delta_link, value };
    if sandbox.shared.config.example_shaped_items {
        return Ok(json_response(
            StatusCode::OK,
            &example_shaped(&page, ItemShape::DeltaExample)?,
        ));
    }
    Ok(json_response(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode_query_value("date ge '2024-01-01' & x+y=z/%", false),
            "date%20ge%20'2024-01-01'%20%26%20x%2By%3Dz%2F%25"
        );
        assert_eq!(
            encode_query_value("date ge '2024-01-01'", true),
            "date ge '2024-01-01'"
        );
        assert_eq!(
            link("/p", &[("a", "1 2"), ("b", "é")], false),
            "/p?a=1%202&b=%C3%A9"
        );
    }

    #[test]
    fn destinations() {
        assert!(check_destination("http://127.0.0.1:9/x", false).is_ok());
        assert!(check_destination("https://hooks.example/x", true).is_ok());
        assert!(check_destination("http://127.0.0.1:9/x", true).is_err());
        assert!(check_destination("not a url", false).is_err());
        assert!(check_destination("ftp://files.example/", false).is_err());
        assert!(check_destination("/relative", false).is_err());
    }
}
