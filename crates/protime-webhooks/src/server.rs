//! An HTTP/1 server for the receiver (feature `server`) that hostile connections cannot pin:
//! hyper's connection builder with a timer, plus a cap on open connections that evicts
//! idle ones first.
//!
//! `axum::serve` runs hyper without a timer: a client that sends its headers one byte per
//! second, or opens a keep-alive connection and says nothing, keeps it open for as long as it
//! likes, and enough of them exhaust the process's file descriptors, so a genuine delivery
//! gets no answer. [`serve`] instead:
//!
//! - closes a connection whose request head is not complete within
//!   [`ServerLimits::header_read_timeout`] — hyper starts that timer whenever the connection
//!   waits for a request head, so it is also the idle keep-alive timeout;
//! - bounds a request head to [`ServerLimits::max_header_bytes`] (hyper's read buffer);
//! - keeps at most [`ServerLimits::max_connections`] connections open. At the cap, a new
//!   connection evicts the oldest connection that has no request in progress (one idle or
//!   still sending its head); only when every connection is busy with a request is the new
//!   one closed at once. So a flood of idle or stalled connections delays a genuine delivery
//!   by one accept, not by a timeout;
//! - on shutdown stops accepting, lets requests in progress finish (each delivery is answered
//!   only after its commit), and closes idle connections at once.
//!
//! Request bodies are bounded by the receiver itself ([`crate::receiver::ReceiverConfig`]:
//! body limit, read timeout, concurrent body reads and a budget of buffered bytes).
//!
//! ```no_run
//! use std::sync::Arc;
//! use protime_webhooks::receiver::{router, ReceiverConfig};
//! use protime_webhooks::server::{serve, ServerLimits};
//! use protime_webhooks::{InMemorySink, SignatureScheme, Verifier, WebhookKey};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::new(SignatureScheme::default(), [WebhookKey::new("key from create")?])?;
//! let app = router(verifier, ReceiverConfig::default(), Arc::new(InMemorySink::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! // keep `stop`, e.g. in a signal handler; sending on it (or dropping it) stops the server
//! # drop(stop);
//! serve(listener, app, ServerLimits::default(), async {
//!     let _ = stopped.await;
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

/// Limits of [`serve`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerLimits {
    /// Longest time for a request head (request line and headers) to arrive, counted from
    /// when the connection starts waiting for it — so also the longest a keep-alive
    /// connection stays open idle. Default 10 s.
    pub header_read_timeout: Duration,
    /// Largest request head in bytes (larger ones get 431). Default 16 KiB (hyper's minimum
    /// is 8 KiB).
    pub max_header_bytes: usize,
    /// Most connections open at once. Default 512 (well under the common limit of 1,024 open
    /// files).
    pub max_connections: usize,
    /// Whether connections are kept alive between requests. Default true.
    pub keep_alive: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_connections: 512,
            keep_alive: true,
        }
    }
}

impl ServerLimits {
    /// Sets [`Self::header_read_timeout`].
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }
    /// Sets [`Self::max_header_bytes`] (at least 8 KiB).
    pub fn with_max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes.max(8 * 1024);
        self
    }
    /// Sets [`Self::max_connections`] (at least 1).
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }
    /// Sets [`Self::keep_alive`].
    pub fn with_keep_alive(mut self, keep_alive: bool) -> Self {
        self.keep_alive = keep_alive;
        self
    }
}

/// No request in progress: may be evicted.
const IDLE: u8 = 0;
/// A request is being answered.
const BUSY: u8 = 1;
/// Chosen for eviction: its task closes it.
const EVICTED: u8 = 2;

/// One open connection, as the cap sees it.
#[derive(Debug, Default)]
struct Connection {
    phase: AtomicU8,
    evicted: Notify,
}

impl Connection {
    /// Marks a request as started; false when the connection was just evicted.
    fn begin_request(&self) -> bool {
        self.phase
            .compare_exchange(IDLE, BUSY, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn end_request(&self) {
        let _ = self
            .phase
            .compare_exchange(BUSY, IDLE, Ordering::AcqRel, Ordering::Acquire);
    }

    fn try_evict(&self) -> bool {
        let evicted = self
            .phase
            .compare_exchange(IDLE, EVICTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if evicted {
            self.evicted.notify_one();
        }
        evicted
    }
}

/// Ends a request when dropped (also when its connection is dropped mid-request).
struct RequestGuard(Arc<Connection>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

/// The open connections, oldest first.
#[derive(Debug, Default)]
struct Registry {
    open: Mutex<BTreeMap<u64, Arc<Connection>>>,
    next: AtomicU64,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Connection>>> {
        // Each critical section is one insert, remove or scan: nothing is left half-done.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn insert(&self) -> (u64, Arc<Connection>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection::default());
        self.lock().insert(id, Arc::clone(&connection));
        (id, connection)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Evicts the oldest connection without a request in progress; false when all are busy.
    fn evict_oldest_idle(&self) -> bool {
        let open = self.lock();
        for (id, connection) in open.iter() {
            if connection.try_evict() {
                tracing::debug!(connection = id, "idle connection evicted to make room");
                metrics::counter!("protime_connections_evicted_total").increment(1);
                return true;
            }
        }
        false
    }
}

/// Whether an `accept` error concerns only the connection being accepted (the listener
/// itself is fine).
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves; then stops
/// accepting, closes idle connections, and returns once every request in progress has been
/// answered (bound that wait with a timeout of your own, e.g. `tokio::time::timeout`).
/// See the [module documentation](self).
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let registry = Arc::new(Registry::default());
    let (closing, closing_seen) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8 * 1024))
        .keep_alive(limits.keep_alive);
    let service = TowerToHyperService::new(app);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(error) if is_connection_error(&error) => continue,
                    Err(error) => {
                        // Out of file descriptors (or a similar resource): make room by
                        // closing an idle connection, and wait a moment before the next try.
                        tracing::warn!(%error, "cannot accept a connection");
                        registry.evict_oldest_idle();
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                if registry.len() >= limits.max_connections && !registry.evict_oldest_idle() {
                    // Every connection is answering a request: this one must wait for a
                    // retry rather than grow memory without bound.
                    metrics::counter!("protime_connections_refused_total").increment(1);
                    drop(stream);
                    continue;
                }
                let (id, connection) = registry.insert();
                metrics::gauge!("protime_connections_open").set(registry.len() as f64);
                let registry = Arc::clone(&registry);
                let service = service.clone();
                let builder = builder.clone();
                let mut closing = closing_seen.clone();
                tasks.spawn(async move {
                    let tracked = Arc::clone(&connection);
                    let per_request = hyper::service::service_fn(move |request| {
                        let started = tracked.begin_request();
                        let guard = RequestGuard(Arc::clone(&tracked));
                        let answer = service.call(request);
                        async move {
                            let _guard = guard;
                            if !started {
                                return Ok(unavailable());
                            }
                            answer.await
                        }
                    });
                    let served = builder.serve_connection(TokioIo::new(stream), per_request);
                    tokio::pin!(served);
                    tokio::select! {
                        result = served.as_mut() => {
                            if let Err(error) = result {
                                tracing::debug!(%error, "connection ended with an error");
                            }
                        }
                        () = connection.evicted.notified() => {}
                        () = async { let _ = closing.wait_for(|closing| *closing).await; } => {
                            served.as_mut().graceful_shutdown();
                            let _ = served.await;
                        }
                    }
                    registry.remove(id);
                    metrics::gauge!("protime_connections_open").set(registry.len() as f64);
                });
            }
        }
    }
    drop(listener);
    let _ = closing.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The answer to a request that arrived on a connection chosen for eviction.
fn unavailable() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "1")],
        "",
    )
        .into_response()
}
