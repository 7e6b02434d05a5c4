//! Receiving Protime clockings webhooks safely.
//!
//! - [`signature`]: HMAC verification of the raw body (and [`signature::sign`], what a sender
//!   does, for tests and local stand-ins);
//! - [`receive`]: the framework-agnostic core — verify, parse, hand to a sink, decide the
//!   HTTP status — usable from any HTTP stack;
//! - [`sink`]: the contract every store implements ([`DeliverySink`]), and an in-memory sink;
//! - [`receiver`] (feature `axum`): the axum adapter over the core;
//! - `server` (feature `server`): an HTTP/1 server for the receiver with header and idle
//!   timeouts and a connection cap that evicts idle connections first;
//! - `subscription` (feature `subscription`): keeping a webhook alive with `protime-client`.
//!
//! The validated model is `protime-model` (re-exported as `model`); durable backends live in
//! their own crates (`protime-store-sqlite`).
//!
//! # Features
//!
#![doc = document_features::document_features!()]
//!
//! No feature is on by default: without any, the crate is the signature check, the receive
//! core and the sink contract (no tokio, no HTTP server).
//!
//! # Public dependencies
//!
//! Types of these crates appear in this crate's public API; depend on the same major
//! versions to use them together:
//!
//! - `http` 1: `HeaderMap`, `HeaderName` and `StatusCode` in [`receive`] and [`signature`];
//! - `bytes` 1: the raw body ([`sink::WebhookOrigin::new`], [`receive::ReceiveCore::handle`]);
//! - `chrono` 0.4: timestamps ([`sink::Origin::received_at`]);
//! - `secrecy` 0.10: [`WebhookKey::from_secret`] takes a `SecretString`;
//! - `protime-model` 0.1 (re-exported as `model`);
//! - `axum` 0.8 (feature `axum`): `receiver::router` returns an `axum::Router`;
//! - `tokio` 1 and `hyper` 1 (feature `server`): `server::serve` takes a
//!   `tokio::net::TcpListener` and an `axum::Router`;
//! - `protime-client` 0.1 (feature `subscription`): `Subscription::new` takes a
//!   `ProtimeClient`.

/// The validated model (`protime-model`), re-exported.
pub use protime_model as model;

pub mod receive;
#[cfg(feature = "axum")]
pub mod receiver;
#[cfg(feature = "server")]
pub mod server;
pub mod signature;
pub mod sink;
#[cfg(feature = "subscription")]
pub mod subscription;
#[cfg(feature = "subscription")]
mod sync;

pub use receive::ReceiveError;
pub use signature::{KeyError, SignatureError, SignatureScheme, Verifier, WebhookKey};
pub use sink::{
    Delivery, DeliverySink, InMemorySink, InMemoryStats, Origin, Receipt, SinkError, SinkRead,
};
#[cfg(feature = "subscription")]
pub use subscription::{ReinitializeReport, Subscription, SubscriptionState};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
