#!/usr/bin/env python3
"""Fails when the modules under src/ import each other in a circle, or a file is too long.

Each .rs file is a module. An edge A -> B is any `crate::...` or `super::...` path in A's
non-test code (before its first `#[cfg(test)]`) that names B, resolved to the deepest module
file it reaches. Parent modules declaring children (`mod x;`) are not edges. Prints every
cycle found and every file over the line limit; exit 1 if any.
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
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


def main():
    mods = {module_of(f): f for f in files()}
    edges = {m: set() for m in mods}
    long_files = []
    path_re = re.compile(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)")
    for m, f in mods.items():
        text = open(f, encoding="utf-8").read()
        lines = text.count("\n") + 1
        if lines > MAX_LINES:
            long_files.append((os.path.relpath(f, SRC), lines))
        code = text.split("#[cfg(test)]", 1)[0]
        is_dir_mod = f.endswith("mod.rs") or f.endswith("lib.rs")
        for root, rest in path_re.findall(code):
            parts = [p for p in rest.split("::") if p]
            if root == "crate":
                base = ()
            else:
                # `super` of a mod.rs is its parent's parent directory module.
                base = m[:-1] if not is_dir_mod else m[:-1]
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
    cycles = find_cycles(edges)
    for c in cycles:
        print("cycle: " + " -> ".join("::".join(x) or "crate" for x in c))
    for f, n in long_files:
        print(f"too long: src/{f} has {n} lines (at most {MAX_LINES})")
    print(f"{len(mods)} modules, {sum(len(e) for e in edges.values())} imports, "
          f"{len(cycles)} cycles, {len(long_files)} files over {MAX_LINES} lines")
    return 1 if cycles or long_files else 0


def find_cycles(edges):
    """One representative cycle per strongly connected component with more than one node."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
                out.append(path_in(comp, edges))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def path_in(comp, edges):
    """A concrete cycle through the component's first node."""
    members = set(comp)
    start = sorted(comp)[0]
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges[v]):
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
