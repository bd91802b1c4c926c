"""The ``asyncjax`` command.

    asyncjax reproduce NAME [--out DIR] [--seeds N] [--quick] [--overwrite] [--keep-chunks]
                                                                run a paper preset
    asyncjax reproduce --list                                   name the presets
    asyncjax run CONFIG.toml [--out DIR] [--resume] [--overwrite] [--keep-chunks]
                                                                run your own sweep
        [--coordinator HOST:PORT --num-processes N --process-id I | --distributed] [--timeout S]
                                                                as one process of a jax.distributed job
    asyncjax plan CONFIG.toml [--quick] [--chunk-size N] [--buckets N] [--json FILE]
                                                                print a sweep's plan without running it
    asyncjax plot DIR                                           draw a saved sweep
    asyncjax export DIR --to netcdf|zarr                        write it as DIR/results.nc or .zarr
    asyncjax bench [--quick] [--json FILE]                      throughput benchmark
    asyncjax --version

Progress goes to stderr (``--progress``/``--no-progress``; on by default): a line
as each stage starts (planning, compiling, assembling, compressing, figures) and
a tqdm bar over the chunks, redrawn in a terminal and a plain line at most every
10 s in a log. ``reproduce`` ends with the preset's headline table on stdout,
the numbers of its summary.json. On a CPU the
command splits work over one XLA device per core (set ASYNCJAX_CPU_DEVICES to
change that).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from asyncjax._devices import use_cpu_cores
from asyncjax._version import __version__
from asyncjax.sweep.distributed import DistributedError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="asyncjax", description="Batched simulator of asynchronous momentum SGD."
    )
    p.add_argument("--version", action="version", version=f"asyncjax {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def progress_flag(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="progress on stderr, also when it is not a terminal (default: on)",
        )

    def keep_chunks_flag(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--keep-chunks",
            action="store_true",
            help="keep the chunk files in OUT/chunks once results.npz is written (by default they "
            "are deleted then; a run stopped earlier keeps them for --resume)",
        )

    r = sub.add_parser("reproduce", help="run a preset from the papers")
    r.add_argument("name", nargs="?", help="preset name (see --list)")
    r.add_argument("--list", action="store_true", help="list the presets and exit")
    r.add_argument("--out", type=Path, help="output folder (default runs/NAME)")
    r.add_argument("--seeds", type=int, help="number of seeds (overrides the preset)")
    r.add_argument("--quick", action="store_true", help="a small, fast version of the preset")
    r.add_argument(
        "--overwrite",
        action="store_true",
        help="replace other asyncjax results in --out (by default such a folder is refused)",
    )
    keep_chunks_flag(r)
    progress_flag(r)

    u = sub.add_parser("run", help="run a sweep described by a TOML file")
    u.add_argument("config", type=Path)
    u.add_argument("--out", type=Path, help="output folder (default runs/CONFIG-NAME)")
    u.add_argument("--resume", action="store_true", help="continue a killed sweep in --out")
    u.add_argument(
        "--overwrite", action="store_true", help="replace another sweep's results in --out"
    )
    keep_chunks_flag(u)
    progress_flag(u)
    d = u.add_argument_group(
        "multi-process (jax.distributed; --out must be a folder every process reaches)"
    )
    d.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0's coordinator")
    d.add_argument("--num-processes", type=int, metavar="N", help="processes in the job")
    d.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0..N-1")
    d.add_argument(
        "--distributed",
        action="store_true",
        help="join the job that jax.distributed.initialize() detects (SLURM, TPU pods, ...)",
    )
    d.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds to wait for the other processes before stopping with an error (default 600)",
    )

    pn = sub.add_parser(
        "plan", help="print a sweep's chunks, memory and time estimate without running it"
    )
    pn.add_argument(
        "config",
        type=Path,
        help="a sweep TOML (a preset's [quick] table is ignored without --quick)",
    )
    pn.add_argument("--quick", action="store_true", help="plan the [quick] size of a preset's TOML")
    pn.add_argument(
        "--chunk-size", type=int, help="most trajectories per compiled call (default: from memory)"
    )
    pn.add_argument(
        "--buckets", type=int, help="most delay rings (default: 6 where memory binds, else 1)"
    )
    pn.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        help="skip the short calibration run (no time estimate)",
    )
    pn.add_argument("--json", type=Path, help="also write the plan to this JSON file")

    pl = sub.add_parser("plot", help="draw the results saved in a folder")
    pl.add_argument(
        "dir",
        type=Path,
        help="a folder with results.npz (or a preset's folder), or the .npz itself",
    )

    ex = sub.add_parser(
        "export",
        help="write saved results as NetCDF or Zarr (needs the extra: pip install 'asyncjax[xarray]')",
    )
    ex.add_argument(
        "dir",
        type=Path,
        help="a folder with results.npz (or a preset's folder), or the .npz itself",
    )
    ex.add_argument(
        "--to",
        default="netcdf",
        metavar="netcdf|zarr",
        help="netcdf: results.nc (NetCDF-4); zarr: results.zarr (Zarr format 2); default netcdf",
    )

    b = sub.add_parser("bench", help="throughput benchmark against NumPy and a Python loop")
    b.add_argument("--quick", action="store_true")
    b.add_argument("--json", type=Path, help="write the figures to this JSON file")
    return p


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from asyncjax.experiments import available

    if args.list:
        from asyncjax.experiments import load_preset

        for name in available():
            print(f"{name:24s} {load_preset(name).get('title', '')}")
        return 0
    if not args.name:
        raise ValueError("name a preset, or pass --list")
    from asyncjax.reproduce import headline, reproduce

    summary = reproduce(
        args.name,
        args.out,
        quick=args.quick,
        seeds=args.seeds,
        progress=args.progress,
        overwrite=args.overwrite,
        keep_chunks=args.keep_chunks,
    )
    out = args.out or Path("runs") / args.name
    print(headline(args.name, summary))
    _print_divergence(summary["diverged_trajectories"], summary["trajectories"])
    print(
        f"wrote {out}/summary.json and figures in {summary['wall_s']:.1f} s "
        f"({_written(out)} in {out})"
    )
    return 0


def _print_divergence(diverged: int, total: int) -> None:
    share = diverged / total if total else 0.0
    rule = " (counted as failed, error = worst value, in every mean and figure)" if diverged else ""
    print(f"diverged: {diverged} of {total} trajectories ({share:.1%}){rule}")


def _join_job(args: argparse.Namespace) -> bool:
    """Joins the jax.distributed job the flags describe; whether there is one."""
    flags = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed and all(f is None for f in flags):
        return False
    if args.timeout <= 0:
        raise ValueError(f"--timeout must be > 0 seconds, got {args.timeout:g}")
    from asyncjax.sweep.distributed import initialize

    initialize(*flags, auto=args.distributed, timeout=args.timeout)
    global _JOINED
    _JOINED = True
    return True


_JOINED = (
    False  # this process joined a jax.distributed job (errors then skip JAX's shutdown barrier)
)


def _cmd_run(args: argparse.Namespace) -> int:
    joined = _join_job(args)  # bad flags fail here, before anything reads the config or compiles
    from asyncjax import plotting
    from asyncjax._io import ensure_dir
    from asyncjax.sweep import sweep
    from asyncjax.sweep.progress import stage

    spec = _sweep_config(args.config, quick=False)
    _check_run_analysis(spec.analysis, args.config)
    out = args.out or Path("runs") / args.config.stem
    created = not out.exists()
    ensure_dir(out)  # a bad --out fails here, before anything compiles
    source = {"config": str(args.config.resolve()), "toml": args.config.read_text()}
    kwargs = {**spec.sweep_kwargs(), **({"timeout": args.timeout} if joined else {})}
    try:
        res = sweep(
            spec.problem,
            spec.grid,
            out=out,
            resume=args.resume,
            overwrite=args.overwrite,
            keep_chunks=args.keep_chunks,
            progress=args.progress,
            metadata=source,
            **kwargs,
        )
    except ValueError:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # refused input leaves no empty folder behind
        raise
    t = res.attrs["timing"]
    if joined:
        import jax

        if jax.process_index() != 0:
            print(
                f"process {jax.process_index()} of {jax.process_count()}: done; process 0 wrote {out}/results.npz"
            )
            return 0
    by = f" by {t['processes']} processes" if joined else ""
    stage("drawing the figures", args.progress)
    plotting.save(plotting.error_vs_step(res), out / "error_vs_step.png")
    figures = "error_vs_step.png" + _wallclock_figures(res, out, spec.analysis.get("target"))
    print(res)
    flags = res["diverged_at"] >= 0
    _print_divergence(int(flags.sum()), int(flags.size))
    print(
        f"wrote {out}/results.npz and {figures} ({t['wall_s']:.1f} s, "
        f"{t['chunks_computed']} of {t['chunks']} chunks computed{by}; {_written(out)} in {out})"
    )
    return 0


def _sweep_config(path: Path, quick: bool):
    """A sweep TOML for ``run`` and ``plan``: a preset's ``[quick]`` table sets the size with --quick
    (``plan`` only), else is ignored; a file of several sweeps (a preset's ``[sweep.NAME]`` tables)
    is refused with what to do instead."""
    from asyncjax._toml import TOMLError, load_toml
    from asyncjax.config import ConfigError, load_config, parse_config

    try:
        cfg = load_toml(path.read_text())
    except (OSError, TOMLError):
        return load_config(path)  # raises its own clear error
    if "sweep" in cfg:
        raise ConfigError(
            f"{path} holds several sweeps ([sweep.NAME] tables, as a preset of asyncjax "
            "reproduce does); run it with asyncjax reproduce, or copy one sweep's tables "
            "([sweep.NAME.problem] -> [problem], ...) into a file of their own"
        )
    small = cfg.pop("quick", None)
    if small is None and quick:
        raise ConfigError(f"{path} has no [quick] table; drop --quick")
    if quick:
        grid, run = cfg.get("grid", {}), cfg.get("run", {})
        if "seeds" in small and "seeds" in grid:
            grid["seeds"] = min(small["seeds"], grid["seeds"])
        if "steps" in small:
            run["steps"] = small["steps"]
    return parse_config(cfg, str(path), base_dir=path.parent)


def _written(out: Path) -> str:
    """The bytes the output folder holds, e.g. ``"168.2 MiB"``."""
    from asyncjax.sweep.limits import used_bytes
    from asyncjax.sweep.memory import binary_size

    return binary_size(used_bytes(out))


def _cmd_plan(args: argparse.Namespace) -> int:
    from asyncjax.sweep import plan
    from asyncjax.sweep.memory import mib

    spec = _sweep_config(args.config, args.quick)
    kwargs = spec.sweep_kwargs()
    chunk = kwargs.pop("chunk_size", None)  # the config's, unless --chunk-size overrides it
    if args.chunk_size is not None:
        chunk = args.chunk_size
    sp = plan(spec.problem, spec.grid, chunk_size=chunk, buckets=args.buckets, **kwargs)
    info = sp.describe()
    print(
        f"plan for {args.config}: {info['trajectories']:,} trajectories x {info['steps']:,} steps on "
        f"{info['devices']}, budget {mib(info['budget_bytes_per_device'])} per device"
    )
    _print_plan(info)
    from asyncjax.sweep.limits import problems

    found = problems(sp, sp.prepared)
    for problem in found:  # what `asyncjax run` would refuse, said before anything is run
        print(f"asyncjax: warning: {problem}", file=sys.stderr)
    if args.calibrate and found:
        print("time estimate: none (the sweep does not fit this machine; see the warnings)")
    elif args.calibrate:
        cal = sp.calibrate()
        info["calibration"] = cal
        print(
            f"time estimate: {cal['estimate_s']:.1f} s ({cal['rate']:.3g} trajectory-steps/s in a short "
            f"calibration run, plus {cal['compile_s']:.1f} s to compile each of {len(info['buckets'])} ring(s))"
        )
    if args.json:
        from asyncjax._io import write_json

        write_json(args.json, info)
        print(f"wrote {args.json}")
    return 0


def _print_plan(info: dict) -> None:
    """The buckets table and the memory lines of ``asyncjax plan``."""
    from asyncjax.sweep.memory import mib

    print(
        f"{'ring':>6} {'points':>7} {'chunks':>7} {'chunk (seeds x points)':>23} {'bytes/trajectory':>17} "
        f"{'(needed)':>9} {'chunk peak, all devices':>24}"
    )
    for b in info["buckets"]:
        shape = f"{b['chunk_shape'][0]} x {b['chunk_shape'][1]}"
        print(
            f"{b['buffer']:>6} {b['points']:>7} {b['chunks']:>7} {shape:>23} {b['bytes_per_trajectory']:>17,} "
            f"{b['bytes_per_trajectory_needed']:>9,} {mib(b['peak_bytes']):>24}"
        )
    print(
        f"peak memory: {mib(info['peak_bytes'])} over all devices (the largest chunk; chunks run one "
        "after another, each split across the devices)"
    )
    print(
        f"every trajectory at once: {mib(info['resident_bytes'])} "
        f"(one ring for every point: {mib(info['resident_bytes_one_ring'])}); "
        f"results in host memory: {mib(info['results_bytes'])}"
    )


def _check_run_analysis(analysis: dict, path: Path) -> None:
    """``asyncjax run`` reads one [analysis] key, the speedup's target error: check it before running."""
    import math

    from asyncjax._validate import did_you_mean

    ignored = []
    for key in analysis:
        if key != "target":
            if did_you_mean(key, ["target"]):
                raise ValueError(
                    f"{path}: [analysis] has unknown key {key!r} (did you mean 'target'?); "
                    "`asyncjax run` reads only target (the error level of the wall-clock speedup)"
                )
            ignored.append(key)
    if ignored:  # e.g. a preset's own settings: said, not silently dropped
        print(
            f"asyncjax: note: {path}: `asyncjax run` reads only [analysis] target; ignoring "
            f"{', '.join(ignored)} (settings of the presets' analyses)",
            file=sys.stderr,
        )
    target = analysis.get("target")
    if target is not None and (
        isinstance(target, bool)
        or not isinstance(target, (int, float))
        or not math.isfinite(target)
        or target <= 0
    ):
        raise ValueError(f"{path}: [analysis] target must be a positive number, got {target!r}")


def _wallclock_figures(res, out: Path, target: float | None = None) -> str:
    """The worker model's figures (error against wall-clock time, speedup, staleness); their names."""
    if "wall_time" not in res:
        return ""
    from asyncjax.wallclock_plots import save_figures

    table = save_figures(res, out, target=target)
    names = ", error_vs_wallclock.png" + (", staleness.png" if "staleness_hist" in res else "")
    if not table:
        return names
    if "skipped" in table:
        print(f"asyncjax: note: no speedup figure: {table['skipped']}", file=sys.stderr)
        return names
    at = ", ".join(f"{k}={v:g}" for k, v in table["at"].items())
    where = f" at {at} (every point: speedup.json)" if at else ""
    print(
        f"wall-clock time to error <= {table['target']:.3g} and speedup against M = {table['reference']:g}{where}:"
    )
    for m, t, s_, ci in zip(
        table["workers"], table["wall_time_to_target"], table["speedup"], table["speedup_ci"]
    ):
        print(f"  M={m:<5g} time {t:10.4g}  speedup {s_:7.3g}  [{ci[0]:.3g}, {ci[1]:.3g}]")
    return names + ", speedup.png"


def _cmd_plot(args: argparse.Namespace) -> int:
    from asyncjax import plotting
    from asyncjax.results import Results

    target = args.dir
    if target.is_file():
        files = [target]
    elif not target.exists():
        raise FileNotFoundError(f"{target} does not exist (run a sweep with --out {target} first)")
    elif (target / "results.npz").exists():
        files = [target / "results.npz"]
    else:
        files = sorted(target.glob("*/results.npz"))
        if not files:
            unfinished = (target / "chunks").is_dir() or (target / "sweep.json").exists()
            todo = (
                f"its sweep did not finish: rerun it with --out {target} --resume"
                if unfinished
                else f"run a sweep with --out {target} first"
            )
            raise FileNotFoundError(
                f"{target} holds no results.npz, nor do its subfolders ({todo})"
            )
        print(
            f"{target} holds the sweeps {', '.join(str(f.parent.name) for f in files)}; drawing each"
        )
    loaded = [(path, Results.load(path)) for path in files]  # every file is checked before drawing
    for path, res in loaded:
        name = "error_vs_step.png" if path.stem == "results" else f"{path.stem}_error_vs_step.png"
        out = plotting.save(plotting.error_vs_step(res), path.with_name(name))
        flags = res["diverged_at"] >= 0
        print(
            f"wrote {out}{_wallclock_figures(res, path.parent)}  "
            f"(diverged: {int(flags.sum())} of {flags.size} trajectories)"
        )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from asyncjax.results import Results

    suffix = {"netcdf": ".nc", "zarr": ".zarr"}.get(args.to)
    if suffix is None:
        raise ValueError(f"--to must be netcdf or zarr, got {args.to!r}")
    target = args.dir
    if target.is_file():
        files = [target]
    elif not target.exists():
        raise FileNotFoundError(f"{target} does not exist (run a sweep with --out {target} first)")
    else:
        files = [target / "results.npz"] if (target / "results.npz").exists() else []
        files = files or sorted(target.glob("*/results.npz"))  # a preset of several sweeps
        if not files:
            raise FileNotFoundError(
                f"{target} holds no results.npz, nor do its subfolders (run a sweep with "
                f"--out {target}, or finish it with --resume)"
            )
    loaded = [(path, Results.load(path)) for path in files]  # every file is checked first
    for path, res in loaded:
        dest = path.with_suffix(suffix)
        (res.to_netcdf if args.to == "netcdf" else res.to_zarr)(dest)
        print(f"wrote {dest}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from asyncjax.bench import run_benchmark

    run_benchmark(quick=args.quick, json_path=str(args.json) if args.json else None)
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
    print(f"asyncjax: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    use_cpu_cores()
    commands = {
        "reproduce": _cmd_reproduce,
        "run": _cmd_run,
        "plan": _cmd_plan,
        "plot": _cmd_plot,
        "export": _cmd_export,
        "bench": _cmd_bench,
    }
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            code = commands[args.command](args)
        except BrokenPipeError:  # `asyncjax ... | head`: the reader has all it wanted
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
            code = 0
        # bad input, bad paths, a missing extra, a failed peer: a message, no traceback
        except (ValueError, OSError, ImportError, DistributedError) as err:
            print(f"asyncjax: error: {err}", file=sys.stderr)
            code = 3 if isinstance(err, DistributedError) else 2
        except KeyboardInterrupt:
            print(
                "\nasyncjax: interrupted (finished chunks are saved; rerun with --resume)",
                file=sys.stderr,
            )
            code = 130
    if _JOINED and code != 0:  # JAX's exit-time shutdown would wait for the failed peers: leave now
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
