"""Bad input fails before anything compiles, with a message that names the value."""

import numpy as np
import pytest

import asyncjax as aj
from asyncjax.config import ConfigError, parse_config


@pytest.fixture
def no_compile():
    before = aj.compile_count()
    yield
    assert aj.compile_count() == before, "a bad input reached the compiler"


def grid(**kw):
    base = dict(momentum=[0.5], delay=[0], lr=1e-3, seed=range(2))
    base.update(kw)
    return aj.Grid(**base)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(momentum=[0.5, 1.0]), r"momentum must lie in \(-1, 1\); got 1\.0"),
        (dict(momentum=[1.5]), r"got 1\.5"),
        (dict(lr=0.0), r"lr must be > 0; got 0\.0"),
        (dict(lr=[1e-3, -2e-3]), r"got -0\.002"),
        (dict(delay=[0, 2.5]), r"delay must be a non-negative integer; got 2\.5"),
        (dict(delay=[-1]), r"got -1$"),  # as written: a count is not echoed as -1.0
        (dict(momentum=[float("nan")]), r"momentum contains a non-finite value \(nan"),
        (dict(seed=[-3]), r"seeds must lie in"),
        (dict(workers=[3]), r"unknown grid axis 'workers'.*allowed: momentum, lr, delay, seed"),
    ],
)
def test_sweep_rejects(pca, no_compile, kw, match):
    with pytest.raises(ValueError, match=match):
        aj.sweep(pca, grid(**kw), steps=10, record_every=5)


def test_delay_beyond_buffer(pca, no_compile):
    with pytest.raises(ValueError, match=r"delay=40 does not fit the delay buffer of 11"):
        aj.sweep(pca, grid(delay=[0, 40]), steps=10, record_every=5, buffer=11)


def test_steps_not_multiple_of_record_interval(pca, no_compile):
    with pytest.raises(ValueError, match=r"steps=10 must be a multiple of record_every=3"):
        aj.sweep(pca, grid(), steps=10, record_every=3)


def test_missing_lr(pca, no_compile):
    with pytest.raises(ValueError, match="must set lr"):
        aj.sweep(pca, aj.Grid(momentum=[0.1]), steps=10, record_every=5)


def test_wrong_init_shape(pca, no_compile):
    with pytest.raises(ValueError, match=r"init must have shape \(4,\), got \(3,\)"):
        aj.sweep(pca, grid(), steps=10, record_every=5, init=[1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="init must be non-zero"):
        aj.simulate(pca, momentum=0.1, lr=1e-3, steps=10, init=np.zeros(4))


@pytest.mark.parametrize(
    "eig,match",
    [
        (
            [4.0, 3.0, np.nan, 1.0],
            r"eigenvalues contains a non-finite value \(nan at index \(2,\)\)",
        ),
        ([1.0, 3.0, 2.0], r"sorted in decreasing order, got \[1\.0, 3\.0, 2\.0\]"),
        ([3.0, 3.0, 1.0], r"eigengap.*lambda_1=3\.0, lambda_2=3\.0"),
        ([3.0, 1.0, -1.0], r"positive.*got -1\.0"),
        ([[4.0, 3.0]], r"eigenvalues must have 1 dimension"),
        ([4.0], r"at least 2 eigenvalues"),
    ],
)
def test_bad_spectrum(no_compile, eig, match):
    with pytest.raises(ValueError, match=match):
        aj.StreamingPCA(eig)


def test_bad_covariance(no_compile):
    with pytest.raises(ValueError, match=r"symmetric; entry \(0, 1\) = 0\.5 but \(1, 0\) = 0\.0"):
        aj.StreamingPCA.from_covariance([[2.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"positive definite; its smallest eigenvalue is -1\.0"):
        aj.StreamingPCA.from_covariance([[2.0, 0.0], [0.0, -1.0]])
    with pytest.raises(ValueError, match=r"square, got shape \(2, 3\)"):
        aj.StreamingPCA.from_covariance(np.ones((2, 3)))
    with pytest.raises(ValueError, match="distribution must be one of"):
        aj.StreamingPCA([2.0, 1.0], "cauchy")


def test_bad_data_set(no_compile):
    with pytest.raises(ValueError, match=r"data contains a non-finite value"):
        aj.StreamingPCA.from_data([[1.0, np.inf], [0.0, 1.0], [2.0, 2.0]])
    with pytest.raises(ValueError, match=r"at least 2 rows"):
        aj.StreamingPCA.from_data([[1.0, 2.0]])


def test_unknown_delay_model(pca, no_compile):
    with pytest.raises(ValueError, match=r"unknown delay model 'poisson'"):
        aj.sweep(pca, grid(), steps=10, record_every=5, delay_model="poisson")


def test_geometric_needs_at_least_one_worker(pca, no_compile):
    with pytest.raises(ValueError, match=r"workers must be >= 1; got 0\.5"):
        aj.sweep(
            pca,
            aj.Grid(workers=[0.5, 2], lr=1e-3),
            steps=10,
            record_every=5,
            delay_model="geometric",
        )


@pytest.mark.parametrize(
    "cfg,match",
    [
        ({"grid": {}, "run": {}}, r"missing \[problem\]"),
        (
            {"problem": {"eigenvalues": [2, 1]}, "grid": {"lr": 1e-3}, "run": {"record_every": 1}},
            r"\[run\] needs steps",
        ),
        (
            {"problem": {"eigenvalues": [2, 1], "colour": 1}, "grid": {}, "run": {}},
            r"unknown key\(s\) 'colour'",
        ),
        (
            {
                "problem": {"eigenvalues": [2, 1]},
                "grid": {"delay": {"start": 0, "stop": 5}},
                "run": {},
            },
            r"grid.delay: a range needs keys",
        ),
        (
            {"problem": {"eigenvalues": [2, 1]}, "grid": {"seeds": 0}, "run": {}},
            r"grid.seeds must be a positive",
        ),
    ],
)
def test_bad_config(cfg, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(cfg, "my.toml")


# ---------------------------------------------------------------- issue 7, item 6
def test_string_step_size_is_refused_in_python(pca, no_compile):
    with pytest.raises(ValueError, match=r"lr must be numeric, got the string '1e-3'"):
        aj.sweep(pca, grid(lr="1e-3"), steps=10, record_every=5)
    with pytest.raises(ValueError, match=r"momentum must be numeric"):
        aj.sweep(pca, grid(momentum=["0.5"]), steps=10, record_every=5)
    with pytest.raises(ValueError, match=r"norm_bound must be numeric"):
        aj.sweep(pca, grid(), steps=10, record_every=5, norm_bound="10")


def test_duplicate_seeds_are_refused(pca, no_compile):
    with pytest.raises(
        ValueError, match=r"seed values must be unique; \[3\] appear more than once"
    ):
        aj.sweep(pca, grid(seed=[1, 3, 3]), steps=10, record_every=5)


def test_zero_chunk_size_is_refused(pca, no_compile):
    with pytest.raises(ValueError, match=r"chunk_size must be >= 1, got 0"):
        aj.sweep(pca, grid(), steps=10, record_every=5, chunk_size=0)
    with pytest.raises(ValueError, match=r"chunk_size must be an integer, got 2.5"):
        aj.sweep(pca, grid(), steps=10, record_every=5, chunk_size=2.5)


def test_resume_needs_an_output_folder(pca, no_compile):
    with pytest.raises(ValueError, match=r"resume=True needs out=DIR"):
        aj.sweep(pca, grid(), steps=10, record_every=5, resume=True)


def test_geometric_workers_must_be_whole(pca, no_compile):
    with pytest.raises(ValueError, match=r"workers must be a whole number of workers; got 2\.5"):
        aj.sweep(
            pca,
            aj.Grid(workers=[2, 2.5], lr=1e-3),
            steps=10,
            record_every=5,
            delay_model="geometric",
        )
    with pytest.raises(ValueError, match=r"whole number"):
        aj.simulate(pca, momentum=0.0, lr=1e-3, delay=3.5, steps=10, delay_model="geometric")


BASE = {
    "problem": {"eigenvalues": [2.0, 1.0]},
    "grid": {"lr": 1e-3, "seeds": 2},
    "run": {"steps": 10, "record_every": 5},
}


def _with(**changes):
    cfg = {k: dict(v) for k, v in BASE.items()}
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            cfg.setdefault(section, {})[key] = value
        else:
            cfg[section] = value
    return cfg


@pytest.mark.parametrize(
    "changes,match",
    [
        (
            dict(grid__lr="1e-3"),
            r"grid\.lr must be a number or a list of numbers, got '1e-3' \(str\); remove the quotes",
        ),
        (dict(grid__momentum=[0.5, "0.9"]), r"grid\.momentum must be a number.*'0\.9'"),
        (dict(grid__seed=[1, 2, 2], grid__seeds=None), r"grid\.seed lists \[2\] more than once"),
        (
            dict(analysys={"window": 0.5}),
            r"unknown section\(s\) \[analysys\] \(did you mean \[analysis\]\?\)",
        ),
        (dict(colour=3), r"unknown top-level key\(s\) 'colour'"),
        (dict(titel="x"), r"'titel' \(did you mean 'title'\?\)"),
        (
            dict(grid__momentun=[0.5]),
            r"\[grid\] has unknown key\(s\) 'momentun' \(did you mean 'momentum'\?\)",
        ),
        (dict(run__record_evry=5), r"'record_evry' \(did you mean 'record_every'\?\)"),
        (dict(problem__eigenvalue=[2.0, 1.0]), r"'eigenvalue' \(did you mean 'eigenvalues'\?\)"),
    ],
)
def test_config_mistakes_are_named_with_a_suggestion(changes, match):
    cfg = _with(**changes)
    if cfg["grid"].get("seeds", 0) is None:
        del cfg["grid"]["seeds"]
    with pytest.raises(ConfigError, match=match):
        parse_config(cfg, "my.toml")


def test_valid_config_still_parses():
    spec = parse_config(_with(title="ok", analysis={"window": 0.5}), "my.toml")
    assert spec.grid.fixed["lr"] == 1e-3 and spec.analysis == {"window": 0.5}
