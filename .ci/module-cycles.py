#!/usr/bin/env python3
"""Fails when modules under src/ import each other in a circle, or a file is too long.

Each .rs file is a module. An edge A -> B is any path in A's non-test code that names B:
`crate::…`, `super::…`, and the leaves of grouped imports (`use crate::{a, b::{c, d}}`),
resolved to the deepest module file it reaches. Only `#[cfg(test)]` items are dropped (the
item after the attribute: a `mod x;`, a `mod x { … }` block, a `use`, a `fn`), never the rest
of the file. Two levels are checked: files (`guard::check` -> `proxy::headers`) and top-level
modules (`guard` -> `proxy`), where an import between two files of one top-level module is
no edge. Parents declaring children (`mod x;`) are not edges. Prints every cycle and every
file over the line limit; exit 1 if any. `MODULE_CYCLES_ALL=1` prints every member of each
knot instead of one path through it; `MODULE_CYCLES_SRC=dir` checks another tree.

Shown to fail before it is trusted: on 7360d92's tree it reports `guard -> proxy -> guard`
(files) and a knot of 14 top-level modules (the checker it replaced read 0 cycles there).
"""
import os
import re
import sys

SRC = os.environ.get("MODULE_CYCLES_SRC") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "src")
MAX_LINES = 400


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        return ()
    return tuple(rel)


def files():
    for root, _, names in os.walk(SRC):
        for n in names:
            if n.endswith(".rs"):
                yield os.path.join(root, n)


def strip_comments_and_strings(text):
    """Blanks out comments, string and char literals (keeping newlines), so braces and
    paths inside them are not read as code."""
    out, i, n = [], 0, len(text)
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
        elif c == "r" and re.match(r'r(#*)"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i:j + 1]))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]) or (c == "'" and text.startswith("'\\", i)):
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'])'", text[i:])
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


def drop_test_items(code):
    """Removes each item that follows a `#[cfg(test)]` attribute."""
    out, i = [], 0
    while True:
        j = code.find("#[cfg(test)]", i)
        if j < 0:
            out.append(code[i:])
            return "".join(out)
        out.append(code[i:j])
        k = j + len("#[cfg(test)]")
        # Skip further attributes, then the item: up to its `;` or its balanced `{ … }`.
        while True:
            m = re.match(r"\s*#\[[^\]]*\]", code[k:])
            if not m:
                break
            k += m.end()
        depth = 0
        while k < len(code):
            ch = code[k]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    k += 1
                    break
            elif ch == ";" and depth == 0:
                k += 1
                break
            k += 1
        i = k


def expand(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e'] (`self` is the prefix itself)."""
    tree = re.sub(r"\s+", "", tree)
    m = tree.find("{")
    if m < 0:
        return [tree]
    prefix, inner = tree[:m], tree[m + 1:-1]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    if cur:
        parts.append(cur)
    out = []
    for p in parts:
        p = p.split(" as ")[0]
        if p in ("self", ""):
            out.append(prefix.rstrip(":"))
        else:
            out.extend(prefix + q for q in expand(p))
    return out


PATH_RE = re.compile(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)")
USE_RE = re.compile(r"\buse\s+((?:crate|super)(?:::(?:super|[a-z_][a-z0-9_]*))*::\{[^;]*\})\s*;")


def paths_in(code):
    for tree in USE_RE.findall(code):
        for p in expand(tree):
            p = p.replace("r#", "")
            root, _, rest = p.partition("::")
            yield root, "::" + rest if rest else ""
    for root, rest in PATH_RE.findall(code):
        yield root, rest


def main():
    mods = {module_of(f): f for f in files()}
    edges = {m: set() for m in mods}
    long_files = []
    for m, f in mods.items():
        text = open(f, encoding="utf-8").read()
        lines = text.count("\n") + 1
        if lines > MAX_LINES:
            long_files.append((os.path.relpath(f, SRC), lines))
        code = drop_test_items(strip_comments_and_strings(text))
        for root, rest in paths_in(code):
            parts = [p for p in rest.split("::") if p]
            if root == "crate":
                base = ()
            else:
                base = m[:-1]
                while parts and parts[0] == "super":
                    base = base[:-1]
                    parts = parts[1:]
            target = None
            for k in range(len(parts), -1, -1):
                cand = base + tuple(parts[:k])
                if cand in mods:
                    target = cand
                    break
            # A path into one's own descendants is a parent using its child: never a cycle.
            if target is not None and target != m and target[: len(m)] != m:
                edges[m].add(target)
    top = {}
    for m, targets in edges.items():
        for t in targets:
            if m and t and m[0] != t[0]:
                top.setdefault(m[:1], set()).add(t[:1])
    for m in mods:
        if m:
            top.setdefault(m[:1], set())
    file_cycles = find_cycles(edges)
    top_cycles = find_cycles(top)
    for c in file_cycles:
        print("file cycle: " + " -> ".join("::".join(x) or "crate" for x in c))
    for c in top_cycles:
        print("module cycle: " + " -> ".join("::".join(x) for x in c))
    for f, n in long_files:
        print(f"too long: src/{f} has {n} lines (at most {MAX_LINES})")
    print(f"{len(mods)} files, {sum(len(e) for e in edges.values())} imports, "
          f"{len(file_cycles)} file cycles, {len(top)} top-level modules, "
          f"{len(top_cycles)} module cycles, {len(long_files)} files over {MAX_LINES} lines")
    return 1 if file_cycles or top_cycles or long_files else 0


def find_cycles(edges):
    """One representative cycle per strongly connected component with more than one node."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append((path_in(comp, edges), sorted(comp)))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return [c for c, _ in out] if not os.environ.get("MODULE_CYCLES_ALL") else [m for _, m in out]


def path_in(comp, edges):
    """A concrete cycle through the component's first node."""
    members = set(comp)
    start = sorted(comp)[0]
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges.get(v, ())):
            if w == start:
                cyc = [v]
                while prev[cyc[-1]] is not None:
                    cyc.append(prev[cyc[-1]])
                return list(reversed(cyc)) + [start]
            if w in members and w not in prev:
                prev[w] = v
                queue.append(w)
    return sorted(comp)


if __name__ == "__main__":
    sys.exit(main())
