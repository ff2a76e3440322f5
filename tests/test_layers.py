"""The package's layering, read from the source (AST): no import cycle, no upward import, and imports
inside functions only where they defer an optional or heavy dependency, each with its reason.

Layers, lowest first (a module may import its own layer and the ones below)::

    base   errors, config, registry, types, paths, presets, latents
    io     io/
    core   models/, samplers/, metrics/, data/
    tasks  training/, evaluation/, studio/, studies/
    api    api.py
    cli    cli/
"""

from __future__ import annotations

import ast
from pathlib import Path

import latentstudio

ROOT = Path(latentstudio.__file__).parent
PKG = "latentstudio"
LAYERS = {
    "errors": 0, "config": 0, "registry": 0, "types": 0, "paths": 0, "presets": 0, "latents": 0,
    "io": 1,
    "models": 2, "samplers": 2, "metrics": 2, "data": 2,
    "training": 3, "evaluation": 3, "studio": 3, "studies": 3,
    "api": 4,
    "cli": 5,
}
#: Same-layer edges that are not allowed either (evaluation is what training calls, never the reverse;
#: metrics work on tensors and never see a model class; data knows nothing of models).
FORBIDDEN = {("evaluation", "training"), ("metrics", "models"), ("metrics", "samplers"), ("data", "models"),
             ("data", "samplers"), ("data", "metrics")}


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path):
    """``(target module, line, inside a function)`` of every import of the package in ``module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside |= {id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)}
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [f"{mod}.{a.name}" for a in node.names] if mod.split(".")[0] == PKG else [mod]
        for name in names:
            if name.split(".")[0] == PKG:
                target = _resolve(name)
                if target and target != module:
                    yield target, node.lineno, id(node) in inside


def _layer(module: str) -> tuple[str, int] | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the package's lazy re-exports
    return parts[1], LAYERS[parts[1]]


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _ in _imports(m, p)} for m, p in MODULES.items()}


def test_every_module_has_a_layer():
    unknown = sorted({m.split(".")[1] for m in MODULES if "." in m} - set(LAYERS))
    assert not unknown, f"give these top-level modules a layer in LAYERS: {unknown}"


def test_no_import_cycles():
    graph = _graph()
    cycles, state, stack = [], {}, []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles (imports inside functions count):\n" + "\n".join(cycles)


def test_no_upward_or_forbidden_imports():
    bad = []
    for m, p in MODULES.items():
        src = _layer(m)
        if src is None:
            continue
        for t, line, _ in _imports(m, p):
            dst = _layer(t)
            if dst is None:
                bad.append(f"{p.relative_to(ROOT.parent)}:{line}: {m} imports the package root")
            elif dst[1] > src[1] or (src[0], dst[0]) in FORBIDDEN:
                bad.append(f"{p.relative_to(ROOT.parent)}:{line}: {m} ({src[0]}) imports {t} ({dst[0]})")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_imports_inside_functions_say_why():
    """An import inside a function defers an optional or heavy dependency; its line says which."""
    bare = []
    for p in MODULES.values():
        lines = p.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for n in ast.walk(node):
                if isinstance(n, ast.Import | ast.ImportFrom):
                    text = " ".join(lines[n.lineno - 1 : (n.end_lineno or n.lineno)])
                    if "#" not in text:
                        bare.append(f"{p.relative_to(ROOT.parent)}:{n.lineno}: {lines[n.lineno - 1].strip()}")
    bare = sorted(set(bare))
    assert not bare, f"{len(bare)} imports inside functions without a reason comment:\n" + "\n".join(bare)
