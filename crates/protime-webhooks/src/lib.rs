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
//! The validated model is `protime-model` (re-exported as [`model`]); durable backends live in
//! their own crates (`protime-store-sqlite`).
//!
//! # Features
//! | feature | what it adds | default |
//! |---|---|---|
//! | `axum` | [`receiver`]: router, handler, extractor (axum 0.8, tokio) | off |
//! | `server` | `server`: [`serve`](server::serve) with [`ServerLimits`](server::ServerLimits) (hyper, hyper-util; implies `axum`) | off |
//! | `subscription` | `subscription`: [`Subscription`](subscription::Subscription) (protime-client, reqwest) | off |
//! | `conformance` | `sink::conformance`: the test suite every sink backend runs (tokio) | off |

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
