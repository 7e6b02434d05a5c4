//! Shutdown on SIGINT or SIGTERM, for the commands that run until stopped, and the drain
//! of an HTTP server that such a signal stops.

use std::time::Duration;

use anyhow::Context as _;

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM. The handlers are installed when this
/// is called (not when first polled), so a signal during start-up is not lost to the
/// default action.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).ok();
        let mut interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let terminated = async {
                match terminate.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let interrupted = async {
                match interrupt.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = terminated => {}
                () = interrupted => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Serves `app` on `listener` within `limits` until `stop` resolves; then stops accepting
/// connections, closes the idle ones, and lets the requests in flight finish (each delivery
/// is answered only after its commit), for at most `drain`. Whatever is still in flight
/// after that is not answered, and Protime retries it.
pub(crate) async fn serve_until_stopped(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: protime_webhooks::server::ServerLimits,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> anyhow::Result<()> {
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = protime_webhooks::server::serve(listener, app, limits, async move {
        stop.await;
        let _ = stopping.send(());
    });
    let drain_deadline = async move {
        if stopped.await.is_ok() {
            tokio::time::sleep(drain).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served.context("the receiver stopped")?,
        () = drain_deadline => {
            tracing::warn!(?drain, "deliveries still in flight after the drain time: they were not answered, and Protime will retry them");
        }
    }
    Ok(())
}
