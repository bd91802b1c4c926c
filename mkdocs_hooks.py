"""mkdocs hook: the site serves benchmarks/results/ and notebooks/ straight from the repository.

The measured figures and JSON files live in benchmarks/results/ (the presets and benchmark
scripts write them there). Pages link to them as ``results/...`` (relative to docs/), and this
hook adds each file to the build under that path, so the site shows exactly the committed files
and no copy under docs/ can drift from them. Links to them are checked like any other link. The
notebooks are served the same way, as notebooks/NAME.ipynb, for the reproduction pages to link.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).parent
RESULTS = ROOT / "benchmarks" / "results"
NOTEBOOKS = ROOT / "notebooks"


def on_files(files: Files, config) -> Files:
    for path in sorted(RESULTS.rglob("*")):
        if path.is_file() and path.suffix in {".png", ".json"}:
            uri = "results/" + path.relative_to(RESULTS).as_posix()
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        files.append(File.generated(config, "notebooks/" + path.name, abs_src_path=str(path)))
    return files
