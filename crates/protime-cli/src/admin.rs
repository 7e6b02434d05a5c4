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

#[derive(Clone)]
struct Admin {
    metrics: PrometheusHandle,
    store: Option<Store>,
}

/// Installs the Prometheus recorder and serves the admin endpoints on `address` until the
/// process ends. Returns the address actually bound (port 0 picks one).
pub(crate) async fn serve(address: SocketAddr, store: Option<Store>) -> anyhow::Result<SocketAddr> {
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
        .with_state(Admin { metrics, store });
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
    let Some(store) = admin.store else {
        return (StatusCode::OK, "ready: in-memory sink\n".to_owned());
    };
    match tokio::time::timeout(Duration::from_secs(5), store.ready()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n".to_owned()),
        Ok(Err(reason)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason:#}\n"),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the store did not answer within 5 s\n".to_owned(),
        ),
    }
}
