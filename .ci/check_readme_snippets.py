#!/usr/bin/env python3
"""Check that the README's Python and TypeScript snippets are the example files, verbatim.

The README introduces each snippet with "From " and a link to its file, e.g.
"From [`examples/python/validate.py`](examples/python/validate.py) …"; the first fenced
block after that must equal the file. Exit status 1 naming the file on a difference.
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SNIPPETS = ["examples/python/validate.py", "examples/typescript/validate.ts"]


def snippet_after(readme: str, path: str) -> str | None:
    start = readme.find(f"From [`{path}`]({path})")
    if start < 0:
        return None
    fence = readme.find("\n```", start)
    body_start = readme.find("\n", fence + 1) + 1
    end = readme.find("\n```\n", body_start)
    if fence < 0 or end < 0:
        return None
    return readme[body_start : end + 1]


def main() -> int:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    failed = 0
    for path in SNIPPETS:
        expected = (ROOT / path).read_text(encoding="utf-8")
        found = snippet_after(readme, path)
        if found != expected:
            print(f"README.md: the snippet after the link to {path} differs from the file; copy the file into it", file=sys.stderr)
            failed += 1
        else:
            print(f"README.md snippet == {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
