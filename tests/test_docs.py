"""Documentation that runs: every Python block of the site and the README, and docstring examples.

* Every ```python block of ``docs/**/*.md`` and ``README.md`` is executed. The blocks of one page
  run in order in one namespace (a page is one session), in a scratch folder. A block preceded by
  the line ``<!-- skip: REASON -->`` is not run (a multi-process job, say); the reason is
  required, and the skips are few (``MAX_SKIPS``).
* The docstring examples of the public modules (and what they re-export) are run too: ``>>>``
  examples with doctest, and the literal blocks (``Example::``, the package's usual form) as
  code, with the names they take for granted (``aj``, ``pca``, ``problem``, ``optax``) set up
  beforehand and their sizes made small. Modules whose literal blocks are not Python (TOML in
  ``asyncjax.config``) are not in the list.
* The site's own claims about the repository: the README stays a front page (at most 10 KB),
  every figure the benchmarks recorded is on a page, every reproduction page links its notebook,
  and every notebook's first cell says how to install asyncjax on a fresh runtime.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import json
import re
import sys
import textwrap
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md")) + [ROOT / "README.md"]
SKIP = re.compile(r"<!--\s*skip:\s*(\S.*?)\s*-->\s*$")
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```\s*$", re.S | re.M)
MAX_SKIPS = 3

# The public face whose docstrings are documentation (the API reference renders them).
PUBLIC_MODULES = [
    "asyncjax",
    "asyncjax.problems",
    "asyncjax.optim",
    "asyncjax.delays",
    "asyncjax.splits",
    "asyncjax.mitigations",
    "asyncjax.theory",
    "asyncjax.analysis",
    "asyncjax.results",
    "asyncjax.sweep",
    "asyncjax.wallclock",
    "asyncjax.plotting",
    "asyncjax.simulate",
    "asyncjax.parts",
    "asyncjax.rng",
    "asyncjax.datasets",
    "asyncjax.wallclock_plots",
    "asyncjax.reproduce",
    "asyncjax.experiments",
]


def _blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, code, skip reason or None) for every ```python block of a page, in order."""
    text = path.read_text()
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        out.append((line, m.group(1), skip.group(1) if skip else None))
    return out


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


PAGES_WITH_CODE = [p for p in PAGES if any(s is None for _, _, s in _blocks(p))]


def test_the_pages_hold_code_and_skips_are_few_and_explained():
    assert len(PAGES_WITH_CODE) >= 10
    skips = [(_rel(p), line, why) for p in PAGES for line, _, why in _blocks(p) if why]
    assert len(skips) <= MAX_SKIPS, skips
    for page, line, why in skips:
        assert len(why) > 10, f"{page}:{line}: say why the block is skipped"


@pytest.mark.parametrize("path", PAGES_WITH_CODE, ids=_rel)
def test_page_code_runs(path, tmp_path, monkeypatch):
    """The page's blocks, in order, in one namespace, in a scratch folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASYNCJAX_QUICK", "1")
    # a page is a user's own module: importable by name (dataclasses look it up), and compiled
    # without this file's `from __future__` flags
    module = types.ModuleType(f"docs_{path.stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    for line, code, skip in _blocks(path):
        if skip:
            continue
        try:
            block = compile(code, f"{_rel(path)}:{line}", "exec", dont_inherit=True)
            exec(block, namespace)  # noqa: S102
        except Exception as err:  # name the block that failed
            raise AssertionError(f"{_rel(path)}, block at line {line}: {err!r}") from err


# ------------------------------------------------------------------ docstrings
def _docstrings():
    """(qualified name, docstring) of every public module, class and function."""
    seen = set()
    for modname in PUBLIC_MODULES:
        mod = importlib.import_module(modname)  # asyncjax.sweep: the module, not the function
        items = [(modname, mod)]
        for name, obj in vars(mod).items():
            if name.startswith("_") or not str(getattr(obj, "__module__", "")).startswith(
                "asyncjax"
            ):
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj):
                items.append((f"{modname}.{name}", obj))
                if inspect.isclass(obj):
                    items += [
                        (f"{modname}.{name}.{m}", f)
                        for m, f in vars(obj).items()
                        if not m.startswith("_") and inspect.isfunction(f)
                    ]
        for qual, obj in items:
            doc = inspect.getdoc(obj)
            if doc and id(obj) not in seen:
                seen.add(id(obj))
                yield qual, doc


def _literal_examples(doc: str) -> list[str]:
    """The indented literal blocks (after a line ending in '::', e.g. 'Example::')."""
    out = []
    lines = doc.split("\n")
    for i, ln in enumerate(lines):
        if not ln.rstrip().endswith("::"):
            continue
        indent = len(ln) - len(ln.lstrip())
        body = []
        for nxt in lines[i + 1 :]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            body.append(nxt)
        out.append(textwrap.dedent("\n".join(body)).strip("\n"))
    return out


DOCTESTS = [(q, d) for q, d in _docstrings() if ">>>" in d]
LITERALS = [(q, i, code) for q, d in _docstrings() for i, code in enumerate(_literal_examples(d))]


def _example_namespace() -> dict:
    """The names the docstring examples take for granted, small enough to run in seconds."""
    import optax

    import asyncjax as aj

    pca = aj.StreamingPCA([4.0, 3.0, 2.0, 1.0])
    from asyncjax.parts import Hyper, check_nonnegative

    return {
        "aj": aj,
        "asyncjax": aj,
        "optax": optax,
        "pca": pca,
        "problem": pca,
        "jnp": __import__("jax.numpy").numpy,
        "Hyper": Hyper,
        "check_nonnegative": check_nonnegative,
    }


# Docstring examples are written at full size; they run as written except for these sizes,
# which keep the whole file under a minute on a 2-core CPU (the shapes and calls are unchanged).
SHRINK = [
    (re.compile(r"seed=range\(\d+\)"), "seed=range(2)"),
    (re.compile(r"steps=[\d_]+"), "steps=500"),
    (re.compile(r"record_every=\d+"), "record_every=50"),
]


def test_docstring_examples_are_found():
    assert len(LITERALS) >= 4, LITERALS  # asyncjax, mitigations, delays.workers, optim, simulate


def test_docstring_doctests(tmp_path, monkeypatch):
    """Every ``>>>`` example of the public face (none yet: the package writes ``Example::``)."""
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for qual, doc in DOCTESTS:
        runner.run(doctest.DocTestParser().get_doctest(doc, _example_namespace(), qual, qual, 0))
    assert runner.summarize(verbose=False).failed == 0


@pytest.mark.parametrize(
    "qual,code", [(q, c) for q, _, c in LITERALS], ids=[f"{q}[{i}]" for q, i, _ in LITERALS]
)
def test_docstring_example_runs(qual, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "results.npz" in code:  # the file-format example reads a saved sweep
        import asyncjax as aj

        pca = aj.StreamingPCA([4.0, 3.0, 2.0, 1.0])
        aj.sweep(pca, aj.Grid(delay=[0, 1], lr=5e-4, seed=range(2)), steps=10, record_every=5).save(
            "results.npz"
        )
    for pattern, small in SHRINK:
        code = pattern.sub(small, code)
    ns = _example_namespace()
    ns.update(np=__import__("numpy"), json=json)
    exec(compile(code, qual, "exec"), ns)  # noqa: S102


# ---------------------------------------------------------------- the site's claims
def test_readme_is_a_front_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 10 * 1024
    for preset in (
        "liu2018-fig1",
        "liu2018-phase",
        "liu2018-stationary",
        "wang2020-speedup",
        "mitliagkas2016",
        "liu2018-dnn",
        "tyurin2023-time",
        "ringmaster-momentum",
        "maranjyan2025-ringmaster",
        "heterogeneous-bias",
        "dirichlet-digits",
    ):
        assert f"(docs/reproductions/{preset}.md)" in readme
        assert (DOCS / "reproductions" / f"{preset}.md").exists()


def test_every_recorded_figure_and_summary_is_on_a_page():
    text = "".join(p.read_text() for p in DOCS.rglob("*.md"))
    results = ROOT / "benchmarks" / "results"
    for f in sorted(results.rglob("*")):
        if f.suffix in {".png", ".json"}:
            assert f"results/{f.relative_to(results).as_posix()}" in text, f


NOTEBOOK_OF = {
    "liu2018-fig1": "01_",
    "liu2018-stationary": "01_",
    "mitliagkas2016": "03_",
    "liu2018-dnn": "04_",
    "wang2020-speedup": "05_",
    "liu2018-phase": "05_",
    "tyurin2023-time": "06_",
    "ringmaster-momentum": "06_",
    "maranjyan2025-ringmaster": "07_",
    "heterogeneous-bias": "08_",
    "dirichlet-digits": "09_",
}


@pytest.mark.parametrize("preset", sorted(NOTEBOOK_OF))
def test_reproduction_page_links_its_notebook(preset):
    page = (DOCS / "reproductions" / f"{preset}.md").read_text()
    (nb,) = [
        p.name
        for p in (ROOT / "notebooks").glob("*.ipynb")
        if p.name.startswith(NOTEBOOK_OF[preset])
    ]
    assert f"(../notebooks/{nb})" in page


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_first_cell_explains_installing(path):
    first = json.loads(path.read_text())["cells"][0]
    text = "".join(first["source"])
    assert first["cell_type"] == "markdown"
    assert "Colab" in text and "ASYNCJAX_SOURCE" in text
