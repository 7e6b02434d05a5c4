#!/usr/bin/env python3
"""Writes the OpenAPI document that schemathesis tests the sandbox with.

It is openapi/protime-api.json with two changes, both about what a JSON Schema can say, not
about what the API accepts:

- every `x-pattern` becomes a JSON Schema `pattern` (the spec keeps the syntax of
  `externalReferences` in `x-pattern` only because the Rust generator would otherwise emit a
  validated newtype; schemathesis should generate only values of that syntax);
- the optional, server-issued paging and delta tokens of `GET /clockings`
  (`continuationToken`, `deltaToken`) are dropped: a client only ever sends back what a
  `nextLink` or `deltaLink` gave it, and a made-up one is refused (400/410), as documented.
  The required `deltaToken` of `GET /delta/clockings` stays; schemathesis.toml expects 400
  or 410 for made-up tokens there.

Usage: derive_spec.py SPEC OUT
"""
import json
import sys

SERVER_ISSUED = {("/connector/protimeapi/api/v1/clockings", "get"): {"continuationToken", "deltaToken"}}


def patterns(node):
    if isinstance(node, dict):
        if "x-pattern" in node:
            node["pattern"] = node["x-pattern"]
        for value in node.values():
            patterns(value)
    elif isinstance(node, list):
        for value in node:
            patterns(value)


def main():
    spec_path, out_path = sys.argv[1], sys.argv[2]
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    for (path, method), names in SERVER_ISSUED.items():
        operation = spec["paths"][path][method]
        before = len(operation["parameters"])
        operation["parameters"] = [p for p in operation["parameters"] if p.get("name") not in names]
        assert before - len(operation["parameters"]) == len(names), (path, method, names)
    patterns(spec)
    # A parameter's x-pattern sits beside its schema: move it into the schema.
    for item in spec["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict):
                for parameter in operation.get("parameters", []):
                    if "pattern" in parameter and "schema" in parameter:
                        parameter["schema"]["pattern"] = parameter.pop("pattern")
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=1)


if __name__ == "__main__":
    main()
