"""The package's layout: no import cycles, and function-level imports only for heavy
optional third-party packages (an AST scan of the source, nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "egress"

#: Third-party packages imported inside functions on purpose: each costs a worker
#: or ``egress --help`` noticeable start-up time, and most commands never need it
#: (``sumo`` is the eclipse-sumo wheel, not needed when SUMO_HOME is set).
HEAVY = {"scipy", "matplotlib", "sumolib", "distributed", "dask", "pyproj", "pyarrow",
         "sumo"}


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def _imports(name: str, path: Path, modules: dict[str, Path]):
    """(imported egress module, at module level?) and third-party function-level imports."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    local, foreign = [], []

    def visit(node, in_function: bool, in_type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            func = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            guard = in_type_checking or (isinstance(child, ast.If)
                                         and "TYPE_CHECKING" in ast.unparse(child.test))
            targets = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(name, is_package, child)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in child.names]
            for t in targets:
                if t.split(".")[0] == "egress":
                    if not guard:
                        local.append((t, func))
                elif func and not guard:
                    foreign.append(t)
            visit(child, func, guard)

    visit(tree, False, False)
    return local, foreign


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        local, _ = _imports(name, path, modules)
        graph[name] = {t for t, _ in local if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same graph between the stages (egress.<stage>), package faces left out:
    an __init__ only hands names on."""
    def stage(m: str) -> str:
        return ".".join(m.split(".")[:2])

    out: dict[str, set[str]] = {}
    for a, targets in graph.items():
        if a == "egress" or a.count(".") == 1 and (PACKAGE / a.split(".")[1]).is_dir():
            continue
        for b in targets:
            if stage(a) != stage(b) and b != "egress":
                out.setdefault(stage(a), set()).add(stage(b))
    return out


def test_no_module_imports_itself_round_a_circle():
    assert _cycles(_graph()) == []


def test_the_stages_are_layered():
    """No circle between the stages either (config, network, demand, engine, ...)."""
    assert _cycles(_package_graph(_graph())) == []


def test_function_level_imports_only_for_heavy_third_party_packages():
    modules = _modules()
    found = []
    for name, path in modules.items():
        local, foreign = _imports(name, path, modules)
        found += [f"{name}: {t}" for t, inside in local if inside]
        found += [f"{name}: {t}" for t in foreign if t.split(".")[0] not in HEAVY]
    assert found == []


def test_the_scanner_sees_a_cycle(tmp_path):
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
