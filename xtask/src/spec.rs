//! `cargo xtask spec diff` and `cargo xtask spec import`: what a maintainer runs when Protime
//! ships a new OpenAPI document.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::Value;
use xtask::spec_diff::{self, Bump, Report};

use crate::{codegen, normalize, preflight, schema};

/// The vendored spec, relative to the repository root.
pub(crate) const SPEC: &str = "openapi/protime-api.json";

const USAGE: &str = "usage: cargo xtask spec diff OLD NEW [--format markdown|json] [--require-bump BASE_VERSION]\n       cargo xtask spec import FILE [--root DIR] [--no-schemas]";

pub(crate) fn main(args: &[String], workspace: &Path) -> ExitCode {
    let result = match args.first().map(String::as_str) {
        Some("diff") => diff_command(args.get(1..).unwrap_or_default(), workspace),
        Some("import") => import_command(args.get(1..).unwrap_or_default(), workspace),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            for line in format!("{error:#}").lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Positional arguments and `--flag [value]` options.
type Parsed<'a> = (Vec<&'a str>, Vec<(&'a str, Option<&'a str>)>);

/// Splits `args` into positional arguments and `--flag [value]` options.
fn parse<'a>(
    args: &'a [String],
    with_value: &[&str],
    flags: &[&str],
) -> anyhow::Result<Parsed<'a>> {
    let mut positional = Vec::new();
    let mut options = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let arg = arg.as_str();
        if let Some((name, value)) = arg.split_once('=').filter(|(n, _)| n.starts_with("--")) {
            if !with_value.contains(&name) {
                bail!("unknown option `{name}`\n{USAGE}");
            }
            options.push((name, Some(value)));
        } else if with_value.contains(&arg) {
            let Some(value) = iter.next() else {
                bail!("`{arg}` needs a value\n{USAGE}");
            };
            options.push((arg, Some(value.as_str())));
        } else if flags.contains(&arg) {
            options.push((arg, None));
        } else if arg.starts_with("--") {
            bail!("unknown option `{arg}`\n{USAGE}");
        } else {
            positional.push(arg);
        }
    }
    Ok((positional, options))
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// The workspace version (`[workspace.package] version`), which every crate inherits.
pub(crate) fn workspace_version(root: &Path) -> Option<String> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).ok()?;
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[workspace.package]";
        } else if in_package && let Some(rest) = line.strip_prefix("version") {
            let value = rest.trim_start().strip_prefix('=')?.trim();
            return Some(value.trim_matches('"').to_owned());
        }
    }
    None
}

fn diff_command(args: &[String], root: &Path) -> anyhow::Result<bool> {
    let (positional, options) = parse(args, &["--format", "--require-bump"], &[])?;
    let [old_path, new_path] = positional.as_slice() else {
        bail!("spec diff needs exactly two files, OLD and NEW\n{USAGE}");
    };
    let mut format = "markdown";
    let mut base_version = None;
    for (name, value) in options {
        match (name, value) {
            ("--format", Some(f @ ("markdown" | "json"))) => format = f,
            ("--format", Some(other)) => {
                bail!("unknown format `{other}`: use --format markdown or --format json")
            }
            (_, value) => base_version = value,
        }
    }
    let mut old = read_json(Path::new(old_path))?;
    let mut new = read_json(Path::new(new_path))?;
    // Both sides as codegen sees them: Swashbuckle media types are not a change.
    normalize::normalize(&mut old);
    normalize::normalize(&mut new);
    let report = spec_diff::diff(&old, &new);
    let version = workspace_version(root);
    match format {
        "json" => println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json(old_path, new_path))?
        ),
        _ => print!(
            "{}",
            report.to_markdown(old_path, new_path, version.as_deref())
        ),
    }
    let Some(base) = base_version else {
        return Ok(true);
    };
    let Some(current) = version else {
        bail!("--require-bump: no `version` under [workspace.package] in Cargo.toml");
    };
    match missing_bump(report.rust_bump(), base, &current)? {
        None => Ok(true),
        Some(problem) => {
            eprintln!("error: {problem}");
            Ok(false)
        }
    }
}

/// `--require-bump BASE_VERSION`: the rule that a spec change comes with a version bump.
/// `base` is the version of protime-raw/protime-client when OLD was current (for a pull
/// request: the base branch's `[workspace.package] version`); `current` is the workspace's
/// version now. The changes need `current` ≥ the bump they imply applied to `base` (Cargo's
/// rules: before 1.0 a breaking change bumps the minor number, an addition the patch number).
/// Returns the problem, in one actionable line, when the bump is missing.
pub(crate) fn missing_bump(
    needed: Bump,
    base: &str,
    current: &str,
) -> anyhow::Result<Option<String>> {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let mut parts = v.trim().split('.').map(|p| p.parse::<u64>().ok());
        let version = (parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(version)
    };
    let (Some(minimum), Some(got)) = (
        needed.apply(base).as_deref().and_then(parse),
        parse(current),
    ) else {
        bail!("versions must be major.minor.patch: base `{base}`, current `{current}`");
    };
    if got >= minimum {
        return Ok(None);
    }
    let (a, b, c) = minimum;
    Ok(Some(format!(
        "the spec changes need a {} bump of protime-raw and protime-client: {base} → at least {a}.{b}.{c}, but Cargo.toml says {current}; raise `version` under [workspace.package]",
        needed.as_str()
    )))
}

// ---- import --------------------------------------------------------------------------------

/// What `spec import` did.
#[derive(Debug)]
pub(crate) struct Imported {
    /// How many annotations were copied from the old spec into the new one.
    pub(crate) carried: usize,
    /// Annotations of the old spec whose place is gone from the new one.
    pub(crate) lost: Vec<String>,
    /// One actionable line per decision the new spec needs (model disagreements).
    pub(crate) decisions: Vec<String>,
    /// The diff from the old vendored spec to the imported one.
    pub(crate) report: Report,
}

fn import_command(args: &[String], workspace: &Path) -> anyhow::Result<bool> {
    let (positional, options) = parse(args, &["--root"], &["--no-schemas"])?;
    let [file] = positional.as_slice() else {
        bail!("spec import needs exactly one FILE\n{USAGE}");
    };
    let mut root = workspace.to_path_buf();
    let mut schemas = true;
    for (name, value) in options {
        match (name, value) {
            ("--root", Some(dir)) => root = PathBuf::from(dir),
            _ => schemas = false,
        }
    }
    let imported = import(&root, Path::new(file), schemas)?;
    print!(
        "{}",
        imported.report.to_markdown(
            &format!("{SPEC} (before)"),
            file,
            workspace_version(&root).as_deref()
        )
    );
    println!("\ncarried {} annotations over", imported.carried);
    for lost in &imported.lost {
        eprintln!("warning: annotation without a home: {lost}");
    }
    for decision in &imported.decisions {
        eprintln!("error: {decision}");
    }
    Ok(imported.decisions.is_empty())
}

/// Imports the spec at `file` into the repository at `root`: normalize and preflight it,
/// carry our annotations over, write `openapi/protime-api.json`, regenerate protime-raw (and
/// the JSON Schemas when `schemas`), diff against the previous spec and check the model.
/// Nothing is written when the new spec does not generate.
pub(crate) fn import(root: &Path, file: &Path, schemas: bool) -> anyhow::Result<Imported> {
    let mut new = read_json(file)?;
    for change in normalize::normalize(&mut new) {
        println!("{}: normalized {change}", file.display());
    }
    if let Err(error) = preflight::check(&new) {
        // One line per problem; nothing is written.
        bail!("{} cannot be generated:\n{error}", file.display());
    }
    let old = read_json(&root.join(SPEC))?;
    let mut carry = Carry::default();
    carry_annotations(&old, &mut new, "", false, &mut carry);

    let text = format!("{}\n", serde_json::to_string_pretty(&new)?);
    // Generate in memory first: a spec progenitor rejects is not written.
    codegen::generate(&text, SPEC, true).with_context(|| file.display().to_string())?;
    std::fs::write(root.join(SPEC), &text)
        .with_context(|| format!("cannot write {}", root.join(SPEC).display()))?;
    println!("{SPEC}: written");
    codegen::run_for_spec(root, SPEC)?;
    if schemas {
        schema::run(root, false)?;
    }
    Ok(Imported {
        carried: carry.carried,
        lost: carry.lost,
        decisions: model_decisions(&new),
        report: spec_diff::diff(&old, &new),
    })
}

#[derive(Default)]
struct Carry {
    carried: usize,
    lost: Vec<String>,
}

/// Keys that are ours to keep: extensions and the prose we wrote.
fn is_annotation(key: &str) -> bool {
    key.starts_with("x-") || key == "description" || key == "summary"
}

/// Object keys under which every key is a name (a property, path, status, media type), never
/// an annotation.
fn is_name_map(key: &str) -> bool {
    matches!(
        key,
        "properties"
            | "paths"
            | "schemas"
            | "responses"
            | "requestBodies"
            | "parameters"
            | "securitySchemes"
            | "content"
            | "headers"
            | "examples"
            | "links"
            | "callbacks"
            | "variables"
    )
}

fn has_annotations(value: &Value, names: bool) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| (!names && is_annotation(k)) || has_annotations(v, is_name_map(k))),
        Value::Array(items) => items.iter().any(|v| has_annotations(v, false)),
        _ => false,
    }
}

/// Copies the annotations of `old` onto the same places in `new` (ours win over the new
/// document's prose), matching parameters by `in` and `name`. `names`: the keys of this
/// object are names, not keywords.
fn carry_annotations(old: &Value, new: &mut Value, at: &str, names: bool, carry: &mut Carry) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let is_ref = n.contains_key("$ref") && !o.contains_key("$ref");
            for (key, old_value) in o {
                let here = join(at, key);
                if !names && is_annotation(key) {
                    if is_ref {
                        // A $ref's siblings are ignored in OpenAPI 3.0.
                        lost(old_value, key, &format!("{at} (now a $ref)"), carry);
                    } else if n.get(key) != Some(old_value) {
                        n.insert(key.clone(), old_value.clone());
                        carry.carried += 1;
                    }
                    continue;
                }
                let child_names = !names && is_name_map(key);
                if !has_annotations(old_value, child_names) {
                    continue;
                }
                match n.get_mut(key) {
                    Some(new_value) if !names && key == "parameters" => {
                        carry_parameters(old_value, new_value, &here, carry);
                    }
                    Some(new_value) => {
                        carry_annotations(old_value, new_value, &here, child_names, carry);
                    }
                    None => lost_all(old_value, &here, child_names, carry),
                }
            }
        }
        (Value::Array(o), Value::Array(n)) if o.len() == n.len() => {
            for (index, (a, b)) in o.iter().zip(n.iter_mut()).enumerate() {
                carry_annotations(a, b, &format!("{at}[{index}]"), false, carry);
            }
        }
        (old, _) => lost_all(old, at, names, carry),
    }
}

fn carry_parameters(old: &Value, new: &mut Value, at: &str, carry: &mut Carry) {
    let key = |p: &Value| -> Option<String> {
        if let Some(reference) = p.get("$ref").and_then(Value::as_str) {
            return Some(reference.to_owned());
        }
        Some(format!(
            "{} {}",
            p.get("in")?.as_str()?,
            p.get("name")?.as_str()?
        ))
    };
    let (Some(old_list), Some(new_list)) = (old.as_array(), new.as_array_mut()) else {
        lost_all(old, at, false, carry);
        return;
    };
    for old_param in old_list {
        let Some(k) = key(old_param) else {
            continue;
        };
        let here = format!("{at}[{k}]");
        match new_list.iter_mut().find(|p| key(p).as_deref() == Some(&k)) {
            Some(new_param) => carry_annotations(old_param, new_param, &here, false, carry),
            None => lost_all(old_param, &here, false, carry),
        }
    }
}

/// Records every extension annotation under `value` as lost (prose is dropped silently: it
/// described something that is gone).
fn lost_all(value: &Value, at: &str, names: bool, carry: &mut Carry) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if !names && key.starts_with("x-") {
                    lost(child, key, at, carry);
                } else {
                    lost_all(child, &join(at, key), !names && is_name_map(key), carry);
                }
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                lost_all(child, &format!("{at}[{index}]"), false, carry);
            }
        }
        _ => {}
    }
}

fn lost(value: &Value, key: &str, at: &str, carry: &mut Carry) {
    if !key.starts_with("x-") {
        return;
    }
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut short: String = text.chars().take(80).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    carry.lost.push(format!("{at}: {key}: {short}"));
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

// ---- what the model decides ------------------------------------------------------------------

/// Where the new spec and protime-model disagree (the same pairs as
/// `tests/tests/spec_model.rs`): one actionable line each.
pub(crate) fn model_decisions(spec: &Value) -> Vec<String> {
    use protime_model::{
        ActivityLevelNumber, ChangeType, ClockingId, ClockingKind, ClockingStatus, Latitude,
        Longitude, MinuteOfDay, PersonId, ReasonId, TerminalId,
    };
    let mut lines = Vec::new();
    let enums: [(&str, &[&str], &str); 3] = [
        ("ClockingKind", ClockingKind::NAMES, "ClockingKind"),
        ("ClockingStatus", ClockingStatus::NAMES, "ClockingStatus"),
        ("ChangeType", ChangeType::NAMES, "ChangeType"),
    ];
    for (schema_name, known, model) in enums {
        let Some(values) = spec
            .pointer(&format!("/components/schemas/{schema_name}/enum"))
            .and_then(Value::as_array)
        else {
            lines.push(format!(
                "components.schemas.{schema_name} is gone or no longer an enum, but protime_model::{model} reads it: map the new schema to the model (crates/protime-model/src/model.rs) or restore it, then import again"
            ));
            continue;
        };
        let values: Vec<String> = values
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect();
        for value in values.iter().filter(|v| !known.contains(&v.as_str())) {
            lines.push(format!(
                "components.schemas.{schema_name}: new value `{value}` is unknown to protime_model::{model} (a closed enum): add a variant and its rules in crates/protime-model (model.rs, parse.rs, docs/validation-rules.md) or decide to refuse it, then import again"
            ));
        }
        for value in known.iter().filter(|k| !values.iter().any(|v| v == *k)) {
            lines.push(format!(
                "components.schemas.{schema_name}: `{value}` is no longer listed, but protime_model::{model} accepts it: remove the variant from crates/protime-model or keep accepting it and restore the value in the spec, then import again"
            ));
        }
    }

    let minutes = (f64::from(MinuteOfDay::MIN), f64::from(MinuteOfDay::MAX));
    // (schema, property, model minimum, model maximum, the model's constants)
    type Range<'a> = (&'a str, &'a str, Option<f64>, Option<f64>, &'a str);
    let mut ranges: Vec<Range<'_>> = Vec::new();
    for schema_name in ["Clocking", "ClockingChangeData"] {
        for property in [
            "timeOfDayInMinutes",
            "originalTimeOfDayInMinutes",
            "calculatedTimeOfDayInMinutes",
        ] {
            ranges.push((
                schema_name,
                property,
                Some(minutes.0),
                Some(minutes.1),
                "MinuteOfDay::MIN/MAX",
            ));
        }
        ranges.push((
            schema_name,
            "id",
            Some(ClockingId::MIN as f64),
            None,
            "ClockingId::MIN",
        ));
    }
    ranges.extend([
        (
            "Geolocation",
            "latitude",
            Some(Latitude::MIN),
            Some(Latitude::MAX),
            "Latitude::MIN/MAX",
        ),
        (
            "Geolocation",
            "longitude",
            Some(Longitude::MIN),
            Some(Longitude::MAX),
            "Longitude::MIN/MAX",
        ),
        (
            "ActivityLevel",
            "level",
            Some(f64::from(ActivityLevelNumber::MIN)),
            None,
            "ActivityLevelNumber::MIN",
        ),
        (
            "PersonRef",
            "id",
            Some(PersonId::MIN as f64),
            None,
            "PersonId::MIN",
        ),
        (
            "TerminalRef",
            "id",
            Some(TerminalId::MIN as f64),
            None,
            "TerminalId::MIN",
        ),
        (
            "ReasonRef",
            "id",
            Some(ReasonId::MIN as f64),
            None,
            "ReasonId::MIN",
        ),
    ]);
    for (schema_name, property, min, max, constants) in ranges {
        let Some(field) = spec.pointer(&format!(
            "/components/schemas/{schema_name}/properties/{property}"
        )) else {
            lines.push(format!(
                "{schema_name}.{property} is gone from the spec, but protime_model::{constants} validates it: remove the field from the model or restore it in the spec, then import again"
            ));
            continue;
        };
        let bound = |k: &str| field.get(k).and_then(Value::as_f64);
        let spec_min = bound("minimum");
        // Only the bounds the model states are compared (the model has no maximum for ids).
        let spec_max = if max.is_some() {
            bound("maximum")
        } else {
            None
        };
        if (spec_min, spec_max) != (min, max) {
            let show = |v: Option<f64>| v.map_or("∞".to_owned(), |v| v.to_string());
            lines.push(format!(
                "{schema_name}.{property}: the spec says {}..{}, protime_model::{constants} says {}..{}: change the constants (and docs/validation-rules.md) or restore the spec's bounds with an x-assumption, then import again",
                show(spec_min),
                show(spec_max),
                show(min),
                show(max)
            ));
        }
    }
    lines
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;

    fn real_spec() -> Value {
        read_json(&crate::workspace_root().join(SPEC)).unwrap()
    }

    /// A fresh directory under the system temp dir, standing in for a repository root.
    fn temp_root(name: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(dir.join("openapi")).unwrap();
        std::fs::copy(crate::workspace_root().join(SPEC), dir.join(SPEC)).unwrap();
        dir
    }

    /// The spec as Protime would ship it: without our extensions.
    fn strip_extensions(value: &mut Value, names: bool) {
        match value {
            Value::Object(map) => {
                if !names {
                    map.retain(|k, _| !k.starts_with("x-"));
                }
                for (k, v) in map.iter_mut() {
                    strip_extensions(v, !names && is_name_map(k));
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| strip_extensions(v, false)),
            _ => {}
        }
    }

    fn count_extensions(value: &Value) -> usize {
        match value {
            Value::Object(map) => {
                map.keys().filter(|k| k.starts_with("x-")).count()
                    + map.values().map(count_extensions).sum::<usize>()
            }
            Value::Array(items) => items.iter().map(count_extensions).sum(),
            _ => 0,
        }
    }

    fn count_outer_extensions(value: &Value) -> usize {
        match value {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| {
                    if k.starts_with("x-") {
                        1
                    } else {
                        count_outer_extensions(v)
                    }
                })
                .sum(),
            Value::Array(items) => items.iter().map(count_outer_extensions).sum(),
            _ => 0,
        }
    }

    #[test]
    fn import_of_a_new_field_and_kind_regenerates_reports_and_keeps_annotations() {
        let root = temp_root("import");
        let mut new = real_spec();
        strip_extensions(&mut new, false);
        assert_eq!(count_extensions(&new), 0);
        let clocking = new
            .pointer_mut("/components/schemas/Clocking/properties")
            .unwrap();
        clocking.as_object_mut().unwrap().insert(
            "workedFromHome".into(),
            serde_json::json!({ "type": "boolean", "description": "New in this version." }),
        );
        new.pointer_mut("/components/schemas/ClockingKind/enum")
            .unwrap()
            .as_array_mut()
            .unwrap()
            .push("Break".into());
        let file = root.join("new.json");
        std::fs::write(&file, serde_json::to_string_pretty(&new).unwrap()).unwrap();

        let imported = import(&root, &file, false).unwrap_or_else(|e| panic!("{e:#}"));

        // The new field reaches the regenerated raw types.
        let generated =
            std::fs::read_to_string(root.join("crates/protime-raw/src/generated.rs")).unwrap();
        assert!(
            generated.contains("pub worked_from_home: ::std::option::Option<bool>"),
            "the regenerated client has no worked_from_home field"
        );
        assert!(generated.contains("Break"));
        // The new kind needs a model decision: one line.
        assert_eq!(imported.decisions.len(), 1, "{:?}", imported.decisions);
        assert!(imported.decisions[0].contains("`Break`"));
        assert!(imported.decisions[0].contains("protime_model::ClockingKind"));
        // Every annotation survives, at its place.
        let written = read_json(&root.join(SPEC)).unwrap();
        let original = real_spec();
        assert_eq!(count_extensions(&written), count_extensions(&original));
        assert!(imported.lost.is_empty(), "{:?}", imported.lost);
        // Each outermost extension was copied (one inside another travels with it).
        assert!(
            imported.carried >= count_outer_extensions(&original),
            "carried {}",
            imported.carried
        );
        for pointer in [
            "/components/schemas/Clocking/x-protime-docs",
            "/components/schemas/Geolocation/x-assumption",
            "/paths/~1connector~1protimeapi~1api~1v1~1clockings/get/parameters/2/x-pattern",
            "/x-protime-required-headers",
        ] {
            assert_eq!(
                written.pointer(pointer),
                original.pointer(pointer),
                "{pointer}"
            );
            assert!(written.pointer(pointer).is_some(), "{pointer}");
        }
        // The diff names both changes.
        let codes: Vec<(&str, &str)> = imported
            .report
            .changes
            .iter()
            .map(|c| (c.code, c.location.as_str()))
            .collect();
        assert!(
            codes.contains(&("field-added", "Clocking.workedFromHome")),
            "{codes:?}"
        );
        assert!(
            codes.contains(&("enum-value-added", "ClockingKind")),
            "{codes:?}"
        );
        assert_eq!(codes.len(), 2, "{codes:?}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn import_lists_annotations_whose_operation_is_gone() {
        let root = temp_root("import-lost");
        let mut new = real_spec();
        strip_extensions(&mut new, false);
        new.pointer_mut("/paths/~1connector~1protimeapi~1api~1v1~1clockings")
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove("post");
        let file = root.join("new.json");
        std::fs::write(&file, serde_json::to_string(&new).unwrap()).unwrap();
        let imported = import(&root, &file, false).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(imported.decisions.is_empty(), "{:?}", imported.decisions);
        assert!(
            imported
                .lost
                .iter()
                .any(|l| l.contains("clockings.post") && l.contains("x-protime-docs")),
            "{:?}",
            imported.lost
        );
        assert!(
            imported
                .report
                .changes
                .iter()
                .any(|c| c.code == "operation-removed")
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_spec_that_does_not_generate_is_not_written() {
        let root = temp_root("import-bad");
        let before = std::fs::read_to_string(root.join(SPEC)).unwrap();
        let file = root.join("new.json");
        std::fs::write(
            &file,
            r#"{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{}}"#,
        )
        .unwrap();
        let error = import(&root, &file, false)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(error.contains("3.1.0"), "{error}");
        assert_eq!(std::fs::read_to_string(root.join(SPEC)).unwrap(), before);
        assert!(!root.join("crates").exists());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn the_real_spec_needs_no_model_decision() {
        assert_eq!(model_decisions(&real_spec()), Vec::<String>::new());
    }

    #[test]
    fn a_narrower_minute_range_needs_a_decision() {
        let mut spec = real_spec();
        *spec
            .pointer_mut("/components/schemas/Clocking/properties/timeOfDayInMinutes/minimum")
            .unwrap() = (-2880).into();
        let lines = model_decisions(&spec);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("Clocking.timeOfDayInMinutes: the spec says -2880..2880"));
    }

    #[test]
    fn a_breaking_change_needs_a_bump() {
        let missing = |needed, base, current| missing_bump(needed, base, current).unwrap();
        // 0.x: breaking = minor, addition = patch.
        assert!(missing(Bump::Major, "0.1.0", "0.1.0").is_some());
        assert!(missing(Bump::Major, "0.1.0", "0.1.1").is_some());
        assert_eq!(missing(Bump::Major, "0.1.0", "0.2.0"), None);
        assert_eq!(missing(Bump::Minor, "0.1.0", "0.1.1"), None);
        assert!(missing(Bump::Minor, "0.1.0", "0.1.0").is_some());
        assert_eq!(missing(Bump::None, "0.1.0", "0.1.0"), None);
        // 1.x and later: major and minor.
        assert!(missing(Bump::Major, "1.2.3", "1.9.0").is_some());
        assert_eq!(missing(Bump::Major, "1.2.3", "2.0.0"), None);
        let line = missing(Bump::Major, "0.1.0", "0.1.0").unwrap_or_default();
        assert!(line.contains("at least 0.2.0"), "{line}");
        assert_eq!(line.lines().count(), 1);
        assert!(missing_bump(Bump::Major, "0.1", "0.2.0").is_err());
        assert!(missing_bump(Bump::Major, "0.1.0", "0.2.0.1").is_err());
    }

    #[test]
    fn workspace_version_is_read_from_the_manifest() {
        assert!(workspace_version(&crate::workspace_root()).is_some());
    }
}
