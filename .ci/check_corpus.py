#!/usr/bin/env python3
"""Check the clocking-change fixture corpus against the JSON Schema (and Rust).

Usage:
    python3 .ci/check_corpus.py --schema schemas/clocking-change.schema.json \
        --corpus tests/fixtures/clocking-changes [--rust-verdicts FILE]

Every file under ``<corpus>/valid/`` and ``<corpus>/invalid/`` is one webhook
POST body. The directory is the expected verdict. For each file:

1. the bytes are parsed as JSON (strict UTF-8, no BOM, no NaN/Infinity
   literals, no lone surrogates: what serde_json rejects); a parse failure
   means "invalid";
2. the parsed value is validated with ``Draft202012Validator`` and its
   format checker (so ``format: date`` is enforced);
3. the Python verdict is compared with the directory label and, when
   ``--rust-verdicts`` is given, with Rust's verdict.

The Rust verdict file is a JSON object mapping a path relative to the corpus
directory (with ``/``) to a boolean, true meaning Rust accepted the body:
``{"valid/inout-minimal.json": true, "invalid/R1-truncated.json": false}``.

Output: one line per disagreement, then the final line ``N passed, M failed``.
N counts corpus files whose verdicts all agree; M counts corpus files that
disagree (or have no Rust verdict) plus Rust verdict keys naming files that do
not exist. Exit status: 0 if everything agrees, 1 on any disagreement or if
the corpus has fewer than MIN_FILES files, 2 on a usage or setup error.

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

MIN_FILES = 40
LABELS = ("valid", "invalid")


class ParseError(Exception):
    """The body is not JSON as serde_json understands it."""


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN, Infinity and -Infinity by default; JSON does not.
    raise ParseError(f"non-JSON literal {name}")


def _check_strings(value: Any) -> None:
    """Reject lone surrogates (e.g. "\\ud800"), which serde_json refuses."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ParseError(f"lone surrogate in string: {exc.reason}") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def parse_body(raw: bytes) -> Any:
    """Parse one delivery body roughly the way serde_json::from_slice does."""
    try:
        text = raw.decode("utf-8")  # strict; a BOM survives and is rejected below
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8: {exc}") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ParseError(f"JSON syntax: {exc}") from None
    except RecursionError:
        raise ParseError("JSON nesting too deep") from None
    _check_strings(value)
    return value


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


def collect_files(corpus: pathlib.Path) -> list[tuple[str, pathlib.Path, bool]]:
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
                files.append((key, path, label == "valid"))
    files.sort(key=lambda item: item[0])
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schema", required=True, type=pathlib.Path, help="JSON Schema (draft 2020-12)")
    parser.add_argument("--corpus", required=True, type=pathlib.Path, help="directory holding valid/ and invalid/")
    parser.add_argument("--rust-verdicts", type=pathlib.Path, help="JSON object: corpus-relative path -> bool (true = Rust accepted)")
    args = parser.parse_args(argv)

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

    files = collect_files(args.corpus)
    passed = failed = 0

    for key, path, expected in files:
        try:
            body = parse_body(path.read_bytes())
        except ParseError as exc:
            python_ok, message = False, str(exc)
        else:
            error = best_match(validator.iter_errors(body))
            python_ok = error is None
            message = "-" if error is None else f"{error.json_path}: {error.message}"

        rust_ok = None if rust is None else rust.get(key)
        agrees = python_ok == expected and (rust is None or rust_ok == python_ok)
        if agrees:
            passed += 1
            continue
        failed += 1
        rust_word = "n/a" if rust is None else verdict_word(rust_ok)
        print(
            f"FAIL {key}: python={verdict_word(python_ok)} expected={verdict_word(expected)} "
            f"rust={rust_word} first-error={one_line(message)}"
        )

    if rust is not None:
        known = {key for key, _, _ in files}
        for key in sorted(set(rust) - known):
            failed += 1
            print(f"FAIL {key}: listed in Rust verdicts ({verdict_word(rust[key])}) but no such corpus file")

    too_few = len(files) < MIN_FILES
    if too_few:
        print(f"FAIL corpus: only {len(files)} files, at least {MIN_FILES} required")

    print(f"{passed} passed, {failed} failed")
    return 1 if failed or too_few else 0


if __name__ == "__main__":
    sys.exit(main())
