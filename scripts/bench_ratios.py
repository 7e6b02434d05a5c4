#!/usr/bin/env python3
"""Print the ratios of a criterion benchmark group from the estimates of the last run.

Usage: python3 scripts/bench_ratios.py [GROUP]   (default: validation)
Reads target/criterion/<GROUP>/<bench>/new/estimates.json (median point estimates, in ns).
"""
import json
import pathlib
import sys

group = sys.argv[1] if len(sys.argv) > 1 else "validation"
root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion" / group
if not root.is_dir():
    sys.exit(f"no criterion results under {root}: run `cargo bench -p protime-tests` first")

medians = {}
for estimates in sorted(root.glob("*/new/estimates.json")):
    data = json.loads(estimates.read_text())
    medians[estimates.parent.parent.name] = data["median"]["point_estimate"]

for name, ns in medians.items():
    print(f"{name:28} {ns / 1000:10.3f} µs (median)")

def ratio(num, den, label, target):
    if num in medians and den in medians:
        r = medians[num] / medians[den]
        print(f"{label:28} {r:10.2f}   (target {target})")

if group == "validation":
    ratio("b_parse_delivery", "a_raw_serde", "b/a parse_delivery / raw", "<= 1.3")
    ratio("c_value_plus_jsonschema", "b_parse_delivery", "c/b jsonschema / parse", ">= 5")
