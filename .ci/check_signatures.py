#!/usr/bin/env python3
"""Recompute every HMAC signature test vector independently of the Rust code.

Usage: python3 .ci/check_signatures.py tests/fixtures/signatures.json

Each vector names a key, a body and a signature scheme (see
crates/protime-webhooks/src/signature/sign.rs). This script rebuilds the headers a sender would set
using only Python's standard library (hmac, hashlib, base64) and compares them with the
vector's "expected" headers, exactly (header names and values).

Prints one line per failing vector, then "N passed, M failed" as the last line. Exits 1 on any
failure or when the file holds fewer than MIN_VECTORS vectors, 2 on a usage error.
"""

import base64
import binascii
import hashlib
import hmac
import json
import sys

MIN_VECTORS = 12
VECTOR_FIELDS = {"name", "key", "key_encoding", "body", "body_base64", "scheme", "expected"}
SCHEME_FIELDS = {"header", "encoding", "prefix", "content", "timestamp_header", "timestamp"}


class BadVector(Exception):
    """The vector itself is malformed (not a signature mismatch)."""


def b64decode_strict(text, what):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadVector(f"{what} is not valid base64: {error}") from None


def expected_headers(vector):
    """The headers a sender would set for this vector, computed from scratch."""
    if not isinstance(vector, dict):
        raise BadVector("vector is not a JSON object")
    unknown = set(vector) - VECTOR_FIELDS
    if unknown:
        raise BadVector(f"unknown fields {sorted(unknown)}")
    key = vector.get("key")
    if not isinstance(key, str) or not key:
        raise BadVector("key must be a non-empty string")
    key_encoding = vector.get("key_encoding")
    if key_encoding == "utf8":
        key_bytes = key.encode("utf-8")
    elif key_encoding == "base64":
        key_bytes = b64decode_strict(key, "key")
    else:
        raise BadVector(f"key_encoding must be utf8 or base64, not {key_encoding!r}")

    if ("body" in vector) == ("body_base64" in vector):
        raise BadVector("exactly one of body and body_base64 is required")
    if "body" in vector:
        if not isinstance(vector["body"], str):
            raise BadVector("body must be a string")
        body = vector["body"].encode("utf-8")
    else:
        body = b64decode_strict(vector["body_base64"], "body_base64")

    scheme = vector.get("scheme")
    if not isinstance(scheme, dict):
        raise BadVector("scheme must be an object")
    unknown = set(scheme) - SCHEME_FIELDS
    if unknown:
        raise BadVector(f"unknown scheme fields {sorted(unknown)}")
    header = scheme.get("header")
    if not isinstance(header, str) or not header or header != header.lower():
        raise BadVector("scheme.header must be a non-empty lower-case string")
    prefix = scheme.get("prefix")
    if prefix is not None and not isinstance(prefix, str):
        raise BadVector("scheme.prefix must be null or a string")

    content = scheme.get("content")
    headers = {}
    if content == "body":
        if "timestamp_header" in scheme or "timestamp" in scheme:
            raise BadVector("timestamp fields are only for content timestamp_and_body")
        message = body
    elif content == "timestamp_and_body":
        timestamp_header = scheme.get("timestamp_header")
        timestamp = scheme.get("timestamp")
        if not isinstance(timestamp_header, str) or not timestamp_header:
            raise BadVector("scheme.timestamp_header is required")
        if type(timestamp) is not int or timestamp < 0:
            raise BadVector("scheme.timestamp must be a non-negative integer")
        if timestamp_header == header:
            raise BadVector("timestamp_header equals header")
        message = str(timestamp).encode("ascii") + b"." + body
        headers[timestamp_header] = str(timestamp)
    else:
        raise BadVector(f"scheme.content must be body or timestamp_and_body, not {content!r}")

    digest = hmac.new(key_bytes, message, hashlib.sha256).digest()
    encoding = scheme.get("encoding")
    if encoding == "hex":
        encoded = digest.hex()
    elif encoding == "base64":
        encoded = base64.b64encode(digest).decode("ascii")
    else:
        raise BadVector(f"scheme.encoding must be hex or base64, not {encoding!r}")
    headers[header] = (prefix or "") + encoded
    return headers


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} tests/fixtures/signatures.json", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as file:
            vectors = json.load(file)
    except (OSError, ValueError) as error:
        print(f"cannot read {argv[1]}: {error}")
        print("0 passed, 1 failed")
        return 1
    if not isinstance(vectors, list):
        print(f"{argv[1]}: top level must be a JSON array")
        print("0 passed, 1 failed")
        return 1

    passed = failed = 0
    names = set()
    for index, vector in enumerate(vectors):
        name = vector.get("name") if isinstance(vector, dict) else None
        label = f"#{index} {name!r}"
        try:
            if not isinstance(name, str) or not name:
                raise BadVector("name must be a non-empty string")
            if name in names:
                raise BadVector("duplicate name")
            names.add(name)
            computed = expected_headers(vector)
            expected = vector.get("expected")
            if computed != expected:
                print(f"MISMATCH {label}: expected {expected!r}, computed {computed!r}")
                failed += 1
                continue
        except BadVector as error:
            print(f"BAD VECTOR {label}: {error}")
            failed += 1
            continue
        passed += 1

    too_few = len(vectors) < MIN_VECTORS
    if too_few:
        print(f"TOO FEW VECTORS: {len(vectors)}, at least {MIN_VECTORS} required")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or too_few else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
