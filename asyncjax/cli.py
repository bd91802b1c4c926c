"""The ``asyncjax`` command.

    asyncjax reproduce NAME [--out DIR] [--seeds N] [--quick]   run a paper preset
    asyncjax reproduce --list                                   name the presets
    asyncjax run CONFIG.toml [--out DIR] [--resume]             run your own sweep
    asyncjax plot DIR                                           draw a saved sweep
    asyncjax bench [--quick] [--json FILE]                      throughput benchmark

On a CPU the command splits work over one XLA device per core (set
ASYNCJAX_CPU_DEVICES to change that).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asyncjax._devices import use_cpu_cores


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asyncjax", description="Batched simulator of asynchronous momentum SGD.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("reproduce", help="run a preset from the papers")
    r.add_argument("name", nargs="?", help="preset name (see --list)")
    r.add_argument("--list", action="store_true", help="list the presets and exit")
    r.add_argument("--out", type=Path, help="output folder (default runs/NAME)")
    r.add_argument("--seeds", type=int, help="number of seeds (overrides the preset)")
    r.add_argument("--quick", action="store_true", help="a small, fast version of the preset")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")

    u = sub.add_parser("run", help="run a sweep described by a TOML file")
    u.add_argument("config", type=Path)
    u.add_argument("--out", type=Path, help="output folder (default runs/CONFIG-NAME)")
    u.add_argument("--resume", action="store_true", help="continue a killed sweep in --out")
    u.add_argument("--no-progress", action="store_true")

    pl = sub.add_parser("plot", help="draw the results saved in a folder")
    pl.add_argument("dir", type=Path)

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
    from asyncjax.reproduce import reproduce

    summary = reproduce(args.name, args.out, quick=args.quick, seeds=args.seeds,
                        progress=False if args.no_progress else None)
    out = args.out or Path("runs") / args.name
    _print_summary(summary)
    print(f"wrote {out}/summary.json and figures in {summary['wall_s']:.1f} s")
    return 0


def _print_summary(summary: dict) -> None:
    if "threshold" in summary:
        print(f"{'momentum':>9} {'threshold':>10} {'95% CI':>17} {'predicted':>10}")
        for mu, t, ci, p, c in zip(summary["momentum"], summary["threshold"], summary["threshold_ci"],
                                   summary["predicted"], summary["censored"]):
            flag = " (censored)" if c else ""
            print(f"{mu:9.3g} {t:10.1f} [{ci[0]:6.1f}, {ci[1]:6.1f}] {p:10d}{flag}")


def _cmd_run(args: argparse.Namespace) -> int:
    from asyncjax import plotting
    from asyncjax.config import load_config
    from asyncjax.sweep import sweep

    spec = load_config(args.config)
    out = args.out or Path("runs") / args.config.stem
    res = sweep(spec.problem, spec.grid, out=out, resume=args.resume,
                progress=False if args.no_progress else None, **spec.sweep_kwargs())
    plotting.save(plotting.error_vs_step(res), out / "error_vs_step.png")
    t = res.attrs["timing"]
    print(f"{res}\nwrote {out}/results.npz and error_vs_step.png ({t['wall_s']:.1f} s, "
          f"{t['chunks_computed']} of {t['chunks']} chunks computed)")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from asyncjax import plotting
    from asyncjax.results import Results

    path = args.dir / "results.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist (run a sweep with --out {args.dir} first)")
    res = Results.load(path)
    out = plotting.save(plotting.error_vs_step(res), args.dir / "error_vs_step.png")
    print(f"wrote {out}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from asyncjax.bench import run_benchmark

    run_benchmark(quick=args.quick, json_path=str(args.json) if args.json else None)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    use_cpu_cores()
    commands = {"reproduce": _cmd_reproduce, "run": _cmd_run, "plot": _cmd_plot, "bench": _cmd_bench}
    try:
        return commands[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"asyncjax: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nasyncjax: interrupted (finished chunks are saved; rerun with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
