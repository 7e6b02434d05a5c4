//! The admin endpoints of a long-running command, on their own address (never on the
//! public webhook port): `GET /healthz` (the process answers), `GET /readyz` (the store
//! takes writes) and `GET /metrics` (Prometheus text format, via
//! `metrics-exporter-prometheus`; the metric names are listed in
//! `protime_webhooks::receive::METRICS`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::store::Store;

/// Histogram buckets of the delivery latency, in seconds (a commit takes from well under a
/// millisecond to the disk's sync time).
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// How each subscription of a `serve` is doing, by name: `Ok` while its webhook is active
/// or being renewed, `Err(reason)` while it fails.
pub(crate) type SubscriptionHealth =
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, Result<String, String>>>>;

/// What `/readyz` checks: every store takes writes, and every subscription is healthy.
#[derive(Clone, Default)]
pub(crate) struct Readiness {
    pub(crate) stores: Vec<(String, Store)>,
    pub(crate) subscriptions: Option<SubscriptionHealth>,
}

#[derive(Clone)]
struct Admin {
    metrics: PrometheusHandle,
    readiness: Readiness,
}

/// Installs the Prometheus recorder and serves the admin endpoints on `address` until the
/// process ends. Returns the address actually bound (port 0 picks one).
pub(crate) async fn serve(address: SocketAddr, readiness: Readiness) -> anyhow::Result<SocketAddr> {
    let metrics = PrometheusBuilder::new()
        .set_buckets(&LATENCY_BUCKETS)
        .context("metric buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    // Keeps the histograms' windows rolling even when nobody scrapes.
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render))
        .with_state(Admin { metrics, readiness });
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} for the admin endpoints"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the admin endpoints stopped");
        }
    });
    Ok(bound)
}

async fn render(State(admin): State<Admin>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        admin.metrics.render(),
    )
}

async fn readyz(State(admin): State<Admin>) -> impl IntoResponse {
    let mut report = String::new();
    let mut ready = true;
    for (name, store) in &admin.readiness.stores {
        match tokio::time::timeout(Duration::from_secs(5), store.ready()).await {
            Ok(Ok(())) => report.push_str(&format!("store {name}: ready\n")),
            Ok(Err(reason)) => {
                ready = false;
                report.push_str(&format!("store {name}: not ready: {reason:#}\n"));
            }
            Err(_) => {
                ready = false;
                report.push_str(&format!("store {name}: not ready: no answer within 5 s\n"));
            }
        }
    }
    if let Some(subscriptions) = &admin.readiness.subscriptions {
        let statuses = subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for (name, status) in statuses {
            match status {
                Ok(state) => report.push_str(&format!("subscription {name}: {state}\n")),
                Err(reason) => {
                    ready = false;
                    report.push_str(&format!("subscription {name}: failing: {reason}\n"));
                }
            }
        }
    }
    if report.is_empty() {
        report.push_str("ready: in-memory sink\n");
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, report)
}
