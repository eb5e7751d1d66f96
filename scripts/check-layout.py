#!/usr/bin/env python3
"""Checks that src/ keeps the shape docs/architecture.md describes (issue 25).

- The AWS SDK (`aws_sdk_*`, `aws_config`, `aws_credential_types`, `aws_smithy_*`,
  `aws_types`) is named only under src/backend/aws/.
- The src/ root holds lib.rs, main.rs, folders and at most three other files.
- No file is longer than 600 lines, no function longer than 80 (tests included: a long
  test is as hard to read as long code).
- No dependency circle between the rooms (the folders and files at the root of src/): a
  room names another with `crate::other`; `tests` modules are left out.

Usage: python3 scripts/check-layout.py [ROOT] [--report]. Prints one line per problem and
exits 1 if any; --report prints the figures (longest files and functions, the room graph)
whatever they are.
"""

import re
import sys
from collections import defaultdict
from pathlib import Path

MAX_FILE_LINES = 600
MAX_FN_LINES = 80
MAX_ROOT_FILES = 3
SDK = re.compile(r"\b(aws_sdk_\w+|aws_config|aws_credential_types|aws_smithy_\w+|aws_types)::")


def strip(text):
    """The source with comments, strings and char literals blanked (newlines kept), so
    that braces and names are counted only in code."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not re.match(r"\w", text[i - 1:i] or " "):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = '"' + hashes
            j = text.find(end, i + 2 + len(hashes))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{7f}', '{'), not a lifetime ('a without a close).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:i + 12])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


FN = re.compile(r"\bfn\s+(\w+)")


def functions(code):
    """(name, first line, line count) of each function with a body."""
    found = []
    for m in FN.finditer(code):
        # The body opens at the first `{` after the signature, unless a `;` comes first
        # (a trait method without a body).
        j = m.end()
        depth_paren = 0
        while j < len(code):
            ch = code[j]
            if ch in "(<[":
                depth_paren += 1
            elif ch in ")>]":
                depth_paren -= 1
            elif ch == ";" and depth_paren <= 0:
                j = -1
                break
            elif ch == "{" and depth_paren <= 0:
                break
            j += 1
        if j < 0 or j >= len(code):
            continue
        depth, k = 0, j
        while k < len(code):
            if code[k] == "{":
                depth += 1
            elif code[k] == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        first = code.count("\n", 0, m.start()) + 1
        last = code.count("\n", 0, k) + 1
        found.append((m.group(1), first, last - first + 1))
    return found


def room_of(path, src):
    rel = path.relative_to(src)
    return rel.parts[0].removesuffix(".rs")


def is_test_file(path):
    return "tests" in path.parts or path.name in ("tests.rs", "test_support.rs")


def cycles(graph):
    """Each circle once, as a list of rooms."""
    found, seen = [], set()

    def visit(node, stack, on_stack):
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_stack:
                cycle = stack[stack.index(nxt):]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append(cycle + [nxt])
            elif nxt not in done:
                on_stack.add(nxt)
                visit(nxt, stack + [nxt], on_stack)
                on_stack.discard(nxt)
        done.add(node)

    done = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [start], {start})
    return found


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    report = "--report" in sys.argv
    root = Path(args[0]) if args else Path(__file__).resolve().parent.parent
    src = root / "src"
    problems = []
    root_files = sorted(p.name for p in src.iterdir() if p.is_file() and p.suffix == ".rs")
    extra = [f for f in root_files if f not in ("lib.rs", "main.rs")]
    if len(extra) > MAX_ROOT_FILES:
        problems.append(f"src/ holds {len(extra)} files besides lib.rs and main.rs (at most {MAX_ROOT_FILES}): {', '.join(extra)}")
    graph = defaultdict(set)
    long_files, long_fns = [], []
    for path in sorted(src.rglob("*.rs")):
        text = path.read_text()
        rel = path.relative_to(root)
        lines = text.count("\n")
        long_files.append((lines, str(rel)))
        if lines > MAX_FILE_LINES:
            problems.append(f"{rel}: {lines} lines (at most {MAX_FILE_LINES})")
        code = strip(text)
        if not str(rel).startswith("src/backend/aws/"):
            for i, line in enumerate(code.splitlines(), 1):
                m = SDK.search(line)
                if m:
                    problems.append(f"{rel}:{i}: the AWS SDK ({m.group(1)}) outside src/backend/aws/")
        for name, first, count in functions(code):
            long_fns.append((count, f"{rel}:{first} {name}"))
            if count > MAX_FN_LINES:
                problems.append(f"{rel}:{first}: fn {name} is {count} lines (at most {MAX_FN_LINES})")
        if path.name not in ("lib.rs", "main.rs") and not is_test_file(path):
            room = room_of(path, src)
            # Only code outside `#[cfg(test)] mod tests { ... }` counts.
            body = code
            t = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", body)
            if t:
                body = body[:t.start()]
            for other in re.findall(r"\bcrate::(\w+)", body):
                if other != room:
                    graph[room].add(other)
    for cycle in cycles(graph):
        problems.append("dependency circle: " + " -> ".join(cycle))
    if report:
        print("longest files:", *[f"  {n} {p}" for n, p in sorted(long_files)[-8:]], sep="\n")
        print("longest functions:", *[f"  {n} {p}" for n, p in sorted(long_fns)[-12:]], sep="\n")
        print("rooms:", *[f"  {r} -> {', '.join(sorted(d))}" for r, d in sorted(graph.items())], sep="\n")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layout problem(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
