//! Webhook deliveries: one signed POST per change and webhook, sent concurrently (bounded),
//! retried on the configured schedule, the webhook disabled when retries run out; optional
//! duplicates, shuffled batches and deliveries lost on the way.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use protime_webhooks::WebhookKey;
use tokio::sync::mpsc;

use crate::Shared;

/// One delivery to make.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) webhook_id: String,
    pub(crate) url: String,
    pub(crate) key: WebhookKey,
    pub(crate) body: Bytes,
    /// A second delivery of a body already delivered (never duplicated again).
    pub(crate) duplicate: bool,
}

/// Takes jobs off the queue (holding back and shuffling batches when configured) and starts
/// one task per job. Ends when every sender is gone or on shutdown.
pub(crate) async fn dispatch(shared: Arc<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let first = tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => job,
                None => break,
            },
            _ = shutdown.changed() => break,
        };
        let Some(reorder) = shared.config.reorder else {
            start(&shared, first);
            continue;
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + reorder.max_hold;
        let mut closed = false;
        while batch.len() < reorder.batch {
            tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => batch.push(job),
                    None => {
                        closed = true;
                        break;
                    }
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        shared.delivery_rng().shuffle(&mut batch);
        for job in batch {
            start(&shared, job);
        }
        if closed {
            break;
        }
    }
    tracing::debug!("delivery dispatcher stopped");
}

fn start(shared: &Arc<Shared>, job: Job) {
    tokio::spawn(deliver(Arc::clone(shared), job));
}

/// Delivers one job with retries; always marks it done.
async fn deliver(shared: Arc<Shared>, job: Job) {
    if !job.duplicate && shared.roll_lost() {
        shared.counters.lost.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(webhook = %job.webhook_id, "delivery lost on purpose (lose_probability)");
        shared.job_done();
        return;
    }
    let mut shutdown = shared.shutdown.subscribe();
    let mut attempt = 0_usize;
    loop {
        if *shutdown.borrow() {
            break;
        }
        if !shared.webhook_enabled(&job.webhook_id) {
            shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(webhook = %job.webhook_id, "delivery dropped: webhook no longer enabled");
            break;
        }
        let outcome = {
            // A permit per attempt, not per job: a retry waiting for its turn does not hold one.
            let Ok(_permit) = shared.permits.acquire().await else {
                break;
            };
            post(&shared, &job).await
        };
        match outcome {
            Ok(()) => {
                if job.duplicate {
                    shared
                        .counters
                        .duplicates_sent
                        .fetch_add(1, Ordering::Relaxed);
                } else {
                    shared.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    if shared.roll_duplicate() {
                        send_duplicate(&shared, &job);
                    }
                }
                break;
            }
            Err(reason) => match shared.config.retry_schedule.get(attempt) {
                Some(&delay) => {
                    attempt += 1;
                    shared.counters.retried.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(webhook = %job.webhook_id, %reason, attempt, ?delay, "delivery failed: retrying");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => break,
                    }
                }
                None => {
                    shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(webhook = %job.webhook_id, %reason, "delivery failed: retries exhausted, disabling the webhook");
                    shared.disable_webhook(&job.webhook_id);
                    break;
                }
            },
        }
    }
    shared.job_done();
}

/// Delivers the same body once more, a little later.
fn send_duplicate(shared: &Arc<Shared>, job: &Job) {
    let mut duplicate = job.clone();
    duplicate.duplicate = true;
    let delay = std::time::Duration::from_millis(5 + shared.delivery_rng().below(45));
    shared.pending.fetch_add(1, Ordering::SeqCst);
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        deliver(shared, duplicate).await;
    });
}

/// One signed POST. `Err` carries a description for the logs.
async fn post(shared: &Shared, job: &Job) -> Result<(), String> {
    let headers = protime_webhooks::signature::sign(
        &shared.config.signature_scheme,
        &job.key,
        &job.body,
        None,
    )
    .map_err(|e| format!("cannot sign: {e}"))?;
    let response = shared
        .http
        .post(&job.url)
        .headers(headers)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(job.body.clone())
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("destination answered {status}"))
    }
}
