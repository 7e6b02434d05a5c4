//! The limits every command that receives deliveries puts on hostile connections and
//! bodies (`protime receive` and `protime serve` share them): see
//! `protime_webhooks::server` and `protime_webhooks::receiver::ReceiverConfig`.

use std::time::Duration;

use protime_webhooks::receiver::ReceiverConfig;
use protime_webhooks::server::ServerLimits;

/// Connection and body limits of the receiving port.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Limits {
    /// Longest wait for a request's headers, and the longest a keep-alive connection stays
    /// open without a request.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    header_timeout_seconds: u64,
    /// Longest wait for a request's body once its headers are in (then 408).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    body_timeout_seconds: u64,
    /// Most connections open at once; at the cap a new one evicts the oldest connection
    /// that has no request in progress.
    #[arg(long, default_value_t = 512, value_name = "N")]
    max_connections: usize,
    /// Largest request body (then 413, refused before reading when `Content-Length` says
    /// so).
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    max_body_bytes: usize,
    /// Most request bodies read at once (they are read before the signature can be
    /// checked); more get 503 with `Retry-After: 1`.
    #[arg(long, default_value_t = 128, value_name = "N")]
    max_body_reads: usize,
    /// Most bytes of request bodies held at once; more get 503 with `Retry-After: 1`.
    #[arg(long, default_value_t = 16 * 1024 * 1024, value_name = "BYTES")]
    max_buffered_bytes: usize,
}

impl Limits {
    /// The connection limits.
    pub(crate) fn server(&self) -> ServerLimits {
        ServerLimits::default()
            .with_header_read_timeout(Duration::from_secs(self.header_timeout_seconds.max(1)))
            .with_max_connections(self.max_connections)
    }

    /// The receiver's body limits (clones of the result share one budget).
    pub(crate) fn receiver(&self) -> ReceiverConfig {
        ReceiverConfig::default()
            .with_body_limit(self.max_body_bytes.max(1))
            .with_read_timeout(Duration::from_secs(self.body_timeout_seconds.max(1)))
            .with_max_concurrent_body_reads(self.max_body_reads)
            .with_max_buffered_bytes(self.max_buffered_bytes)
    }
}
