//! Cost of validation on a typical delivery body (every documented clocking field, with
//! external references):
//! (a) `serde_json::from_slice` into the generated raw type — the floor, no rules checked;
//! (b) `parse_delivery` — every rule, every violation collected;
//! (c) `serde_json::Value` plus the `jsonschema` validator on the emitted schema, and its two
//!     halves (c1) parsing into `Value` and (c2) validating an already-parsed `Value`.
//! `python3 scripts/bench_ratios.py` turns criterion's estimates into the ratios b/a and c/b.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

const TYPICAL: &[u8] = include_bytes!("../fixtures/clocking-changes/valid/inout-all-fields.json");
const SCHEMA: &str = include_str!("../../schemas/clocking-change.schema.json");

fn validation(c: &mut Criterion) {
    let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    // Sanity: all three accept the body, so they do comparable work.
    assert!(protime_model::parse_delivery(TYPICAL).is_ok());
    assert!(serde_json::from_slice::<protime_raw::types::ClockingChange>(TYPICAL).is_ok());
    assert!(validator.is_valid(&serde_json::from_slice(TYPICAL).unwrap()));

    let mut group = c.benchmark_group("validation");
    group.bench_function("a_raw_serde", |b| {
        b.iter(|| {
            serde_json::from_slice::<protime_raw::types::ClockingChange>(black_box(TYPICAL))
                .unwrap()
        })
    });
    group.bench_function("b_parse_delivery", |b| {
        b.iter(|| protime_model::parse_delivery(black_box(TYPICAL)).unwrap())
    });
    // The two halves of (c), to explain its cost.
    group.bench_function("c1_value_only", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(TYPICAL)).unwrap())
    });
    let parsed: serde_json::Value = serde_json::from_slice(TYPICAL).unwrap();
    group.bench_function("c2_jsonschema_only", |b| {
        b.iter(|| assert!(validator.is_valid(black_box(&parsed))))
    });
    group.bench_function("c_value_plus_jsonschema", |b| {
        b.iter(|| {
            let value: serde_json::Value = serde_json::from_slice(black_box(TYPICAL)).unwrap();
            assert!(validator.is_valid(&value));
            value
        })
    });
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
