"""Reading back the headline table a preset prints, to compare its numbers with summary.json."""

from __future__ import annotations

import contextlib
import io
import math
import re

import numpy as np

from asyncjax.cli import main


def reproduce_quick(name: str, out, seeds: int | None = None) -> str:
    """Runs ``asyncjax reproduce NAME --quick [--seeds N]`` into ``out`` as a user would; what it
    printed."""
    buf = io.StringIO()
    more = [] if seeds is None else ["--seeds", str(seeds)]
    with contextlib.redirect_stdout(buf):
        code = main(["reproduce", name, "--quick", *more, "--out", str(out), "--no-progress"])
    assert code == 0, buf.getvalue()
    return buf.getvalue()


def _value(cell: str):
    if cell == "-":
        return None
    if cell in ("yes", "no"):
        return cell == "yes"
    if cell.startswith("["):
        return [_value(c) for c in cell[1:-1].split(", ")]
    try:
        return float(cell)
    except ValueError:  # a name (a method, say)
        return cell


def _entry(summary: dict, key: str):
    value = summary
    for part in key.split("."):
        value = [v[part] for v in value] if isinstance(value, list) else value[part]
    return value


def _same(printed, stored, where: str) -> None:
    if isinstance(printed, list):
        assert isinstance(stored, list) and len(printed) == len(stored), where
        for p, s in zip(printed, stored):
            _same(p, s, where)
    elif printed is None or isinstance(printed, (bool, str)):
        assert printed == stored or (printed is None and stored is None), (where, printed, stored)
    else:  # 4 significant digits are printed
        assert stored is not None and not isinstance(stored, bool), (where, printed, stored)
        s = math.inf if stored == "inf" else -math.inf if stored == "-inf" else float(stored)
        assert np.isclose(printed, s, rtol=6e-4, atol=0), (where, printed, stored)


def check_headline(printed: str, summary: dict) -> int:
    """Every table cell and ``key = value`` line in ``printed`` equals summary.json's value; how many.

    A table is a title line ending in ':', a header of summary keys, then rows.
    """
    lines = printed.splitlines()
    checked, i = 0, 0
    while i < len(lines):
        line = lines[i]
        if line.endswith(":"):  # a title: the header and rows follow
            keys = lines[i + 1].split()
            columns = {k: _entry(summary, k) for k in keys}
            rows = len(columns[keys[0]])
            for row, text in enumerate(lines[i + 2 : i + 2 + rows]):  # every row is printed
                cells = re.split(r"\s{2,}", text.strip())
                assert len(cells) == len(keys), (keys, text)
                for k, c in zip(keys, cells):
                    _same(_value(c), columns[k][row], f"{k}[{row}]")
                    checked += 1
            assert len(lines[i + 2 : i + 2 + rows]) == rows, (keys, rows)
            i += 2 + rows
            continue
        m = re.match(r"^([\w.]+) = (.*)$", line)
        if m:
            _same(_value(m.group(2)), _entry(summary, m.group(1)), m.group(1))
            checked += 1
        i += 1
    return checked
