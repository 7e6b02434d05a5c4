"""Validate Protime clockings webhook bodies with the JSON Schema (draft 2020-12).

Usage: python3 examples/python/validate.py BODY.json...   (exit status 1 if one is invalid)
Needs: pip install 'jsonschema>=4.18'
"""

import json
import pathlib
import sys

from jsonschema import Draft202012Validator

SCHEMA = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "clocking-change.schema.json"
schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
# format_checker matters: without it `format: date` is only an annotation, and 2024-02-30 passes.
validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def refuse_repeated_keys(pairs: list) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears twice in one object")
    return dict(pairs)


def refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def violations(body: bytes) -> list[str]:
    """Every violation in one delivery body (the raw bytes of the POST); empty when valid.

    Rules no JSON Schema can express are checked while parsing: strict UTF-8, no repeated
    keys, no NaN/Infinity (Python's json accepts both). Not checked here: lone surrogate
    escapes, nesting beyond 127 levels, integers a 64-bit float rounds (docs/validation-rules.md).
    """
    try:
        text = body.decode("utf-8")
        delivery = json.loads(text, object_pairs_hook=refuse_repeated_keys, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError, JSONDecodeError are ValueErrors
        return [f"not JSON as Protime sends it: {error}"]
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(delivery)]


invalid = 0
for path in sys.argv[1:]:
    errors = violations(pathlib.Path(path).read_bytes())
    print(f"{path}: {'INVALID' if errors else 'valid'}")
    for error in errors:
        print(f"  {error}")
    invalid += bool(errors)
sys.exit(1 if invalid else 0)
