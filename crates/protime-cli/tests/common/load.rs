//! A stream of signed deliveries from eight concurrent senders, remembering which ones were
//! acknowledged (for the crash and shutdown tests).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protime_webhooks::signature::{SignatureScheme, WebhookKey, sign};
use serde_json::json;

/// A valid delivery of clocking `id` (its version grows with the id).
pub(crate) fn delivery(id: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "changeType": "InsertOrUpdate",
        "data": {"changeVersion": format!("{id:020X}"), "id": id, "person": {"id": 1 + id % 17},
                 "date": "2026-01-15", "timeOfDayInMinutes": id % 1440, "kind": "InOut"}
    }))
    .unwrap()
}

/// Eight senders posting signed deliveries (ids `first_id`, `first_id + 1`, …) until `stop`, recording the ids
/// acknowledged with a 2xx. A refusal panics unless `refusals_end_the_load`, in which case
/// it (like a lost connection) ends that sender: the delivery was not acknowledged.
pub(crate) struct Load {
    acknowledged: Arc<Mutex<Vec<i64>>>,
    stop: Arc<AtomicBool>,
    senders: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub(crate) fn start(
        url: &str,
        key: &WebhookKey,
        first_id: i64,
        refusals_end_the_load: bool,
    ) -> Self {
        let acknowledged = Arc::new(Mutex::new(Vec::<i64>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let scheme = SignatureScheme::default();
        let mut senders = Vec::new();
        for worker in 0..8_i64 {
            let (http, url, scheme, key) =
                (http.clone(), url.to_owned(), scheme.clone(), key.clone());
            let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
            senders.push(tokio::spawn(async move {
                let mut id = first_id + worker;
                while !stop.load(Ordering::Relaxed) {
                    let body = delivery(id);
                    let mut headers = sign(&scheme, &key, &body, None).unwrap();
                    headers.insert("content-type", "application/json".parse().unwrap());
                    match http.post(&url).headers(headers).body(body).send().await {
                        Ok(response) if response.status().is_success() => {
                            acknowledged.lock().unwrap().push(id);
                        }
                        Ok(response) if !refusals_end_the_load => {
                            panic!("unexpected status {}", response.status())
                        }
                        // The receiver is gone, or refused while stopping: not acknowledged.
                        Ok(_) | Err(_) => break,
                    }
                    id += 8;
                }
            }));
        }
        Self {
            acknowledged,
            stop,
            senders,
        }
    }

    /// Waits (at most 20 s) until `count` deliveries are acknowledged.
    pub(crate) async fn wait_for(&self, count: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.acknowledged.lock().unwrap().len() < count
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the senders; returns the ids acknowledged.
    pub(crate) async fn finish(self) -> Vec<i64> {
        self.stop.store(true, Ordering::Relaxed);
        for sender in self.senders {
            sender.await.unwrap();
        }
        self.acknowledged.lock().unwrap().clone()
    }
}
