//! Webhook subscriptions: create (the private key is returned once), list, get, delete.

use chrono::{DateTime, Utc};
use protime_raw::types::{CollectionName, Webhook, WebhookCreateRequest, WebhookCreated};

use crate::ProtimeClient;
use crate::error::Error;
use crate::filter::WebhookFilter;
use secrecy::SecretString;

/// One `(collection,reference)` pair of `?externalReferences=`, e.g. `(people,@badge-number)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalReference {
    /// The related collection, e.g. `people`.
    pub collection: String,
    /// The reference name, e.g. `@badge-number` (predefined) or `HRMID` (custom).
    pub reference: String,
}

impl ExternalReference {
    /// `(collection,reference)`.
    ///
    /// ```
    /// use protime_client::ExternalReference;
    /// let reference = ExternalReference::new("people", "@badge-number");
    /// assert_eq!((reference.collection.as_str(), reference.reference.as_str()), ("people", "@badge-number"));
    /// ```
    pub fn new(collection: impl Into<String>, reference: impl Into<String>) -> Self {
        Self {
            collection: collection.into(),
            reference: reference.into(),
        }
    }

    /// The value of `?externalReferences=` for `references`, as documented
    /// (<https://documentation.myprotime.eu/protimeapi/reference/external-references/>): the
    /// pairs `(collection,reference)` concatenated without a separator, or `None` for none.
    /// A part that is empty or holds `(`, `)` or `,` cannot be written in that syntax and is
    /// refused with [`Error::InvalidFilter`] before anything is sent.
    ///
    /// ```
    /// use protime_client::{Error, ExternalReference};
    /// let references = [
    ///     ExternalReference::new("people", "@badge-number"),
    ///     ExternalReference::new("terminals", "@external-code"),
    /// ];
    /// assert_eq!(
    ///     ExternalReference::query(&references)?.as_deref(),
    ///     Some("(people,@badge-number)(terminals,@external-code)")
    /// );
    /// assert_eq!(ExternalReference::query(&[])?, None);
    /// assert!(matches!(ExternalReference::query(&[ExternalReference::new("people", "a,b")]), Err(Error::InvalidFilter(_))));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn query(references: &[Self]) -> Result<Option<String>, Error> {
        let mut query = String::new();
        for reference in references {
            for part in [&reference.collection, &reference.reference] {
                if part.is_empty() || part.contains(['(', ')', ',']) {
                    return Err(Error::InvalidFilter(format!(
                        "external reference ({},{}) cannot be written as ?externalReferences=(collection,reference): each part must be non-empty and without '(', ')' or ','",
                        reference.collection, reference.reference
                    )));
                }
            }
            query.push_str(&format!(
                "({},{})",
                reference.collection, reference.reference
            ));
        }
        Ok((!query.is_empty()).then_some(query))
    }
}

/// A webhook just created. The key is returned by Protime only here: persist it now.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CreatedWebhook {
    /// The webhook id (from the body, or else from the `Location` header).
    pub id: String,
    /// The private key that signs the deliveries, exactly as returned (redacted in `Debug`;
    /// hand it to `protime_webhooks::WebhookKey::from_secret`).
    pub key: SecretString,
    /// When the webhook expires.
    pub valid_until: DateTime<Utc>,
    /// The `Location` header, when sent.
    pub location: Option<String>,
}

/// JSON names tried for the key: the docs do not name the field.
const KEY_FIELDS: [&str; 4] = ["key", "webhookKey", "privateKey", "secret"];

/// Reads a 201 body that does not match the spec's guess of its shape.
fn tolerant_created(bytes: &[u8], location: Option<&str>) -> Option<WebhookCreated> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let key = KEY_FIELDS
        .iter()
        .find_map(|field| value.get(*field)?.as_str())?;
    let valid_until = value
        .get("validUntil")?
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())?
        .with_timezone(&Utc);
    let id = value
        .get("id")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .or_else(|| id_from_location(location));
    Some(WebhookCreated {
        id,
        key: key.to_owned(),
        valid_until,
        status: None,
        destination_url: None,
        collection_name: None,
    })
}

fn id_from_location(location: Option<&str>) -> Option<String> {
    location?
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

impl ProtimeClient {
    /// Whether [`Self::create_webhook`] would accept `destination`: an HTTPS URL (or HTTP
    /// when the client allows insecure destinations, for local tests).
    ///
    /// ```
    /// # use protime_client::{AccessToken, Error, ProtimeClient};
    /// let client = ProtimeClient::builder().base_url("http://127.0.0.1:9")
    ///     .static_token(AccessToken::new("t")).user_agent("Svc/1.0 (Acme)").build()?;
    /// assert!(client.check_destination("https://hooks.acme.example/protime").is_ok());
    /// assert!(matches!(client.check_destination("http://hooks.acme.example/"), Err(Error::InsecureDestination { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn check_destination(&self, destination: &str) -> Result<(), Error> {
        let url = reqwest::Url::parse(destination).map_err(|_| Error::InsecureDestination {
            url: destination.to_owned(),
        })?;
        let allowed = match url.scheme() {
            "https" => true,
            "http" => self.allow_insecure_destinations(),
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Error::InsecureDestination {
                url: destination.to_owned(),
            })
        }
    }

    /// Creates a webhook for `collection` that POSTs to `destination` (HTTPS; see
    /// [`crate::ProtimeClientBuilder::allow_insecure_destinations`]). The returned key signs
    /// the deliveries and cannot be fetched again.
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// use protime_raw::types::CollectionName;
    /// use protime_client::{ExposeSecret as _, ExternalReference};
    /// let created = client
    ///     .create_webhook("https://hooks.acme.example/protime", CollectionName::Clockings,
    ///         &[ExternalReference::new("people", "@badge-number")])
    ///     .await?;
    /// std::fs::write("webhook.key", created.key.expose_secret()).ok();
    /// # Ok(()) }
    /// ```
    pub async fn create_webhook(
        &self,
        destination: &str,
        collection: CollectionName,
        external_references: &[ExternalReference],
    ) -> Result<CreatedWebhook, Error> {
        self.check_destination(destination)?;
        let references = ExternalReference::query(external_references)?.unwrap_or_default();
        let body = WebhookCreateRequest {
            destination_url: destination.to_owned(),
            collection_name: collection,
        };
        // Not idempotent: a repeated create would make a second webhook.
        let response = self
            .execute("create_webhook", |raw, transport| {
                let body = body.clone();
                let references = references.clone();
                async move {
                    let mut request = raw.create_webhook().body(body);
                    if !references.is_empty() {
                        request = request.external_references(references);
                    }
                    match request.send().await {
                        Err(protime_raw::Error::InvalidResponsePayload(bytes, error)) => {
                            let seen = transport.seen();
                            let status = seen.status.unwrap_or_default();
                            match tolerant_created(&bytes, seen.location.as_deref()) {
                                Some(created) if (200..300).contains(&status) => {
                                    let mut headers = reqwest::header::HeaderMap::new();
                                    if let Some(location) =
                                        seen.location.and_then(|l| l.parse().ok())
                                    {
                                        headers.insert(reqwest::header::LOCATION, location);
                                    }
                                    let status = reqwest::StatusCode::from_u16(status)
                                        .unwrap_or(reqwest::StatusCode::CREATED);
                                    Ok(protime_raw::ResponseValue::new(created, status, headers))
                                }
                                _ => Err(protime_raw::Error::InvalidResponsePayload(bytes, error)),
                            }
                        }
                        other => other,
                    }
                }
            })
            .await
            .map_err(|error| match error {
                Error::InvalidResponse {
                    status: Some(status @ 200..=299),
                    ..
                } => Error::InvalidResponse {
                    operation: "create_webhook",
                    status: Some(status),
                    message: format!(
                        "Protime answered {status}, so the webhook probably exists, but its key was not found in the response (looked for {}); list the webhooks and delete it, and report the response shape",
                        KEY_FIELDS.join(", ")
                    ),
                },
                other => other,
            })?;
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let created = response.into_inner();
        let id = created
            .id
            .clone()
            .or_else(|| id_from_location(location.as_deref()))
            .ok_or_else(|| Error::InvalidResponse {
                operation: "create_webhook",
                status: Some(201),
                message: "neither the body nor the Location header gives the webhook id".into(),
            })?;
        if created.key.is_empty() {
            return Err(Error::InvalidResponse {
                operation: "create_webhook",
                status: Some(201),
                message: "the webhook key in the response is empty".into(),
            });
        }
        let key = SecretString::from(created.key);
        tracing::info!(%id, valid_until = %created.valid_until, "webhook created");
        Ok(CreatedWebhook {
            id,
            key,
            valid_until: created.valid_until,
            location,
        })
    }

    /// Lists webhooks, optionally filtered (see [`WebhookFilter`]); follows `nextLink` if
    /// Protime ever pages this list.
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// use protime_raw::types::WebhookStatus;
    /// use protime_client::WebhookFilter;
    /// let disabled = client.list_webhooks(&WebhookFilter::default().status(WebhookStatus::Disabled)).await?;
    /// for webhook in &disabled {
    ///     println!("{} -> {} (valid until {})", webhook.id, webhook.destination_url, webhook.valid_until);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_webhooks(&self, filter: &WebhookFilter) -> Result<Vec<Webhook>, Error> {
        let expression = filter.expression();
        let page = self
            .execute("list_webhooks", |raw, _| {
                let expression = expression.clone();
                async move {
                    let mut request = raw.list_webhooks();
                    if let Some(expression) = expression {
                        request = request.filter(expression);
                    }
                    request.send().await
                }
            })
            .await?
            .into_inner();
        let mut webhooks = page.value;
        let mut next = page.next_link;
        while let Some(link) = next {
            let page: protime_raw::types::WebhookList =
                self.get_link("list_webhooks", &link).await?;
            webhooks.extend(page.value);
            next = page.next_link;
        }
        Ok(webhooks)
    }

    /// One webhook by id.
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// let webhook = client.get_webhook("a7d8").await?;
    /// println!("{}: {}", webhook.id, webhook.status);
    /// # Ok(()) }
    /// ```
    pub async fn get_webhook(&self, id: &str) -> Result<Webhook, Error> {
        Ok(self
            .execute("get_webhook", |raw, _| {
                let id = id.to_owned();
                async move { raw.get_webhook().id(id).send().await }
            })
            .await?
            .into_inner())
    }

    /// Deletes a webhook (a soft delete: deliveries stop). 200 and 204 both count as done.
    ///
    /// ```no_run
    /// # async fn run(client: protime_client::ProtimeClient) -> Result<(), protime_client::Error> {
    /// client.delete_webhook("a7d8").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_webhook(&self, id: &str) -> Result<(), Error> {
        self.execute("delete_webhook", |raw, _| {
            let id = id.to_owned();
            async move { raw.delete_webhook().id(id).send().await }
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_found_under_other_names_and_the_id_in_location() {
        let body = br#"{"webhookKey":"abc","validUntil":"2025-03-31T12:30:00+02:00"}"#;
        let created =
            tolerant_created(body, Some("/connector/protimeapi/api/v1/webhooks/a7d8")).unwrap();
        assert_eq!(created.key, "abc");
        assert_eq!(created.id.as_deref(), Some("a7d8"));
        assert!(tolerant_created(br#"{"validUntil":"2025-03-31T12:30:00Z"}"#, None).is_none());
    }
}
