"""The package's shape in numbers: import cycles, layer depth, long modules and functions.

    python scripts/architecture.py          # a summary
    python scripts/architecture.py --list   # and every module, function and cycle over the line

Imports are read statically (any `import`/`from` of a generator module anywhere in a module,
including inside functions, counts as an edge); `from generator.x import y` where y is itself a
module counts as an edge to generator.x.y.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "generator"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
# The provider floor: these may import nothing of the domain (only each other and errors).
FLOOR = "generator.backends"
FLOOR_MAY_IMPORT = ("generator.backends", "generator.errors")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    edges: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("generator"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    edges.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            edges.update(a.name for a in node.names if a.name.startswith("generator"))
    return {e for e in edges if e in known}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return found


def depth(graph: dict[str, set[str]]) -> int:
    """Layers in the longest import chain (cycles collapsed to one layer)."""
    memo: dict[str, int] = {}

    def d(v: str, seen: frozenset[str]) -> int:
        if v in memo:
            return memo[v]
        nexts = [w for w in graph[v] if w not in seen and w != v]
        value = 1 + max((d(w, seen | {w}) for w in nexts), default=0)
        memo[v] = value
        return value

    return max(d(v, frozenset({v})) for v in graph)


def long_functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                out.append((f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name}", length))
    return out


def main() -> int:
    mods = modules()
    graph = {name: imports(path, set(mods)) - {name} for name, path in mods.items()}
    loops = cycles(graph)
    floor = sorted(
        f"{m} -> {e}"
        for m, deps in graph.items()
        if m.startswith(FLOOR)
        for e in deps
        if not e.startswith(FLOOR_MAY_IMPORT)
    )
    lines = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in mods.items()}
    big = sorted(((m, n) for m, n in lines.items() if n > MAX_MODULE_LINES), key=lambda x: -x[1])
    functions = sorted((f for p in mods.values() for f in long_functions(p)), key=lambda x: -x[1])
    print(f"modules: {len(mods)}, lines: {sum(lines.values())}")
    print(f"import cycles: {len(loops)} ({sum(len(c) for c in loops)} modules in them)")
    print(f"longest import chain: {depth(graph)} layers")
    print(f"provider floor imports from the domain: {len(floor)}")
    print(f"modules over {MAX_MODULE_LINES} lines: {len(big)}")
    print(f"functions over {MAX_FUNCTION_LINES} lines: {len(functions)}")
    if "--list" in sys.argv:
        for loop in loops:
            print("  cycle:", " <-> ".join(loop))
        for edge in floor:
            print("  floor:", edge)
        for m, n in big:
            print(f"  module: {m} {n}")
        for f, n in functions:
            print(f"  function: {f} {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
