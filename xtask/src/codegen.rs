//! `cargo xtask codegen`: OpenAPI spec → normalize → preflight → progenitor → prettyplease.

use std::path::Path;

use anyhow::Context as _;
use progenitor::{GenerationSettings, Generator, InterfaceStyle, TagStyle};
use sha2::{Digest as _, Sha256};

use crate::{Outcome, normalize, preflight, write_or_check};

/// The exact generator version; must match the `=` pin in xtask/Cargo.toml.
pub(crate) const PROGENITOR_VERSION: &str = "0.15.1";

/// One spec and the file generated from it.
pub(crate) struct Target {
    /// Spec path, relative to the workspace root.
    pub(crate) spec: &'static str,
    /// Generated file, relative to the workspace root.
    pub(crate) output: &'static str,
    /// Whether the client carries [`request_hooks`] (sync pre- and post-request hooks).
    pub(crate) hooks: bool,
}

/// Every client this workspace generates. The ASP.NET fixture is generated too, so that
/// `cargo test --workspace` proves a Swashbuckle-style spec normalizes, generates and compiles.
pub(crate) const TARGETS: &[Target] = &[
    Target {
        spec: "openapi/protime-api.json",
        output: "crates/protime-raw/src/generated.rs",
        hooks: true,
    },
    Target {
        spec: "xtask/fixtures/aspnet-swagger.json",
        output: "xtask/fixtures/aspnet-client/src/generated.rs",
        hooks: false,
    },
];

pub(crate) fn run(root: &Path, check: bool) -> anyhow::Result<Outcome> {
    let mut all_fresh = true;
    for target in TARGETS {
        let text = std::fs::read_to_string(root.join(target.spec))
            .with_context(|| format!("cannot read {}", target.spec))?;
        let (code, changes) =
            generate(&text, target.spec, target.hooks).with_context(|| target.spec.to_string())?;
        if !check {
            for change in &changes {
                println!("{}: normalized {change}", target.spec);
            }
        }
        all_fresh &= write_or_check(root, target.output, &code, check)?;
    }
    Ok(if all_fresh {
        Outcome::UpToDate
    } else {
        Outcome::Stale
    })
}

/// Generates the client source for one spec; returns it with the normalizations applied.
/// The client's inner value carries request hooks: one run on every request just before it
/// is sent (to set the current bearer token, trace the attempt) and one run on every result
/// (to trace it and keep the status of error bodies that are not JSON).
///
/// The generated crate has no hand-written code, so the hook types are spelled with std and
/// reqwest types only: the inner value is an `Arc<dyn Any + Send + Sync>` (which is `Debug`,
/// as the generated `Client` requires), and a value of type [`hooks_type`] inside it is
/// called; any other value (e.g. `Arc::new(())`) means "no hooks".
fn request_hooks(settings: &mut GenerationSettings) {
    let hooks = hooks_type();
    settings
        .with_inner_type(quote::quote! {
            ::std::sync::Arc<dyn ::std::any::Any + ::std::marker::Send + ::std::marker::Sync>
        })
        .with_pre_hook(quote::quote! {
            |inner: &::std::sync::Arc<dyn ::std::any::Any + ::std::marker::Send + ::std::marker::Sync>,
             request: &mut ::reqwest::Request| {
                if let ::std::option::Option::Some(hooks) = inner.downcast_ref::<#hooks>() {
                    (hooks.0)(request)
                }
            }
        })
        .with_post_hook(quote::quote! {
            |inner: &::std::sync::Arc<dyn ::std::any::Any + ::std::marker::Send + ::std::marker::Sync>,
             result: &::reqwest::Result<::reqwest::Response>| {
                if let ::std::option::Option::Some(hooks) = inner.downcast_ref::<#hooks>() {
                    (hooks.1)(result)
                }
            }
        });
}

/// `(pre-request hook, post-request hook)`: the value the hooks look for in the inner `Any`.
fn hooks_type() -> proc_macro2::TokenStream {
    quote::quote! {
        (
            ::std::sync::Arc<dyn ::std::ops::Fn(&mut ::reqwest::Request) + ::std::marker::Send + ::std::marker::Sync>,
            ::std::sync::Arc<dyn ::std::ops::Fn(&::reqwest::Result<::reqwest::Response>) + ::std::marker::Send + ::std::marker::Sync>,
        )
    }
}

pub(crate) fn generate(
    spec_text: &str,
    spec_name: &str,
    hooks: bool,
) -> anyhow::Result<(String, Vec<String>)> {
    let mut value: serde_json::Value =
        serde_json::from_str(spec_text).context("the spec is not valid JSON")?;
    let changes = normalize::normalize(&mut value);
    preflight::check(&value)?;
    let spec: openapiv3::OpenAPI = serde_json::from_value(value)
        .context("the spec does not match the OpenAPI 3.0 document structure")?;

    let mut settings = GenerationSettings::new();
    settings
        .with_interface(InterfaceStyle::Builder)
        .with_tag(TagStyle::Merged)
        .with_derive("PartialEq");
    if hooks {
        request_hooks(&mut settings);
    }
    let mut generator = Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&spec)
        .map_err(|e| anyhow::anyhow!("progenitor rejected the spec: {e}"))?;
    let file: syn::File = syn::parse2(tokens).context("progenitor produced unparsable code")?;
    let digest = Sha256::digest(spec_text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let header = format!(
        "// @generated by `cargo xtask codegen` — DO NOT EDIT.\n\
         // Source: {spec_name} (sha256 {hex})\n\
         // Generator: progenitor {PROGENITOR_VERSION}, Builder interface, merged tags{}.\n\
         // Change the spec (or xtask), then run `cargo xtask codegen`.\n\n",
        if hooks { ", request hooks" } else { "" }
    );
    Ok((format!("{header}{}", prettyplease::unparse(&file)), changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The drift check that `cargo test --workspace` runs: every committed generated client
    /// must be byte-identical to a fresh generation from its spec.
    #[test]
    fn committed_clients_match_a_fresh_generation() {
        let root = crate::workspace_root();
        let mut stale = Vec::new();
        for target in TARGETS {
            let spec = std::fs::read_to_string(root.join(target.spec)).unwrap_or_default();
            let fresh = match generate(&spec, target.spec, target.hooks) {
                Ok((code, _)) => code,
                Err(error) => panic!("{} does not generate: {error:#}", target.spec),
            };
            let committed = std::fs::read_to_string(root.join(target.output)).unwrap_or_default();
            if committed != fresh {
                stale.push(target.output);
            }
        }
        assert!(
            stale.is_empty(),
            "stale generated code: {} differs from a fresh generation of its spec; run `cargo xtask codegen`",
            stale.join(", ")
        );
    }

    #[test]
    fn generation_is_deterministic() {
        let root = crate::workspace_root();
        let spec =
            std::fs::read_to_string(root.join("openapi/protime-api.json")).unwrap_or_default();
        let first = generate(&spec, "openapi/protime-api.json", true)
            .map(|r| r.0)
            .ok();
        let second = generate(&spec, "openapi/protime-api.json", true)
            .map(|r| r.0)
            .ok();
        assert!(first.is_some());
        assert_eq!(first, second);
    }

    #[test]
    fn header_records_spec_hash_and_generator_version() {
        let (code, _) = generate(
            r#"{"openapi":"3.0.3","info":{"title":"t","version":"1"},"paths":{}}"#,
            "t.json",
            false,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(code.starts_with("// @generated by `cargo xtask codegen` — DO NOT EDIT."));
        assert!(code.contains("progenitor 0.15.1"));
        assert!(code.contains("sha256 "));
    }

    #[test]
    fn a_3_1_spec_fails_with_one_actionable_line() {
        let error = generate(
            r#"{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{}}"#,
            "t.json",
            false,
        )
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
        assert_eq!(error.lines().count(), 1, "{error}");
        assert!(error.contains("3.1.0"), "{error}");
    }
}
