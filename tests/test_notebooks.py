"""Notebooks: committed without outputs, and executed end to end (quick settings) in a real kernel."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from _child import child_env
from nbclient import NotebookClient

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _first_code_cell(path: Path) -> str:
    nb = json.loads(path.read_text())
    return next("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_code_compiles(path):
    nb = json.loads(path.read_text())
    assert nb["nbformat"] == 4
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    for i, cell in enumerate(code):
        src = "".join(cell["source"])
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("!", "%"))]
        compile("\n".join(lines), f"{path.name}[{i}]", "exec")
        assert not cell["outputs"], "notebooks are committed without outputs"
        assert cell["execution_count"] is None


# The quick preset runs the notebooks ask for, which the preset tests make too (their
# `quick_preset` fixture); in the fast set the notebooks read those instead of running them again.
PRESET_RUNS = [
    ("mitliagkas2016", None),  # 03
    ("liu2018-dnn", None),  # 04
    ("wang2020-speedup", None),  # 05
    ("liu2018-phase", 2),  # 05
    ("tyurin2023-time", None),  # 06
    ("ringmaster-momentum", None),  # 06
    ("maranjyan2025-ringmaster", None),  # 07
    ("heterogeneous-bias", None),  # 08
    ("dirichlet-digits", None),  # 09
]

# Put in after the first code cell: `reproduce` reads a finished run of the same preset and size
# (the session's, made by `asyncjax reproduce NAME --quick` in the test process), copies its
# folder where the notebook asked and returns what that run's `reproduce` returned. Anything
# else runs for real.
CACHED_REPRODUCE = """
import inspect as _inspect, pickle as _pickle, shutil as _shutil
from pathlib import Path as _Path
import asyncjax.reproduce as _module

_real_reproduce, _finished = _module.reproduce, {finished!r}

def _cached_reproduce(*args, **kwargs):
    bound = _inspect.signature(_real_reproduce).bind(*args, **kwargs)  # the call is valid as written
    bound.apply_defaults()
    a = bound.arguments
    done = _finished.get(f"{{a['name']}}/{{a['seeds']}}") if a["quick"] else None
    if done is None:
        return _real_reproduce(*args, **kwargs)
    out = _Path(a["out"] or _Path("runs") / a["name"])
    _shutil.copytree(done[0], out, dirs_exist_ok=True)
    return _pickle.loads(_Path(done[1]).read_bytes())

_module.reproduce = _cached_reproduce
"""


def _code(path: Path) -> str:
    nb = json.loads(path.read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def _runs_presets(path: Path) -> bool:
    return "reproduce(" in _code(path)


# The fast set runs the two tutorials and one preset notebook on a session's quick run (the path
# every preset notebook takes); the others, 10-35 s each, run in the slow set. All of them
# compile in the fast set (`test_notebook_code_compiles`).
FAST_RUNS = ("01_", "02_", "08_")
END_TO_END = [
    pytest.param(p, marks=() if p.name.startswith(FAST_RUNS) else pytest.mark.slow, id=p.name)
    for p in NOTEBOOKS
]


@pytest.mark.parametrize("path", END_TO_END)
def test_notebook_runs_end_to_end(path, tmp_path, monkeypatch, quick_preset):
    """Every cell runs in a fresh kernel (ASYNCJAX_QUICK=1: tiny settings), in a scratch folder.

    A notebook that runs presets gets the session's quick runs of them (the same command at the
    same size, checked by the preset tests); `test_notebook_runs_presets_itself` (slow) lets it
    run them in its kernel.
    """
    finished = {}
    if _runs_presets(path):
        code = _code(path)
        for name, seeds in [r for r in PRESET_RUNS if f'"{r[0]}"' in code]:
            run = quick_preset(name, seeds)
            finished[f"{name}/{seeds}"] = (str(run.out), str(run.returned))
    _run_notebook(path, tmp_path, monkeypatch, CACHED_REPRODUCE.format(finished=finished))


# One notebook runs its preset in its own kernel (what the cached runs stand in for); the
# presets' quick runs are the preset tests' own, so one notebook shows the call works from a kernel.
IN_KERNEL = [p for p in NOTEBOOKS if p.name.startswith("03_")]


@pytest.mark.slow
@pytest.mark.parametrize("path", IN_KERNEL, ids=lambda p: p.name)
def test_notebook_runs_presets_itself(path, tmp_path, monkeypatch):
    assert _runs_presets(path)
    _run_notebook(path, tmp_path, monkeypatch, None)


def _run_notebook(path, tmp_path, monkeypatch, after_first_cell):
    monkeypatch.setenv("ASYNCJAX_QUICK", "1")
    flags = child_env().get("XLA_FLAGS")  # the kernel compiles as this process does
    if flags is None:
        monkeypatch.delenv("XLA_FLAGS", raising=False)
    else:
        monkeypatch.setenv("XLA_FLAGS", flags)
    nb = nbformat.read(path, as_version=4)
    if after_first_cell:
        first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
        nb.cells.insert(first + 1, nbformat.v4.new_code_cell(after_first_cell))
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # raises on any error
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", out
            text.append(out.get("text", "") + json.dumps(out.get("data", {})))
    text = "".join(text)
    assert "(quick settings)" in text
    if "01_" in path.name:
        assert "threshold" in text and "predicted" in text
        assert (
            "asyncjax: chunk" in text
        )  # progress shows by default in a notebook (stderr is no terminal)
        assert "image/png" in text  # the figure was drawn
        assert (tmp_path / "fig1_results.npz").exists()
    if "03_" in path.name:
        assert "implicit momentum" in text and "best μ" in text and "image/png" in text
        assert (tmp_path / "runs" / "mitliagkas2016" / "summary.json").exists()
    if "04_" in path.name:
        assert "best μ" in text and "worst μ" in text and "image/png" in text
        assert (tmp_path / "runs" / "liu2018-dnn" / "summary.json").exists()
    if "06_" in path.name:
        assert "ASGD / Ringmaster" in text and "predicted R" in text and "image/png" in text
        assert "gradients applied from" in text
        for preset in ("tyurin2023-time", "ringmaster-momentum"):
            assert (tmp_path / "runs" / preset / "summary.json").exists()
    if "07_" in path.name:
        assert "f − f* at the horizon" in text and "largest delay applied" in text
        assert "image/png" in text
        assert (tmp_path / "runs" / "maranjyan2025-ringmaster-quick" / "summary.json").exists()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_installs_asyncjax_when_missing(path, monkeypatch, capsys):
    """With asyncjax not importable, the first cell says so and pip-installs it from ASYNCJAX_SOURCE."""
    src = _first_code_cell(path)
    assert "ASYNCJAX_SOURCE" in src
    calls = []

    def fake_pip(cmd, *args, **kwargs):
        calls.append(cmd)
        monkeypatch.delitem(sys.modules, "asyncjax")  # "installed": importable again
        return 0

    monkeypatch.setitem(sys.modules, "asyncjax", None)  # import asyncjax -> ImportError
    monkeypatch.setattr(subprocess, "check_call", fake_pip)
    monkeypatch.chdir(ROOT / "notebooks")  # the default source ".." is the repository
    namespace: dict = {}
    exec(compile(src, f"{path.name}[first code cell]", "exec"), namespace)
    out = capsys.readouterr().out
    assert (
        calls and calls[0][:4] == [sys.executable, "-m", "pip", "install"] and calls[0][-1] == ".."
    )
    assert "asyncjax is not installed: installing it from .." in out and "installed asyncjax" in out
    assert namespace["asyncjax"].__version__

    # a source that is neither a URL nor a clone gives a message saying what to set
    calls.clear()
    monkeypatch.setitem(sys.modules, "asyncjax", None)
    bad = src.replace('ASYNCJAX_SOURCE = ".."', 'ASYNCJAX_SOURCE = "/nonexistent/folder"')
    with pytest.raises(RuntimeError, match="set it to the repository's git URL or a clone"):
        exec(compile(bad, "bad", "exec"), {})
    assert not calls


def test_notebook_outputs_are_ignored_by_git(tmp_path):
    """Executed copies and run folders next to the notebooks stay out of commits."""
    if subprocess.run(["git", "rev-parse"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    names = [
        "notebooks/01_x.nbconvert.ipynb",
        "notebooks/fig1_results.npz",
        "notebooks/runs/a/results.npz",
        "notebooks/.ipynb_checkpoints/01-checkpoint.ipynb",
        "runs/liu2018-fig1/summary.json",
    ]
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", *names], cwd=ROOT, capture_output=True, text=True
    )
    assert sorted(done.stdout.split()) == sorted(names)
    kept = subprocess.run(
        ["git", "check-ignore", "--no-index", "notebooks/01_momentum_vs_asynchrony.ipynb"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert kept.returncode == 1  # the notebook itself is not ignored
