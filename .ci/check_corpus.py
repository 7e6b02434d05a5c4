#!/usr/bin/env python3
"""Check the clocking-change fixture corpus against the JSON Schema (and Rust).

Usage:
    python3 .ci/check_corpus.py --schema schemas/clocking-change.schema.json \
        --corpus tests/fixtures/clocking-changes [--profile documented|strict] \
        [--rust-verdicts FILE]

Every file under ``<corpus>/valid/``, ``<corpus>/invalid/`` and
``<corpus>/strict-only-invalid/`` is one webhook POST body. The directory and
the validation profile (docs/validation-rules.md) give the expected verdict:
``valid/`` is accepted under both profiles, ``invalid/`` refused under both,
``strict-only-invalid/`` accepted under ``documented`` (the default) and
refused under ``strict``. Pass the profile's own schema
(``clocking-change.schema.json`` for documented,
``clocking-change.strict.schema.json`` for strict) and Rust's verdicts under
the same profile. For each file:

1. the bytes are parsed as JSON as strictly as ``parse_delivery`` reads them
   (strict UTF-8, no BOM, no NaN/Infinity literals, no lone surrogates, at
   most 127 levels of nesting, no key twice in one object); a parse failure
   means "invalid", and its class is named (``utf8``, ``syntax``,
   ``lone_surrogate``, ``too_deep``, ``duplicate_key``): the schema never sees
   such a body, because a JSON Schema cannot express these rules;
2. the parsed value is validated with ``Draft202012Validator`` and its
   format checker (so ``format: date`` is enforced);
3. the Python verdict is compared with the directory label and, when
   ``--rust-verdicts`` is given, with Rust's verdict.

Two groups of rules (docs/validation-rules.md, "What a JSON Schema cannot
express") are checked by class, never silently:

- files of rules R25-R28 (``STRICT_PARSE_RULES``) must be refused by the
  strict parse with their rule's class;
- files of rule R29 (``RUST_ONLY_RULES``: integers judged on the exact
  literal, which a schema sees only as a 64-bit float) must be ACCEPTED by the
  schema and refused by Rust: they show what the schema cannot see, and count
  as agreeing. One that the schema refuses is a failure (it shows nothing).

The Rust verdict file is a JSON object mapping a path relative to the corpus
directory (with ``/``) to a boolean, true meaning Rust accepted the body:
``{"valid/inout-minimal.json": true, "invalid/R1-truncated.json": false}``.

Output: one line per disagreement, then the final line ``N passed, M failed``.
N counts corpus files whose verdicts all agree; M counts corpus files that
disagree (or have no Rust verdict) plus Rust verdict keys naming files that do
not exist. Exit status: 0 if everything agrees, 1 on any disagreement or if
the corpus has fewer than MIN_FILES files, 2 on a usage or setup error.

With ``--docs-examples tests/fixtures/docs-examples.json`` and
``--item-schema`` (the profile's clocking schema: ``clocking.schema.json`` or
``clocking.strict.schema.json``), the docs' listed clockings (its ``items``)
are checked too: they carry no ``changeVersion``, so the documented profile
and its schema accept them and the strict ones refuse them; Rust's verdicts
name them ``item:<file>``.

Only the standard library and ``jsonschema`` >= 4.18 are needed.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Any

try:
    import jsonschema
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match
except ImportError:  # pragma: no cover - environment problem
    print("error: the 'jsonschema' package (>= 4.18) is required: pip install 'jsonschema>=4.18'", file=sys.stderr)
    sys.exit(2)

MIN_FILES = 227
LABELS = ("valid", "invalid", "strict-only-invalid")
PROFILES = ("documented", "strict")
# serde_json's recursion limit: the body's object is level 1 (docs: R27).
MAX_DEPTH = 127

# Rules about the JSON text itself, with the class of the strict parse that
# must refuse their files.
STRICT_PARSE_RULES = {
    "R25": "utf8",
    "R26": "lone_surrogate",
    "R27": "too_deep",
    "R28": "duplicate_key",
}
# Rules only Rust can check: the schema accepts their files, Rust refuses them.
RUST_ONLY_RULES = {
    "R29": "integers judged on the exact literal; a schema sees a rounded 64-bit float",
}


class ParseError(Exception):
    """The body is not JSON as parse_delivery reads it; ``kind`` names the class."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN, Infinity and -Infinity by default; JSON does not.
    raise ParseError("syntax", f"non-JSON literal {name}")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads silently keeps the last of repeated keys; parse_delivery refuses them.
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ParseError("duplicate_key", f"key {key!r} appears more than once in one object")
        seen.add(key)
    return dict(pairs)


def _check_value(value: Any) -> None:
    """Reject lone surrogates (e.g. "\\ud800") and nesting deeper than MAX_DEPTH."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ParseError("lone_surrogate", f"lone surrogate in string: {exc.reason}") from None
        elif isinstance(item, (dict, list)):
            if depth + 1 > MAX_DEPTH:
                raise ParseError("too_deep", f"arrays and objects nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                stack.extend((key, depth + 1) for key in item.keys())
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def parse_body(raw: bytes) -> Any:
    """Parse one delivery body the way parse_delivery reads it, or raise ParseError."""
    try:
        text = raw.decode("utf-8")  # strict; a BOM survives and is rejected below
    except UnicodeDecodeError as exc:
        raise ParseError("utf8", f"not UTF-8: {exc}") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_refuse_duplicates)
    except json.JSONDecodeError as exc:
        raise ParseError("syntax", f"JSON syntax: {exc}") from None
    except RecursionError:
        raise ParseError("too_deep", "JSON nesting too deep for Python's parser") from None
    _check_value(value)
    return value


def rule_of(key: str) -> str:
    """The rule id a corpus file name starts with (``invalid/R28-x.json`` -> ``R28``)."""
    return key.rsplit("/", 1)[-1].split("-", 1)[0]


def verdict_word(accepted: bool | None) -> str:
    if accepted is None:
        return "missing"
    return "valid" if accepted else "invalid"


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_json_file(path: pathlib.Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"error: cannot read {what} {path}: {exc}", file=sys.stderr)
        sys.exit(2)


def expects_valid(label: str, profile: str) -> bool:
    """Whether a file under ``label`` must be accepted under ``profile``."""
    return label == "valid" or (label == "strict-only-invalid" and profile == "documented")


def collect_files(corpus: pathlib.Path, profile: str) -> list[tuple[str, pathlib.Path, bool]]:
    """Return (key, path, expected_valid) for every corpus file, sorted by key."""
    files = []
    for label in LABELS:
        directory = corpus / label
        if not directory.is_dir():
            print(f"error: missing corpus directory {directory}", file=sys.stderr)
            sys.exit(2)
        for path in directory.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(corpus).as_posix()
                files.append((key, path, expects_valid(label, profile)))
    files.sort(key=lambda item: item[0])
    return files


def check_items(
    manifest_path: pathlib.Path, schema_path: pathlib.Path, profile: str, rust: dict[str, bool] | None
) -> tuple[int, int, set[str]]:
    """Check the docs' listed clockings (the ``items`` of docs-examples.json).

    The docs' list and get examples carry no ``changeVersion``: the documented
    profile accepts them (the clocking is then unversioned and orders before
    every real version), the strict profile refuses them. Each item is parsed
    as strictly as a body, validated against the profile's clocking schema and
    compared with that expectation and with Rust's verdict (key
    ``item:<file>``). Returns (passed, failed, keys).
    """
    schema = load_json_file(schema_path, "item schema")
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        print(f"error: {schema_path} is not a valid draft 2020-12 schema: {one_line(exc.message)}", file=sys.stderr)
        sys.exit(2)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    manifest = load_json_file(manifest_path, "docs examples")
    items = manifest.get("items") if isinstance(manifest, dict) else None
    if not isinstance(items, list) or not items:
        print(f"error: {manifest_path} lists no items", file=sys.stderr)
        sys.exit(2)
    expected = profile == "documented"
    passed = failed = 0
    keys: set[str] = set()
    for entry in items:
        file = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(file, str):
            print(f"error: an item of {manifest_path} names no file", file=sys.stderr)
            sys.exit(2)
        key = f"item:{file}"
        keys.add(key)
        path = manifest_path.parent / file
        try:
            item = parse_body(path.read_bytes())
        except OSError as exc:
            print(f"error: cannot read {path}: {exc}", file=sys.stderr)
            sys.exit(2)
        except ParseError as exc:
            python_ok, message = False, str(exc)
        else:
            error = best_match(validator.iter_errors(item))
            python_ok = error is None
            message = "-" if error is None else f"{error.json_path}: {error.message}"
        rust_ok = None if rust is None else rust.get(key)
        if python_ok == expected and (rust is None or rust_ok == python_ok):
            passed += 1
            continue
        failed += 1
        rust_word = "n/a" if rust is None else verdict_word(rust_ok)
        print(
            f"FAIL {key}: python={verdict_word(python_ok)} expected={verdict_word(expected)} "
            f"rust={rust_word} first-error={one_line(message)}"
        )
    return passed, failed, keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schema", required=True, type=pathlib.Path, help="JSON Schema (draft 2020-12)")
    parser.add_argument("--corpus", required=True, type=pathlib.Path, help="directory holding valid/, invalid/ and strict-only-invalid/")
    parser.add_argument("--profile", choices=PROFILES, default="documented", help="validation profile the schema and the Rust verdicts belong to (default: documented)")
    parser.add_argument("--rust-verdicts", type=pathlib.Path, help="JSON object: corpus-relative path -> bool (true = Rust accepted)")
    parser.add_argument("--docs-examples", type=pathlib.Path, help="tests/fixtures/docs-examples.json: its listed items are checked too (with --item-schema)")
    parser.add_argument("--item-schema", type=pathlib.Path, help="the profile's clocking schema (clocking.schema.json or clocking.strict.schema.json), for the listed items")
    args = parser.parse_args(argv)
    if (args.docs_examples is None) != (args.item_schema is None):
        print("error: --docs-examples and --item-schema go together", file=sys.stderr)
        return 2

    schema = load_json_file(args.schema, "schema")
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        print(f"error: {args.schema} is not a valid draft 2020-12 schema: {one_line(exc.message)}", file=sys.stderr)
        return 2
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)

    rust: dict[str, bool] | None = None
    if args.rust_verdicts is not None:
        loaded = load_json_file(args.rust_verdicts, "Rust verdicts")
        if not isinstance(loaded, dict) or not all(isinstance(v, bool) for v in loaded.values()):
            print(f"error: {args.rust_verdicts} must be a JSON object of booleans", file=sys.stderr)
            return 2
        rust = loaded

    files = collect_files(args.corpus, args.profile)
    passed = failed = 0
    by_parse: dict[str, int] = {}
    rust_only: dict[str, int] = {}

    for key, path, expected in files:
        rule = rule_of(key)
        parse_class = None
        try:
            body = parse_body(path.read_bytes())
        except ParseError as exc:
            python_ok, message, parse_class = False, str(exc), exc.kind
            by_parse[parse_class] = by_parse.get(parse_class, 0) + 1
        else:
            error = best_match(validator.iter_errors(body))
            python_ok = error is None
            message = "-" if error is None else f"{error.json_path}: {error.message}"

        rust_ok = None if rust is None else rust.get(key)
        problem = None
        if not expected and rule in STRICT_PARSE_RULES and parse_class != STRICT_PARSE_RULES[rule]:
            problem = f"rule {rule} must be refused by the strict parse as {STRICT_PARSE_RULES[rule]}"
        elif not expected and rule in RUST_ONLY_RULES:
            # The schema accepts what it cannot see; Rust refuses it.
            if not python_ok:
                problem = f"rule {rule} is Rust-only, but the schema refuses this file too (it shows nothing)"
            elif rust is not None and rust_ok is not False:
                problem = f"rule {rule}: Rust must refuse this file"
            else:
                rust_only[rule] = rust_only.get(rule, 0) + 1
                passed += 1
                continue
        agrees = problem is None and python_ok == expected and (rust is None or rust_ok == python_ok)
        if agrees:
            passed += 1
            continue
        failed += 1
        rust_word = "n/a" if rust is None else verdict_word(rust_ok)
        print(
            f"FAIL {key}: python={verdict_word(python_ok)} expected={verdict_word(expected)} "
            f"rust={rust_word} first-error={one_line(message)}"
            + (f" ({problem})" if problem else "")
        )

    if by_parse:
        counts = ", ".join(f"{kind} {n}" for kind, n in sorted(by_parse.items()))
        print(f"refused by the strict parse, never shown to the schema (a JSON Schema cannot express these): {counts}")
    if rust_only:
        counts = ", ".join(f"{rule} {n} ({RUST_ONLY_RULES[rule]})" for rule, n in sorted(rust_only.items()))
        print(f"accepted by the schema and refused by Rust alone, as documented: {counts}")

    item_keys: set[str] = set()
    if args.docs_examples is not None:
        item_passed, item_failed, item_keys = check_items(args.docs_examples, args.item_schema, args.profile, rust)
        passed += item_passed
        failed += item_failed

    if rust is not None:
        known = {key for key, _, _ in files} | item_keys
        for key in sorted(set(rust) - known):
            failed += 1
            print(f"FAIL {key}: listed in Rust verdicts ({verdict_word(rust[key])}) but no such corpus file")

    too_few = len(files) < MIN_FILES
    if too_few:
        print(f"FAIL corpus: only {len(files)} files, at least {MIN_FILES} required")

    print(f"{passed} passed, {failed} failed (profile {args.profile}, schema {args.schema})")
    return 1 if failed or too_few else 0


if __name__ == "__main__":
    sys.exit(main())
