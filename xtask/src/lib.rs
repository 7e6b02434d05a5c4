//! The library side of xtask: the OpenAPI normalizer and preflight check that
//! `cargo xtask codegen` runs before progenitor, exposed so that the fuzz
//! targets under `fuzz/` can call them, and the semantic spec diff (`spec_diff`),
//! exposed for the fixture tests under `xtask/tests/`. Not a stable API.

#[doc(hidden)]
pub mod normalize;
#[doc(hidden)]
pub mod preflight;
#[doc(hidden)]
pub mod spec_diff;
