#!/usr/bin/env python3
"""Checks that docs/performance.md labels every figure with its configuration (issue 23).

Every table of figures (a markdown table with a numeric column such as req/s or events/s)
must have, between the heading it stands under and itself, the name of a configuration in
bold: **defaults**, **lean**, **local** or **peer** (the page defines them at the top). The
first table that compares the service with the peer must show the defaults: they come first.
Table rows may also name the configuration, in their first cell (`| defaults | ...`) or in
bold in each row.

Usage: python3 scripts/check-docs.py [ROOT]. Prints one line per problem; exits 1 if any.
"""

import re
import sys
from pathlib import Path

CONFIGURATIONS = ("defaults", "lean", "local", "peer")
FIGURES = re.compile(r"req/s|events/s|µs|requests \(exchanges\)|cases/s")


def tables(lines):
    """(start line index, header line) of each markdown table."""
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-:| ]+\|$", lines[i + 1]):
            yield i, lines[i]
            while i < len(lines) and lines[i].startswith("|"):
                i += 1
        else:
            i += 1


def check(text):
    lines = text.splitlines()
    problems = []
    first_peer_table = True
    for start, header in tables(lines):
        if not FIGURES.search(header):
            continue
        # The text this table stands under: back to the nearest heading.
        j = start - 1
        while j >= 0 and not lines[j].startswith("#"):
            j -= 1
        context = "\n".join(lines[j + 1 : start])
        rows = []
        k = start + 2
        while k < len(lines) and lines[k].startswith("|"):
            rows.append(lines[k])
            k += 1
        first_cells = {r.split("|")[1].strip() for r in rows}
        labelled = (
            any(f"**{c}**" in context for c in CONFIGURATIONS)
            or (first_cells and first_cells <= set(CONFIGURATIONS))
            or all(any(f"**{c}**" in r for c in CONFIGURATIONS) for r in rows)
        )
        if not labelled:
            problems.append(
                f"docs/performance.md:{start + 1}: a table of figures with no configuration "
                f"named (bold **defaults**, **lean**, **local** or **peer** above it)"
            )
        if "vs peer" in header and first_peer_table:
            first_peer_table = False
            if "defaults" not in first_cells:
                problems.append(
                    f"docs/performance.md:{start + 1}: the first comparison with the peer "
                    "does not show the defaults"
                )
    return problems


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    problems = check((root / "docs/performance.md").read_text())
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print("docs/performance.md: every table of figures names its configuration, defaults first")


if __name__ == "__main__":
    main()
