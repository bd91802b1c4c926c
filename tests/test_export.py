"""Results where people read them: xarray, pandas, and NetCDF / Zarr files opened without asyncjax."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import asyncjax as aj
from asyncjax._io import jsonable
from asyncjax.cli import main


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small worker-model sweep saved by ``asyncjax run``'s code path: every kind of variable
    (metrics, diverged_at, final and iterates with a component axis, the clock's staleness axis)."""
    out = tmp_path_factory.mktemp("sweep")
    res = aj.sweep(
        aj.StreamingPCA([3.0, 1.0, 0.5]),
        aj.Grid(workers=[1, 3], momentum=[0.0, 0.5], lr=0.01, seed=range(3)),
        steps=40,
        record_every=10,
        delay_model="workers",
        record_iterates=True,
        out=out,
        progress=False,
    )
    return out, res


def _same_results(a: aj.Results, b: aj.Results) -> None:
    assert set(a.data) == set(b.data) and set(a.coords) == set(b.coords)
    for k in a.data:
        assert a.dims[k] == b.dims[k], k
        assert a.data[k].dtype == b.data[k].dtype, k
        np.testing.assert_array_equal(a.data[k], b.data[k], err_msg=k)
    for k in a.coords:
        np.testing.assert_array_equal(a.coords[k], b.coords[k], err_msg=k)
    assert jsonable(a.attrs) == jsonable(b.attrs)


def test_every_axis_has_a_coordinate_component_too(saved):
    _, res = saved
    axes = {d for dims in res.dims.values() for d in dims}
    assert "component" in axes and "staleness" in axes
    assert axes == set(res.coords)
    np.testing.assert_array_equal(res.coords["component"], [0, 1, 2])
    assert res.sel(component=0)["final"].shape == res["final"].shape[:-1]


def test_to_xarray_round_trips_every_variable_coordinate_and_setting(saved):
    xr = pytest.importorskip("xarray")
    _, res = saved
    ds = res.to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert set(ds.data_vars) == set(res.data)
    for k, arr in res.data.items():
        assert ds[k].dims == res.dims[k], k
        np.testing.assert_array_equal(ds[k].values, arr, err_msg=k)
    assert set(ds.coords) == set(res.coords)
    for k, c in res.coords.items():
        np.testing.assert_array_equal(ds[k].values, c, err_msg=k)
    # the settings: flat attributes (NetCDF's rule), nested ones as JSON named in json_attrs
    assert all(isinstance(v, (str, int, float, np.number)) for v in ds.attrs.values())
    assert ds.attrs["steps"] == 40 and ds.attrs["delay_model"] == res.attrs["delay_model"]
    assert json.loads(ds.attrs["problem"]) == jsonable(res.attrs["problem"])
    assert "problem" in ds.attrs["json_attrs"].split()
    assert "sin^2" in ds["error"].attrs["description"]
    _same_results(aj.Results.from_xarray(ds), res)
    # a selection by value reads the same cell in both
    one = ds["error"].sel(momentum=0.5, workers=3, seed=1).values
    np.testing.assert_array_equal(one, res.sel(momentum=0.5, workers=3, seed=1)["error"])


def test_to_dataframe_is_long_form_with_coordinate_columns(saved):
    pytest.importorskip("pandas")
    _, res = saved
    df = res.to_dataframe()
    dims = res.dims["error"]
    metrics = [k for k in res.data if res.dims[k] == dims]
    assert list(df.columns) == [*dims, *metrics] and len(df) == res["error"].size
    row = df[(df.momentum == 0.5) & (df.workers == 3) & (df.seed == 2) & (df.step == 20)]
    assert len(row) == 1
    assert row["error"].item() == res.sel(momentum=0.5, workers=3, seed=2, step=20)["error"]
    final = res.to_dataframe("final")
    assert list(final.columns) == [*res.dims["final"], "final"]
    assert set(final.component) == {0, 1, 2}
    with pytest.raises(ValueError, match="share their axes"):
        res.to_dataframe("error", "final")
    with pytest.raises(KeyError, match="did you mean 'error'"):
        res.to_dataframe("errror")


# Runs in a fresh interpreter that never imports asyncjax: what a colleague with xarray alone does.
_READ = textwrap.dedent(
    """
    import json, sys
    import numpy as np, xarray as xr
    path, engine, dump = sys.argv[1:]
    ds = xr.open_zarr(path) if engine == "zarr" else xr.open_dataset(path, engine=engine)
    ds = ds.load()
    assert not any(m.split(".")[0] == "asyncjax" for m in sys.modules), "asyncjax was imported"
    arrays = {f"data.{k}": ds[k].values for k in ds.data_vars}
    arrays.update({f"coord.{k}": ds[k].values for k in ds.coords})
    meta = {
        "dims": {k: list(ds[k].dims) for k in ds.data_vars},
        "attrs": {k: (v.item() if hasattr(v, "item") else v) for k, v in ds.attrs.items()},
    }
    np.savez(dump, metadata=json.dumps(meta), **arrays)
    """
)


@pytest.mark.parametrize(
    "to, suffix, engine, needs",
    [("netcdf", ".nc", "h5netcdf", ("h5netcdf", "h5py")), ("zarr", ".zarr", "zarr", ("zarr",))],
)
def test_export_opens_in_xarray_without_asyncjax_and_equals_the_results(
    saved, tmp_path, capsys, to, suffix, engine, needs
):
    pytest.importorskip("xarray")
    for module in needs:
        pytest.importorskip(module)
    out, res = saved
    assert main(["export", str(out), "--to", to]) == 0
    path = out / f"results{suffix}"
    assert capsys.readouterr().out.strip() == f"wrote {path}"
    dump = tmp_path / "dump.npz"
    script = tmp_path / "read.py"
    script.write_text(_READ)
    done = subprocess.run(
        [sys.executable, str(script), str(path), engine, str(dump)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    with np.load(dump, allow_pickle=False) as f:
        meta = json.loads(str(f["metadata"]))
        data = {k[5:]: f[k] for k in f.files if k.startswith("data.")}
        coords = {k[6:]: f[k] for k in f.files if k.startswith("coord.")}
    attrs = meta["attrs"]
    for key in attrs.pop("json_attrs").split():
        attrs[key] = json.loads(attrs[key])
    assert attrs.pop("asyncjax_format") == "asyncjax-results/1"
    _same_results(aj.Results(data, meta["dims"], coords, attrs), res)
    # a second export replaces the first
    assert main(["export", str(out / "results.npz"), "--to", to]) == 0
    assert not list(out.glob(".*tmp"))


def test_export_bad_input_is_one_error_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nowhere")]) == 2
    assert main(["export", str(tmp_path), "--to", "hdf5"]) == 2
    assert main(["export", str(tmp_path)]) == 2  # an empty folder
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("asyncjax: error: ") for line in lines)
    assert "does not exist" in lines[0]
    assert "--to must be netcdf or zarr, got 'hdf5'" in lines[1]
    assert "holds no results.npz" in lines[2]


def test_without_the_extra_the_error_says_what_to_install(saved, monkeypatch, capsys):
    out, res = saved
    for module in ("xarray", "pandas", "h5netcdf", "zarr"):
        monkeypatch.setitem(sys.modules, module, None)  # importing it raises ImportError
    with pytest.raises(ImportError, match=r"asyncjax\[xarray\]"):
        res.to_xarray()
    with pytest.raises(ImportError, match=r"asyncjax\[xarray\]"):
        res.to_dataframe()
    assert main(["export", str(out), "--to", "zarr"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("asyncjax: error: ") and "asyncjax[xarray]" in err and "\n" not in err
