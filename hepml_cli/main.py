"""The ``hepml`` command: simulate, train, score, run studies, list runs, serve the app, manage its users.

This package sits above both ``hepml_core`` and ``app`` (the core never imports the app); heavy
modules are imported inside each command so ``hepml --help`` answers at once. Any HepmlError ends
in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

__all__ = ["main", "build_parser", "default_runs_dir"]


def default_runs_dir() -> Path:
    """``$HEPML_RUNS_DIR`` or ``./hepml-runs``."""
    return Path(os.environ.get("HEPML_RUNS_DIR", "hepml-runs"))


def _add_runs_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", type=Path, default=None,
                   help="folder of saved runs (default: $HEPML_RUNS_DIR or ./hepml-runs)")


def _add_quiet(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: a sub-command default would otherwise overwrite a global ``hepml --quiet``.
    p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="hepml", description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="write a built-in simulator's events to a file")
    p.add_argument("name", help="simulator name, e.g. ams-he")
    p.add_argument("-n", "--events", type=int, required=True, help="number of events")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sample", choices=("mc", "data"), default="mc")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .parquet or .csv")

    p = sub.add_parser("train", help="train a model from a YAML config; prints the run id last")
    p.add_argument("config", type=Path)
    _add_runs_dir(p)

    p = sub.add_parser("score", help="score events with a saved run: one file, or many files in parallel")
    p.add_argument("run_id")
    p.add_argument("input", help="events: file.parquet, file.csv or file.root:Tree; with -o OUT/ also a "
                                 "quoted glob such as 'data/*.root:Events'")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output .parquet (one input file), or a folder OUT/ for part-NNNNN.parquet files "
                        "(source_file, entry, scores), histograms.json and manifest.json (written last)")
    p.add_argument("--scheduler", default=None, metavar="local[:N]|tcp://HOST:PORT",
                   help="score the partitions on a Dask cluster: N local worker processes, or a running "
                        "scheduler (paths must be the same on its workers); default: in this process")
    p.add_argument("--step", type=int, default=None, help="entries per partition of a ROOT file (default 500000)")
    p.add_argument("--weight", default=None, help="event-weight column for the histograms (copied to the output)")
    p.add_argument("--bins", type=int, default=None, help="bins of each score histogram on [0, 1] (default 50)")
    p.add_argument("--force", action="store_true", help="replace the score files in a non-empty OUT/")
    _add_quiet(p)
    _add_runs_dir(p)

    p = sub.add_parser("study", help="run a built-in study headless and write its tables and report")
    p.add_argument("name", help="study name, e.g. ams-he")
    p.add_argument("--out", type=Path, required=True, help="folder for the CSV tables and report.html")
    p.add_argument("--events", type=int, default=None, help="MC events (default: the talk's size)")
    p.add_argument("--data-events", type=int, default=None, help="data events (default: scaled with --events)")
    p.add_argument("--epochs", type=int, default=None, help="epochs for every model (default: the study's)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--real", action="store_true",
                   help="run on the real data of ../shared/data where the study offers it (alice-pid)")
    p.add_argument("--scan", action="append", default=[], metavar="KEY=V1,V2",
                   help="run the study once per grid point of its settings (repeat for more axes; tuples as "
                        "37/15/4) and write OUT/scan.csv with each point's run ids and metrics")
    p.add_argument("--scheduler", default=None, metavar="local[:N]|tcp://HOST:PORT",
                   help="run the --scan grid points on a Dask cluster (default: one after the other here)")
    _add_quiet(p)
    _add_runs_dir(p)

    p = sub.add_parser("export", help="export a saved run's model to ONNX (NaN inputs mean missing)")
    p.add_argument("run_id")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .onnx")
    _add_runs_dir(p)

    p = sub.add_parser("runs", help="list or delete saved runs")
    p.add_argument("action", choices=("list", "delete"))
    p.add_argument("run_ids", nargs="*")
    _add_runs_dir(p)

    p = sub.add_parser("serve", help="start the web app and print its URL")
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--address", default="127.0.0.1", help="interface to bind (default: localhost only)")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.add_argument("--events", type=int, default=None, help="MC events for the first-start study training")
    p.add_argument("--epochs", type=int, default=None, help="epochs for the first-start study training")
    _add_runs_dir(p)
    from app.auth.roles import ROLES
    from app.auth.settings import add_auth_arguments  # light: no panel, tornado or argon2 at import

    add_auth_arguments(p)

    p = sub.add_parser("users", help="add, list or remove the users of a served app (hashed users file)")
    p.add_argument("action", choices=("add", "list", "remove"))
    p.add_argument("name", nargs="?", help="user name (add, remove)")
    p.add_argument("--users", type=Path, required=True, help="users file (.json or .yaml), written with mode 0600")
    p.add_argument("--role", choices=ROLES, default="analyst",
                   help="analyst: everything; reviewer: read-only (default analyst)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    p.add_argument("--force", action="store_true", help="replace an existing user's password and role")
    return parser


def _store(args):
    from hepml_core.runs import RunStore

    return RunStore(args.runs_dir or default_runs_dir())


def _callbacks(args):
    from hepml_core.training.callbacks import ProgressBar

    return [] if args.quiet else [ProgressBar()]


def _cmd_simulate(args) -> int:
    from hepml_core.io.write import write_frame_atomic
    from hepml_core.simulate.registry import simulate

    frame = simulate(args.name, args.events, seed=args.seed, sample=args.sample, progress=not args.quiet)
    write_frame_atomic(frame, args.output)
    print(f"wrote {len(frame):,} {args.name} {args.sample} events to {args.output}", file=sys.stderr)
    return 0


def _cmd_train(args) -> int:
    from hepml_core.pipeline import train_from_config

    run = train_from_config(str(args.config), _store(args), callbacks=_callbacks(args))
    summary = ", ".join(f"{k}={v:.4g}" for k, v in run.metrics.items() if isinstance(v, float))
    print(f"saved run in {run.path} ({summary})", file=sys.stderr)
    print(run.id)
    return 0


_ONE_FILE = re.compile(r".*\.(parquet|pq|parq|csv(\.(gz|bz2|xz|zip|zst))?)", re.IGNORECASE)


def _cmd_score(args) -> int:
    from hepml_core.exceptions import ConfigError

    if not _ONE_FILE.fullmatch(args.output.name):
        return _score_many(args)
    folder_only = [flag for flag, value in (("--scheduler", args.scheduler), ("--step", args.step),
                                            ("--weight", args.weight), ("--bins", args.bins), ("--force", args.force))
                   if value not in (None, False)]
    if folder_only or re.search(r"[*?\[]", args.input):
        what = " and ".join(folder_only) or f"the glob {args.input!r}"
        raise ConfigError(f"{what} writes a folder of partitions; give -o OUT/ instead of -o {args.output}")
    from hepml_core.data.schema import Schema
    from hepml_core.data.table import EventTable
    from hepml_core.io.write import write_frame_atomic
    from hepml_core.scoring.score import score_table

    run = _store(args).load(args.run_id)
    schema = Schema(features=run.schema.features, missing_value=run.schema.missing_value)
    table = EventTable.from_source(args.input, schema)
    scores = score_table(run, table).reset_index(drop=True)
    write_frame_atomic(scores, args.output)
    print(f"wrote {len(scores):,} scored events ({', '.join(scores.columns)}) to {args.output}", file=sys.stderr)
    return 0


def _score_many(args) -> int:
    """``hepml score RUN 'data/*.root:Events' -o OUT/ [--scheduler ...]``: partitions, histograms, manifest."""
    from hepml_core.scale.plan import DEFAULT_STEP
    from hepml_core.scale.scoring import DEFAULT_BINS, score_files

    run = _store(args).load(args.run_id)
    manifest = score_files(run, args.input, args.output, step=args.step or DEFAULT_STEP,
                           scheduler=args.scheduler, weight=args.weight, bins=args.bins or DEFAULT_BINS,
                           force=args.force, progress=not args.quiet)
    print(f"wrote {manifest['rows']:,} scored events from {len(manifest['files'])} files in "
          f"{len(manifest['partitions'])} partitions to {args.output}/ (histograms.json, manifest.json)",
          file=sys.stderr)
    return 0


def _study_settings(module, entry, args):
    """The study's settings dataclass with the command-line overrides that it has fields for."""
    from hepml_core.exceptions import ConfigError

    settings_cls = getattr(module, entry.settings)
    fields = settings_cls.__dataclass_fields__
    defaults = settings_cls()
    overrides = {"seed": args.seed}
    if args.events is not None:
        overrides["events"] = args.events
        if "data_events" in fields:  # keep the study's MC/data proportion unless told otherwise
            overrides["data_events"] = max(1000, round(args.events * defaults.data_events / defaults.events))
    if args.data_events is not None:
        if "data_events" not in fields:
            raise ConfigError(f"study {entry.name!r} has no data sample; drop --data-events")
        overrides["data_events"] = args.data_events
    if args.real:
        if "real" not in fields:
            raise ConfigError(f"study {entry.name!r} has no real-data mode; drop --real")
        overrides["real"] = True
    if args.epochs is not None:
        overrides.update({name: args.epochs for name in fields if name.endswith("epochs")})
    return settings_cls(**overrides)


def _cmd_study(args) -> int:
    from hepml_core.exceptions import ConfigError
    from hepml_core.studies.registry import get_study

    entry, module, tables = get_study(args.name)
    settings = _study_settings(module, entry, args)
    if args.scan:
        return _study_scan(args, entry, settings)
    if args.scheduler is not None:
        raise ConfigError("--scheduler runs the points of a --scan grid; add --scan KEY=V1,V2 or drop --scheduler")
    say = (lambda step: None) if args.quiet else (lambda step: print(f"[{entry.name}] {step}", file=sys.stderr))
    result = getattr(module, entry.run)(settings, _store(args), callbacks=_callbacks(args), progress=say)
    paths = tables.write_tables(result, args.out)
    from app.report import write_study_report  # the report reuses the app's plot builders

    paths.append(write_study_report(entry.name, result, args.out / "report.html"))
    for path in paths:
        print(path)
    return 0


def _study_scan(args, entry, settings) -> int:
    """``hepml study NAME --scan KEY=V1,V2 [--scheduler ...]``: one study run per grid point, OUT/scan.csv."""
    from hepml_core.scale.scan import SCAN_FILE, parse_scan, run_scan

    axes = parse_scan(args.scan, type(settings))
    table = run_scan(entry.name, settings, axes, args.runs_dir or default_runs_dir(), args.out,
                     scheduler=args.scheduler, progress=not args.quiet)
    print(f"[{entry.name}] ran {len(table)} grid points; run ids and metrics in {args.out / SCAN_FILE}",
          file=sys.stderr)
    print(args.out / SCAN_FILE)
    return 0


def _cmd_export(args) -> int:
    from hepml_core.onnx_export import export_onnx

    path = export_onnx(_store(args).load(args.run_id), args.output)
    print(f"wrote ONNX model of run {args.run_id} to {path}", file=sys.stderr)
    return 0


def _cmd_runs(args) -> int:
    store = _store(args)
    if args.action == "delete":
        for run_id in args.run_ids:
            store.delete(run_id)
            print(f"deleted {run_id}")
        return 0
    for info in store.list():
        print(f"{info.id}\t{info.kind}\t{info.status}\t{info.created}")
    return 0


def _cmd_serve(args) -> int:
    from app.auth.settings import auth_from_args, preflight

    auth = auth_from_args(args)
    preflight(auth, args.address)  # address, cookie secret, users file: refused before the app's heavy imports
    from app.serve import serve

    serve(port=args.port, address=args.address, runs_dir=args.runs_dir or default_runs_dir(), show=args.show,
          events=args.events, epochs=args.epochs, auth=auth)
    return 0


def _read_password(args) -> str:
    """The new password: the first line of stdin with --password-stdin, else typed twice (not echoed)."""
    from hepml_core.exceptions import ConfigError

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass(f"password for {args.name}: ")
    if first and getpass.getpass("again: ") != first:
        raise ConfigError("the two passwords differ; nothing was changed")
    return first


def _cmd_users(args) -> int:
    from hepml_core.exceptions import ConfigError

    from app.auth import users as users_file

    if args.action == "list":
        for user in sorted(users_file.load_users(args.users).values(), key=lambda u: u.name):
            print(f"{user.name}\t{user.role}\t{'password set' if user.hash else 'no password (OAuth role only)'}")
        return 0
    if not args.name:
        raise ConfigError(f"hepml users {args.action} needs a user name: hepml users {args.action} NAME --users FILE")
    if args.action == "remove":
        users_file.remove_user(args.users, args.name)
        print(f"removed {args.name} from {args.users}", file=sys.stderr)
        return 0
    users_file.check_name(args.name)
    if args.users.exists() and args.name in users_file.load_users(args.users) and not args.force:
        # said before asking for a password nobody would use
        raise ConfigError(f"user {args.name!r} already exists in {args.users}; add --force to replace the "
                          "password and role")
    user = users_file.add_user(args.users, args.name, _read_password(args), args.role, force=args.force)
    print(f"{'replaced' if args.force else 'added'} {user.name} ({user.role}) in {args.users}", file=sys.stderr)
    return 0


_COMMANDS = {"simulate": _cmd_simulate, "train": _cmd_train, "score": _cmd_score, "study": _cmd_study,
             "runs": _cmd_runs, "export": _cmd_export, "serve": _cmd_serve, "users": _cmd_users}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hepml`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.quiet:
        os.environ["HEPML_QUIET"] = "1"
    from hepml_core.exceptions import HepmlError

    try:
        return _COMMANDS[args.command](args)
    except HepmlError as err:
        print(f"hepml {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hepml {args.command}: interrupted; nothing was saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
