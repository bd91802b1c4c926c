"""Multi-process sweeps: two local processes of one jax.distributed job, a coordinator on localhost."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from _child import child_env

import asyncjax as aj
from asyncjax.cli import main
from asyncjax.config import load_config
from asyncjax.results import Results

CONFIG = """
[problem]
eigenvalues = [4.0, 3.0, 2.0, 1.0]
[grid]
momentum = [0.5, 0.99]
delay = [0, 3, 7]
lr = 0.02
seeds = {seeds}
[run]
steps = {steps}
record_every = 100
chunk_size = 6
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _config(tmp_path, seeds: int, steps: int):
    path = tmp_path / "sweep.toml"
    path.write_text(CONFIG.format(seeds=seeds, steps=steps))
    return path


def _launch(cfg, out, port: int, pid: int, log, *extra: str) -> subprocess.Popen:
    """One process of a two-process job, on one CPU device, its output in ``log``."""
    env = child_env(ASYNCJAX_CPU_DEVICES="1", PYTHONUNBUFFERED="1")
    cmd = [
        sys.executable,
        "-m",
        "asyncjax.cli",
        "run",
        str(cfg),
        "--out",
        str(out),
        "--coordinator",
        f"localhost:{port}",
        "--num-processes",
        "2",
        "--process-id",
        str(pid),
        "--no-progress",
        *extra,
    ]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def _reference(cfg):
    spec = load_config(cfg)
    kw = {k: v for k, v in spec.sweep_kwargs().items() if k != "chunk_size"}
    return aj.sweep(spec.problem, spec.grid, **kw)


def _assert_identical(a, b):
    assert set(a.data) == set(b.data)
    for name in a.data:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_two_processes_assemble_results_bit_identical_to_one(tmp_path):
    """Two processes share the 8 one-seed chunks; process 0 assembles what both wrote, bit for bit."""
    cfg, out = _config(tmp_path, seeds=8, steps=400), tmp_path / "out"
    port = _free_port()
    logs = [open(tmp_path / f"p{i}.log", "w") for i in range(2)]
    procs = [_launch(cfg, out, port, i, logs[i], "--timeout", "120") for i in range(2)]
    codes = [p.wait(timeout=240) for p in procs]
    text = [(tmp_path / f"p{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], text
    assert "8 of 8 chunks computed by 2 processes" in text[0]
    assert "process 1 of 2: done" in text[1]
    res = Results.load(out / "results.npz")
    assert res.attrs["timing"]["processes"] == 2
    _assert_identical(res, _reference(cfg))


@pytest.mark.slow  # 19 s; the fast set keeps the two-process run and its bit-identical assembly
def test_a_killed_process_stops_its_peer_clearly_and_resume_redoes_nothing(tmp_path, capsys):
    """Process 1 is SIGKILLed after its first chunk: process 0 stops with a clear error within its timeout,
    the finished chunks stay, and a one-process --resume computes only the missing chunks."""
    cfg, out = _config(tmp_path, seeds=16, steps=30000), tmp_path / "out"
    port = _free_port()
    logs = [open(tmp_path / f"p{i}.log", "w") for i in range(2)]
    procs = [_launch(cfg, out, port, i, logs[i], "--timeout", "10") for i in range(2)]
    # chunk j holds seed j and goes to process j % 2: an odd first seed in a file name is process 1's work
    deadline = time.monotonic() + 180
    while not list((out / "chunks").glob("chunk-s000000[13579]-*.npz")):
        assert procs[1].poll() is None and time.monotonic() < deadline, (
            tmp_path / "p1.log"
        ).read_text()
        time.sleep(0.02)
    procs[1].send_signal(signal.SIGKILL)
    t_kill = time.monotonic()
    code = procs[0].wait(timeout=120)
    waited = time.monotonic() - t_kill
    text = (tmp_path / "p0.log").read_text()
    assert code == 3, text
    assert (
        "asyncjax: error: process 0 of 2 waited 10 s for process(es) 1 to finish their share"
        in text
    )
    assert "--resume" in text and "Traceback" not in text
    assert waited < 100, waited  # our timeout, not JAX's heartbeat, ended it
    assert not (out / "results.npz").exists()
    on_disk = len(list((out / "chunks").glob("chunk-*.npz")))
    assert 1 <= on_disk < 16

    assert main(["run", str(cfg), "--out", str(out), "--resume", "--no-progress"]) == 0
    stdout = capsys.readouterr().out
    assert re.search(rf"\b{16 - on_disk} of 16 chunks computed", stdout), stdout
    res = Results.load(out / "results.npz")
    assert res.attrs["timing"]["chunks_computed"] == 16 - on_disk
    _assert_identical(res, _reference(cfg))


SCRIPT = """
import sys
import jax
jax.config.update("jax_num_cpu_devices", 1)
jax.distributed.initialize(sys.argv[1], 2, int(sys.argv[2]))
import numpy as np
import asyncjax as aj
grid = aj.Grid(momentum=[0.5, 0.9], delay=[0, 4], lr=0.02, seed=range(6))
res = aj.sweep(aj.StreamingPCA([3.0, 2.0, 1.0]), grid, steps=300, record_every=100, chunk_size=4,
               out=sys.argv[3], timeout=120)
np.save(sys.argv[3] + f"/error-{sys.argv[2]}.npy", res["error"])
print("computed", res.attrs["timing"]["chunks_computed"], "of", res.attrs["timing"]["chunks"])
"""


def test_sweep_from_python_inside_a_jax_distributed_job(tmp_path):
    """Every process of the job gets the whole results back; process 0 writes results.npz."""
    script, out = tmp_path / "job.py", tmp_path / "out"
    script.write_text(SCRIPT)
    address = f"localhost:{_free_port()}"
    env = child_env()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), address, str(i), str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    texts = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], texts
    assert all(
        "computed 6 of 6" in t for t in texts
    )  # six one-seed chunks, three per process, counted by all
    whole = Results.load(out / "results.npz")["error"]
    for i in range(2):
        np.testing.assert_array_equal(np.load(out / f"error-{i}.npy"), whole)
    ref = aj.sweep(
        aj.StreamingPCA([3.0, 2.0, 1.0]),
        aj.Grid(momentum=[0.5, 0.9], delay=[0, 4], lr=0.02, seed=range(6)),
        steps=300,
        record_every=100,
    )
    np.testing.assert_array_equal(ref["error"], whole)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--coordinator", "localhost:1234"], "missing --num-processes, --process-id"),
        (
            ["--coordinator", "localhost:1234", "--num-processes", "2", "--process-id", "2"],
            "--process-id must be in 0..1",
        ),
        (
            ["--coordinator", "localhost:1234", "--num-processes", "0", "--process-id", "0"],
            "--num-processes must be >= 1",
        ),
        (
            ["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"],
            "must be HOST:PORT",
        ),
        (["--num-processes", "2", "--process-id", "0"], "missing --coordinator"),
        (["--distributed", "--process-id", "0"], "drop --coordinator/--num-processes/--process-id"),
        (
            [
                "--coordinator",
                "localhost:1234",
                "--num-processes",
                "2",
                "--process-id",
                "0",
                "--timeout",
                "0",
            ],
            "--timeout must be > 0",
        ),
    ],
)
def test_bad_multi_process_flags_are_clear_errors_before_anything_runs(
    tmp_path, capsys, flags, message
):
    cfg = _config(tmp_path, seeds=2, steps=100)
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before the folder was made


def test_distributed_error_names_the_waiting_process_and_the_remedy():
    from asyncjax.sweep.distributed import DistributedError, Group

    class DeadPeer:
        def wait_at_barrier(self, name, timeout_ms):
            raise RuntimeError(
                "DEADLINE_EXCEEDED: Barrier timed out.\n# of tasks that reached the barrier: 1/2.\n"
                "The first task at the barrier: 0. Some timed out task names:\n1\n"
            )

    g = Group.__new__(Group)
    g.client, g.index, g.size, g.tag, g.timeout = DeadPeer(), 0, 2, "t", 3.0
    with pytest.raises(
        DistributedError,
        match=r"process 0 of 2 waited 3 s for process\(es\) 1 to finish .* "
        r"Barrier timed out\.$",
    ):
        g.barrier("computed", "finish their share")


@pytest.mark.skipif(
    any(k in os.environ for k in ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "TPU_NAME")),
    reason="runs inside a cluster environment that jax.distributed detects",
)
def test_distributed_outside_a_cluster_is_a_clear_error(tmp_path):
    cfg = _config(tmp_path, seeds=2, steps=100)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "asyncjax.cli",
            "run",
            str(cfg),
            "--out",
            str(tmp_path / "o"),
            "--distributed",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert (
        "--distributed found no cluster environment" in done.stderr
        and "Traceback" not in done.stderr
    )


def test_a_process_that_finds_no_coordinator_stops_within_its_timeout(tmp_path):
    """Process 1 of a job whose process 0 never started: a clear error after --timeout, not a silent wait."""
    cfg = _config(tmp_path, seeds=2, steps=100)
    with open(tmp_path / "p1.log", "w") as log:
        t0 = time.monotonic()
        proc = _launch(cfg, tmp_path / "out", _free_port(), 1, log, "--timeout", "3")
        rc = proc.wait(timeout=60)
    text = (tmp_path / "p1.log").read_text()
    assert rc == 3 and time.monotonic() - t0 < 30, text
    assert re.search(
        r"asyncjax: error: no coordinator answered at localhost:\d+ within 3 s", text
    ), text
    assert "joining" not in text  # it never tried to join
