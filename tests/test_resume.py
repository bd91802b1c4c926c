"""Resuming a sweep: under any chunking and device count, with corrupt chunks, from the CLI."""

import json
import os
import shutil
import stat
import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest
from _child import child_env

import asyncjax as aj
from asyncjax.cli import main
from asyncjax.sweep import ChunkWarning

KW = dict(steps=60, record_every=20)


@pytest.fixture
def grid():
    # 10 seeds x 6 points; momentum 0.99 with a long delay diverges, so diverged_at is exercised too
    return aj.Grid(momentum=[0.5, 0.99], delay=[0, 3, 7], lr=0.02, seed=range(10))


def _assert_identical(a, b):
    assert set(a.data) == set(b.data)
    for name in a.data:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def _interrupted_copy(ref, dst, drop):
    """A copy of finished sweep folder ``ref`` as a killed run would leave it: no results, chunks dropped."""
    shutil.copytree(ref, dst)
    (dst / "results.npz").unlink()
    chunks = sorted((dst / "chunks").glob("chunk-*.npz"))
    for path in chunks[-drop:]:
        path.unlink()
    return len(chunks) - drop


def test_resume_with_other_chunk_size_and_device_count_is_bit_identical(pca, grid, tmp_path):
    """A 2-device run cut into 4-seed chunks, killed, then resumed on 1 device and with other
    chunk sizes: every resume equals an uninterrupted run bit for bit and reuses what it can."""
    one = jax.local_devices()[:1]
    whole = aj.sweep(pca, grid, devices=one, **KW)
    assert np.any(whole["diverged_at"] >= 0) and np.any(whole["diverged_at"] < 0)

    ref = tmp_path / "ref"
    first = aj.sweep(
        pca, grid, devices=jax.local_devices()[:2], chunk_size=24, out=ref, keep_chunks=True, **KW
    )
    assert first.attrs["timing"]["chunks"] == 3  # seeds 0-3, 4-7, 8-9, all 6 points each
    _assert_identical(first, whole)

    cases = [
        ("one_device_same_chunk", dict(devices=one, chunk_size=24), 1),  # seeds 8-9 redone
        ("one_device_pairs", dict(devices=one, chunk_size=12), 1),  # 5 chunks of 2 seeds; 4 on disk
        (
            "one_device_split_points",
            dict(devices=one, chunk_size=4),
            4,
        ),  # 20 (seed, 4|2 points) chunks
        (
            "three_seed_chunks",
            dict(devices=one, chunk_size=18),
            2,
        ),  # 6-8 only partly on disk: redone
        (
            "four_devices",
            dict(devices=jax.local_devices()[:4], chunk_size=8),
            2,
        ),  # 10 one-seed chunks
    ]
    for name, kw, expect_computed in cases:
        folder = tmp_path / name
        _interrupted_copy(ref, folder, drop=1)
        res = aj.sweep(pca, grid, out=folder, resume=True, **kw, **KW)
        _assert_identical(res, whole)
        assert res.attrs["timing"]["chunks_computed"] == expect_computed, name
        _assert_identical(aj.Results.load(folder / "results.npz"), whole)
        # a second resume reads the mixed chunkings on disk and computes nothing
        again = aj.sweep(pca, grid, out=folder, resume=True, devices=one, chunk_size=6, **KW)
        assert again.attrs["timing"]["chunks_computed"] == 0, name
        _assert_identical(again, whole)


def test_chunk_files_say_which_seeds_and_points_they_hold(pca, grid, tmp_path):
    aj.sweep(
        pca,
        grid,
        devices=jax.local_devices()[:1],
        chunk_size=4,
        out=tmp_path,
        keep_chunks=True,
        **KW,
    )
    seen = np.zeros((10, 6), int)
    for path in (tmp_path / "chunks").glob("chunk-*.npz"):
        with np.load(path, allow_pickle=False) as f:
            assert f["error"].shape == (f["chunk.seeds"].size, f["chunk.points"].size, 4)
            seen[np.ix_(f["chunk.seeds"], f["chunk.points"])] += 1
            assert str(f["chunk.key"]) == json.loads((tmp_path / "sweep.json").read_text())["key"]
    np.testing.assert_array_equal(seen, 1)  # every cell exactly once


def test_sweep_key_ignores_chunking_devices_and_descriptions(pca, grid, tmp_path):
    a = aj.sweep(pca, grid, chunk_size=5, out=tmp_path / "a", metadata={"note": "x"}, **KW)
    b = aj.sweep(
        pca, grid, chunk_size=60, devices=jax.local_devices()[:1], out=tmp_path / "b", **KW
    )
    key = lambda p: json.loads((p / "sweep.json").read_text())["key"]  # noqa: E731
    assert key(tmp_path / "a") == key(tmp_path / "b")
    assert a.attrs["source"] == {"note": "x"} and "source" not in b.attrs
    c = aj.sweep(pca, grid, norm_bound=50.0, out=tmp_path / "c", **KW)
    assert key(tmp_path / "c") != key(tmp_path / "a")
    del c


def test_python_resume_of_a_folder_the_cli_wrote(tmp_path, capsys):
    """The CLI runs on 4 devices here; Python resumes it on one device with another chunk size."""
    cfg = tmp_path / "s.toml"
    cfg.write_text("""
[problem]
eigenvalues = [4.0, 3.0, 2.0, 1.0]
[grid]
momentum = [0.5, 0.9]
delay = [0, 3, 7]
lr = 2e-3
seeds = 10
[run]
steps = 60
record_every = 20
chunk_size = 24
""")
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress", "--keep-chunks"]) == 0
    ref = aj.Results.load(out / "results.npz")
    assert ref.attrs["timing"]["chunks"] > 1
    (out / "results.npz").unlink()
    sorted((out / "chunks").glob("chunk-*.npz"))[-1].unlink()
    from asyncjax.config import load_config

    spec = load_config(cfg)
    kw = {**spec.sweep_kwargs(), "chunk_size": 7}
    res = aj.sweep(
        spec.problem, spec.grid, out=out, resume=True, devices=jax.local_devices()[:1], **kw
    )
    assert 0 < res.attrs["timing"]["chunks_computed"] < res.attrs["timing"]["chunks"]
    _assert_identical(res, ref)


def _cli(args, devices, cwd):
    env = child_env(ASYNCJAX_CPU_DEVICES=str(devices))
    return subprocess.run(
        [sys.executable, "-m", "asyncjax.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_cli_resume_on_another_device_count_matches_the_reference(tmp_path):
    """The issue's reproduction, scaled down: `asyncjax run` on 2 CPU devices to `ref`; a copy with
    its last chunk and results.npz deleted, resumed with ASYNCJAX_CPU_DEVICES=1."""
    cfg = tmp_path / "fig.toml"
    cfg.write_text("""
[problem]
eigenvalues = [4.0, 3.0, 2.0, 1.0]
init = [0.0, 1.0, 0.0, 0.0]
[grid]
momentum = [0.7, 0.9]
delay = { start = 0, stop = 20, step = 10 }
lr = 5e-4
seeds = 100
[run]
steps = 400
record_every = 100
chunk_size = 150
""")
    done = _cli(["run", str(cfg), "--out", "ref", "--no-progress", "--keep-chunks"], 2, tmp_path)
    assert done.returncode == 0, done.stderr
    ref = aj.Results.load(tmp_path / "ref" / "results.npz")
    assert ref.attrs["timing"]["devices"] == 2
    n_kept = _interrupted_copy(tmp_path / "ref", tmp_path / "copy", drop=1)
    assert n_kept >= 2
    done = _cli(["run", str(cfg), "--out", "copy", "--resume", "--no-progress"], 1, tmp_path)
    assert done.returncode == 0, done.stderr
    res = aj.Results.load(tmp_path / "copy" / "results.npz")
    assert res.attrs["timing"]["devices"] == 1
    assert 0 < res.attrs["timing"]["chunks_computed"] < res.attrs["timing"]["chunks"]
    _assert_identical(res, ref)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_corrupt_chunk_is_named_and_recomputed(pca, grid, tmp_path, damage):
    one = jax.local_devices()[:1]
    whole = aj.sweep(pca, grid, devices=one, chunk_size=12, out=tmp_path, keep_chunks=True, **KW)
    (tmp_path / "results.npz").unlink()
    victim = sorted((tmp_path / "chunks").glob("chunk-*.npz"))[2]
    raw = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        victim.write_bytes(raw[:400] + bytes([raw[400] ^ 0xFF]) + raw[401:])
    else:
        victim.write_bytes(b"")
    with pytest.warns(ChunkWarning, match=f"chunk file {victim}.*recomputed"):
        res = aj.sweep(
            pca, grid, devices=one, chunk_size=12, out=tmp_path, resume=True, keep_chunks=True, **KW
        )
    assert res.attrs["timing"]["chunks_computed"] == 1
    _assert_identical(res, whole)
    assert (victim.parent / (victim.name + ".corrupt")).exists()
    with np.load(victim, allow_pickle=False) as f:  # rewritten whole
        np.testing.assert_array_equal(f["chunk.seeds"], [4, 5])


def test_cli_resume_with_a_corrupt_chunk_warns_with_its_name(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("""
[problem]
eigenvalues = [3.0, 1.0, 0.5]
[grid]
momentum = [0.0, 0.5]
lr = 0.01
seeds = 6
[run]
steps = 100
record_every = 50
chunk_size = 4
""")
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress", "--keep-chunks"]) == 0
    victim = sorted((out / "chunks").glob("chunk-*.npz"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    capsys.readouterr()
    assert main(["run", str(cfg), "--out", str(out), "--resume", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"asyncjax: warning: chunk file {victim}" in err and "recomputed" in err
    assert "Traceback" not in err


def test_chunks_of_another_sweep_are_refused_by_name(pca, grid, tmp_path):
    aj.sweep(pca, grid, chunk_size=12, out=tmp_path / "a", keep_chunks=True, **KW)
    other = aj.Grid(momentum=[0.5, 0.99], delay=[0, 3, 7], lr=0.02, seed=range(10))
    aj.sweep(pca, other, chunk_size=12, norm_bound=10.0, out=tmp_path / "b", keep_chunks=True, **KW)
    stranger = sorted((tmp_path / "b" / "chunks").glob("chunk-*.npz"))[0]
    shutil.copy(stranger, tmp_path / "a" / "chunks" / "chunk-s9999999-9999999-p0000000-0000001.npz")
    with pytest.raises(ValueError, match=r"chunk-s9999999.*belongs to a different sweep"):
        aj.sweep(pca, grid, chunk_size=12, out=tmp_path / "a", resume=True, **KW)


def test_older_chunks_without_bookkeeping_are_refused_clearly(pca, grid, tmp_path):
    aj.sweep(pca, grid, chunk_size=12, out=tmp_path, keep_chunks=True, **KW)
    meta = json.loads((tmp_path / "sweep.json").read_text())
    del meta["format"]  # as an older asyncjax wrote it
    (tmp_path / "sweep.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="older asyncjax.*cannot be resumed safely.*overwrite"):
        aj.sweep(pca, grid, chunk_size=12, out=tmp_path, resume=True, **KW)
    res = aj.sweep(pca, grid, chunk_size=12, out=tmp_path, resume=True, overwrite=True, **KW)
    assert res.attrs["timing"]["chunks_computed"] == res.attrs["timing"]["chunks"]


def test_written_files_respect_the_umask(pca, grid, tmp_path):
    old = os.umask(0o022)
    try:
        res = aj.sweep(pca, grid, chunk_size=30, out=tmp_path / "a", keep_chunks=True, **KW)
        from asyncjax import plotting

        plotting.save(plotting.error_vs_step(res), tmp_path / "a" / "fig.png")
        os.umask(0o027)
        aj.sweep(pca, grid, chunk_size=30, out=tmp_path / "b", keep_chunks=True, **KW)
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "a").rglob("*") if p.is_file()]
    assert len(files) >= 5  # sweep.json, 2 chunks, results.npz, fig.png
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    for path in (p for p in (tmp_path / "b").rglob("*") if p.is_file()):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path


def test_no_warning_on_a_clean_resume(pca, grid, tmp_path):
    aj.sweep(pca, grid, chunk_size=12, out=tmp_path, **KW)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aj.sweep(pca, grid, chunk_size=30, out=tmp_path, resume=True, **KW)
