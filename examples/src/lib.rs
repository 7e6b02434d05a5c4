//! Runnable examples of the protime crates; the code is in `examples/rust/`, the Python and
//! TypeScript validation examples in `examples/python/` and `examples/typescript/`.
//!
//! - `receive_in_axum`: the receiver nested in an existing axum app, with your own
//!   `DeliverySink` (`--self-test` sends it one signed delivery and exits);
//! - `sync_and_subscribe`: a subscription (webhook first, then the initial sync) against the
//!   sandbox started in-process, then live deliveries into an SQLite store;
//! - `change_feed`: reading a store's change feed page by page and resuming from a cursor.
//!
//! ```sh
//! cargo run -p protime-examples --example sync_and_subscribe
//! ```
