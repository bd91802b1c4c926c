"""Results on disk, and sweeps that survive being killed."""

import json
import zipfile

import numpy as np
import pytest

import asyncjax as aj
from asyncjax.sweep.checkpoint import Checkpoint


@pytest.fixture
def small(pca):
    grid = aj.Grid(momentum=[0.5, 0.9], delay=[0, 4, 9], lr=2e-3, seed=range(5))
    return grid, dict(steps=60, record_every=20)


def test_save_load_roundtrip_without_pickle(pca, small, tmp_path):
    grid, kw = small
    res = aj.sweep(pca, grid, **kw)
    path = res.save(tmp_path / "r.npz")
    back = aj.Results.load(path)
    for name in res.data:
        np.testing.assert_array_equal(res[name], back[name])
        assert back.dims[name] == res.dims[name]
    np.testing.assert_array_equal(back.coords["delay"], [0, 4, 9])
    assert back.attrs["problem"]["eigenvalues"] == [4.0, 3.0, 2.0, 1.0]
    # Opens with plain NumPy + json, pickle disabled.
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["metadata"]))
        assert meta["dims"]["error"] == ["momentum", "delay", "seed", "step"]
        assert f["data.error"].shape == (2, 3, 5, 4)
    with zipfile.ZipFile(path) as z:  # nothing but .npy members
        assert all(n.endswith(".npy") for n in z.namelist())
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temporary file


def test_results_carry_settings_to_redo_the_run(pca, small, tmp_path):
    grid, kw = small
    res = aj.sweep(pca, grid, init=[0.0, 0.0, 1.0, 0.0], **kw)
    a = aj.Results.load(res.save(tmp_path / "r.npz")).attrs
    problem = aj.StreamingPCA(a["problem"]["eigenvalues"], a["problem"]["distribution"])
    redo = aj.sweep(
        problem,
        aj.Grid(**a["grid"]["axes"], **a["grid"]["fixed"]),
        steps=a["steps"],
        record_every=a["record_every"],
        init=a["init"],
        buffer=a["buffer"],
        delay_model=a["delay_model"],
        norm_bound=a["norm_bound"],
    )
    np.testing.assert_array_equal(redo["error"], res["error"])


def test_sel_and_isel(pca, small):
    grid, kw = small
    res = aj.sweep(pca, grid, **kw)
    sub = res.sel(momentum=0.9, delay=4)
    np.testing.assert_array_equal(sub["error"], res["error"][1, 1])
    assert sub.dims["error"] == ("seed", "step")
    with pytest.raises(KeyError, match="momentum=0.7 not among"):
        res.sel(momentum=0.7)


def test_results_reject_mismatched_coordinates():
    with pytest.raises(ValueError, match="coordinate 'x' has shape"):
        aj.Results({"a": np.zeros((2, 3))}, {"a": ("x", "y")}, {"x": np.arange(3)})


def test_killed_sweep_resumes_without_redoing_chunks(pca, small, tmp_path, monkeypatch):
    grid, kw = small
    whole = aj.sweep(pca, grid, chunk_size=6, **kw)
    assert whole.attrs["timing"]["chunks"] == 5

    saved = []
    real_save = Checkpoint.save

    def crashing_save(self, *args):
        if len(saved) == 2:
            raise KeyboardInterrupt("killed")
        saved.append(args)
        real_save(self, *args)

    monkeypatch.setattr(Checkpoint, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        aj.sweep(pca, grid, chunk_size=6, out=tmp_path, **kw)
    monkeypatch.setattr(Checkpoint, "save", real_save)
    assert len(list((tmp_path / "chunks").glob("chunk-*.npz"))) == 2
    assert not (tmp_path / "results.npz").exists()

    with pytest.raises(FileExistsError, match="pass resume=True"):
        aj.sweep(pca, grid, chunk_size=6, out=tmp_path, **kw)
    resumed = aj.sweep(pca, grid, chunk_size=6, out=tmp_path, resume=True, **kw)
    assert resumed.attrs["timing"]["chunks_computed"] == 3  # 5 chunks, 2 were on disk
    for name in whole.data:
        np.testing.assert_array_equal(whole[name], resumed[name])
    on_disk = aj.Results.load(tmp_path / "results.npz")
    np.testing.assert_array_equal(on_disk["error"], whole["error"])


def test_resume_refuses_chunks_of_another_sweep(pca, small, tmp_path):
    grid, kw = small
    aj.sweep(pca, grid, chunk_size=6, out=tmp_path, **kw)
    other = aj.Grid(momentum=[0.1, 0.9], delay=[0, 4, 9], lr=2e-3, seed=range(5))
    with pytest.raises(ValueError, match="different sweep"):
        aj.sweep(pca, other, chunk_size=6, out=tmp_path, resume=True, **kw)
    res = aj.sweep(pca, other, chunk_size=6, out=tmp_path, resume=True, overwrite=True, **kw)
    assert res.attrs["timing"]["chunks_computed"] == 5


def test_sel_keeps_an_axis_for_a_list_and_names_near_misses(pca):
    res = aj.sweep(
        pca,
        aj.Grid(momentum=[0.0, 0.5, 0.9], delay=[0, 2], lr=1e-2, seed=range(2)),
        steps=20,
        record_every=10,
    )
    two = res.sel(momentum=[0.9, 0.0])
    assert two["error"].shape == (2, 2, 2, 3) and two.coords["momentum"].tolist() == [0.9, 0.0]
    np.testing.assert_array_equal(two["error"][0], res.sel(momentum=0.9)["error"])
    assert "momentum" not in res.sel(momentum=0.5).coords
    with pytest.raises(KeyError, match=r"no axis 'delya' \(did you mean 'delay'\?\)"):
        res.sel(delya=0)
    with pytest.raises(KeyError, match=r"no variable 'errror' \(did you mean 'error'\?\)"):
        res["errror"]
    with pytest.raises(KeyError, match=r"momentum='0.7': pick one number per axis"):
        res.sel(momentum="0.7")
