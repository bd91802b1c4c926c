"""The house rules, checked on the source: private stays private, data flows one way.

* No module uses another module's underscore name (``from m import _x`` or
  ``m._x``). Private *modules* (``_rng``, ``_io``, ``_parts``) may be imported:
  what they offer to others carries a public name there.
* No import cycle among the package's modules, counting imports inside
  functions (a lazy import hides a cycle, it does not remove it).
* ``__all__`` only in modules a user imports (the face, the subpackages' faces and the
  modules the face names): not in private modules, not in implementation modules.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "asyncjax"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _resolve(node: ast.ImportFrom, here: str) -> str:
    if not node.level:
        return node.module or ""
    base = here.split(".") if _is_package(here) else here.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(name: str) -> list[tuple[str, str | None, int]]:
    """(module imported, name taken from it or None, line) for every import in a module."""
    tree = ast.parse(MODULES[name].read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(node, name)
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.append(
                    (sub, None, node.lineno) if sub in MODULES else (mod, a.name, node.lineno)
                )
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_module_uses_another_modules_underscore_names():
    offences = []
    for name, path in MODULES.items():
        for mod, attr, line in _imports(name):
            if attr is not None and _private(attr) and mod.startswith("asyncjax") and mod != name:
                offences.append(f"{path.relative_to(PKG.parent)}:{line} imports {attr} from {mod}")
        # m._x where m is an imported package module
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("asyncjax"):
                        aliases[a.asname or a.name.split(".")[0]] = a.name
            elif isinstance(node, ast.ImportFrom):
                mod = _resolve(node, name)
                for a in node.names:
                    if f"{mod}.{a.name}" in MODULES:
                        aliases[a.asname or a.name] = f"{mod}.{a.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and _private(node.attr)
            ):
                if node.value.id in aliases and aliases[node.value.id] != name:
                    where = f"{path.relative_to(PKG.parent)}:{node.lineno}"
                    offences.append(f"{where} uses {node.value.id}.{node.attr}")
    assert not offences, "\n".join(offences)


def test_no_import_cycle_even_through_function_level_imports():
    graph = {
        name: {m for m, _, _ in _imports(name) if m in MODULES and m != name} for name in MODULES
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            cycle = visit(n)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_private_modules_declare_no_all():
    offenders = [
        str(p.relative_to(PKG.parent))
        for name, p in MODULES.items()
        if any(_private(part) for part in name.split("."))
        and "__all__"
        in {
            t.id
            for n in ast.parse(p.read_text()).body
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
    ]
    assert not offenders, offenders


@pytest.mark.parametrize("probe", ["cycle", "private"])
def test_the_checks_catch_what_they_look_for(probe, tmp_path, monkeypatch):
    """The checks above would fail on a planted offence (so a pass means something)."""
    fake = {
        "asyncjax.a": tmp_path / "a.py",
        "asyncjax.b": tmp_path / "b.py",
    }
    if probe == "cycle":
        fake["asyncjax.a"].write_text("def f():\n    from asyncjax import b\n")
        fake["asyncjax.b"].write_text("from asyncjax.a import f\n")
    else:
        fake["asyncjax.a"].write_text("from asyncjax.b import _hidden\n")
        fake["asyncjax.b"].write_text("_hidden = 1\n")
    monkeypatch.setattr(sys.modules[__name__], "MODULES", fake)
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path / "asyncjax")
    (tmp_path / "asyncjax").mkdir()
    for k, p in list(fake.items()):
        target = tmp_path / "asyncjax" / p.name
        target.write_text(p.read_text())
        fake[k] = target
    check = (
        test_no_import_cycle_even_through_function_level_imports
        if probe == "cycle"
        else test_no_module_uses_another_modules_underscore_names
    )
    with pytest.raises(AssertionError):
        check()


# The modules a user imports by name: the package face names them in its docstring.
PUBLIC = {
    "asyncjax",
    "asyncjax.analysis",
    "asyncjax.bench",
    "asyncjax.config",
    "asyncjax.datasets",
    "asyncjax.delays",
    "asyncjax.experiments",
    "asyncjax.mitigations",
    "asyncjax.optim",
    "asyncjax.parts",
    "asyncjax.plotting",
    "asyncjax.problems",
    "asyncjax.reproduce",
    "asyncjax.results",
    "asyncjax.rng",
    "asyncjax.servers",
    "asyncjax.splits",
    "asyncjax.sweep",
    "asyncjax.theory",
    "asyncjax.wallclock",
    "asyncjax.wallclock_plots",
}


def _declares_all(path: Path) -> bool:
    return any(
        isinstance(t, ast.Name) and t.id == "__all__"
        for n in ast.parse(path.read_text()).body
        if isinstance(n, ast.Assign)
        for t in n.targets
    )


def test_all_only_in_modules_a_user_imports():
    declaring = {name for name, p in MODULES.items() if _declares_all(p)}
    assert declaring <= PUBLIC, sorted(declaring - PUBLIC)


def test_every_public_module_is_named_by_the_face_and_exports_what_it_lists():
    import importlib

    import asyncjax

    for name in sorted(PUBLIC - {"asyncjax"}):
        assert f"``{name.split('.', 1)[1]}``" in asyncjax.__doc__, name
        module = importlib.import_module(name)
        for exported in getattr(module, "__all__", ()):
            assert hasattr(module, exported), f"{name}.__all__ lists {exported!r}, which it lacks"
