"""The `ray-asd` command line.

Exit codes:
    0    success.
    1    the command ran and found problems (failing rows in `data check`, trials that failed
         in `run`), or an unexpected error (a bug or an outage: one line, ``Type: message``).
    2    bad usage, configuration or data, or a path that cannot be read or written: one
         error line naming the key, file, row or path (a config error lists each problem).
    130  interrupted (Ctrl-C).

Every error is printed as ``ray-asd: error: ...`` on stderr, never as a traceback; errors that
are not ray-asd's own messages are followed by a hint line. The traceback: ``--debug`` or
``RAY_ASD_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from ray_asd import __version__
from ray_asd.errors import ConfigError
from ray_asd.failure import check_writable, root_cause

DEBUG_ENV = "RAY_ASD_DEBUG"
HINT = f"ray-asd: the traceback: ray-asd --debug ..., or {DEBUG_ENV}=1"


def _data_check(args: argparse.Namespace) -> int:
    from ray_asd.tasks import DataSource, load_table, make_task
    from ray_asd.tasks.check import check_table, format_report

    params = {"checker": args.checker} if args.checker else {}
    task = make_task(args.task, **params)
    source = DataSource(
        path=args.path,
        hub=args.hub,
        hub_config=args.hub_config,
        split=args.split,
        question_column=args.question_column,
        answer_column=args.answer_column,
        id_column=args.id_column,
        limit=args.limit,
    )
    table = load_table(task, source)
    if args.path:
        origin = str(args.path)
    elif args.hub or task.builtin is None:
        origin = f"hub {args.hub or (task.hub.path if task.hub else '?')} split {args.split}"
    else:
        origin = f"built-in data, split {args.split}"
    from_outside = bool(args.path or args.hub)
    report = check_table(task, table, origin, max_failures=args.show, compare_builtin=from_outside)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.n_failures == 0 else 1


def _trial(args: argparse.Namespace) -> int:
    from ray_asd.config_file import load_config
    from ray_asd.preflight import preflight

    config = load_config(args.config, args.set)
    preflight(config, str(args.config or "trial"))  # data counted, keys present: before any load
    out = args.out or Path("runs") / (args.config.stem if args.config else "trial")
    check_writable(out, "--out")
    from ray_asd.trial import run  # imports torch: after the checks

    if not args.resume and (out / "checkpoints").exists():
        raise ConfigError(
            f"{out} holds an earlier trial; pass --resume to continue it or --out elsewhere"
        )
    metrics = run(config, out)
    columns = [c for c in TABLE_COLUMNS if c in metrics.columns]
    print(metrics[columns].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"results in {out}: metrics.csv, metrics.json, items.jsonl, checkpoints/")
    return 0


def _run(args: argparse.Namespace) -> int:
    from ray_asd.experiment import load_experiment
    from ray_asd.preflight import preflight

    config = load_experiment(args.config, args.set)
    where = str(args.config)
    preflight(config, where)  # data counted, keys present: before Ray
    # Also checked by run_experiment; here it fails before Ray and torch import (9-16 s).
    check_writable(config.storage_folder(where), f"{where}: storage")
    from ray_asd.runner import format_outcome, run_experiment  # imports Ray: after validation

    outcome = run_experiment(config, where=where, resume=args.resume, address=args.address)
    print(format_outcome(outcome))
    return 1 if outcome.errors else 0


def _report(args: argparse.Namespace) -> int:
    from ray_asd.tracking import default_uri

    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri is None:  # `ray-asd run`'s default store: storage runs/ of the working directory
        store = Path("runs") / "mlflow.db"
        if not store.is_file():
            raise ConfigError(
                f"--tracking-uri: no MLFLOW_TRACKING_URI and no {store} here; give the URI "
                "of the experiment's store (e.g. sqlite:///runs/mlflow.db, http://host:5000)"
            )
        uri = default_uri(Path("runs"))
    out = args.out or Path("reports") / args.experiment
    check_writable(out, "--out")
    from ray_asd.report import build_report  # imports matplotlib: after the checks

    report = build_report(uri, args.experiment, out)
    print(f"open {report.folder / 'report.html'}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ray_asd.export import check_out, choose, export, open_experiment

    trial = choose(open_experiment(args.experiment), args.cell, args.best)
    out = args.out or Path("exports") / trial.experiment.name / trial.cell.name
    check_writable(out, "--out")
    check_out(out, args.force)
    export(trial, out, merge=args.merge)
    return 0


# The per-iteration table `ray-asd trial` prints at the end.
TABLE_COLUMNS = [
    "phase",
    "iteration",
    "n_synthetic",
    "n_new",
    "n_rejected",
    "teacher_prompt_tokens",
    "teacher_completion_tokens",
    "accuracy",
    "seconds_answer",
    "seconds_generate",
    "seconds_train",
    "seconds_eval",
]


class RegistryHelp(argparse.HelpFormatter):
    """Help texts naming ``{tasks}`` and ``{checkers}``: the registries' names, read when the
    help is printed. Not at start-up: the task registry imports pandas, which took every
    command's start from 0.10 s to 0.84 s (2 loaded cores), ``--help`` and usage errors too."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        from ray_asd.tasks import TASKS
        from ray_asd.tasks.builtin import GENERIC_CHECKERS

        text = action.help
        for key, names in {"{tasks}": TASKS, "{checkers}": GENERIC_CHECKERS}.items():
            text = text and text.replace(key, ", ".join(names))
        return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `ray-asd` (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="ray-asd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ray-asd {__version__}")
    debug = "print the traceback of an error too (or set RAY_ASD_DEBUG=1)"
    parser.add_argument("--debug", action="store_true", help=debug)
    # Also after the command (`ray-asd run x.yaml --debug`); SUPPRESS keeps the value given
    # before it, which a subcommand's own default would overwrite.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="inspect seed data").add_subparsers(
        dest="data_command", required=True
    )
    check = data.add_parser(
        "check",
        parents=[common],
        help="load a task's data and check that every reference answer extracts and self-checks",
        description="Exit 0: all rows pass; 1: some rows fail (listed); 2: unloadable data.",
        formatter_class=RegistryHelp,
    )
    check.add_argument("--task", required=True, help="one of {tasks}")
    origin = check.add_mutually_exclusive_group()
    origin.add_argument("--path", type=Path, help="a local .jsonl, .csv or .parquet file")
    origin.add_argument("--hub", help="a Hugging Face dataset id (or a local dataset folder)")
    check.add_argument("--hub-config", help="the hub dataset's configuration name, e.g. main")
    check.add_argument(
        "--split", default="train", help="split of hub or built-in data (default: train)"
    )
    check.add_argument("--question-column", help="default: the task's")
    check.add_argument("--answer-column", help="default: the task's")
    check.add_argument("--id-column", help="default: the row number")
    check.add_argument("--checker", help="generic task only: one of {checkers}")
    check.add_argument("--limit", type=int, help="check only the first N rows")
    check.add_argument("--show", type=int, default=5, help="failing rows to list (default: 5)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(handler=_data_check)

    trial = commands.add_parser(
        "trial",
        parents=[common],
        help="run one trial in-process (no Ray) and print a per-iteration table",
        description="Runs the paper's loop for one (strategy, student, task, seed) cell.",
    )
    trial.add_argument("config", type=Path, nargs="?", help="trial YAML (default: all defaults)")
    trial.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override")
    trial.add_argument("--out", type=Path, help="output folder (default: runs/<config name>)")
    trial.add_argument("--resume", action="store_true", help="continue the trial in --out")
    trial.set_defaults(handler=_trial)

    run = commands.add_parser(
        "run",
        parents=[common],
        help="run an experiment grid on Ray: one Tune trial per cell, tracked in MLflow",
        description="Exit 0: every trial finished; 1: some trials failed (listed); "
        "2: bad configuration, address or storage, resources no node has, or another driver "
        "running the experiment.",
    )
    run.add_argument("config", type=Path, help="experiment YAML, e.g. configs/quickstart.yaml")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override")
    run.add_argument(
        "--address",
        help="an existing Ray cluster: ray://HOST:10001, HOST:6379 or auto (default: local Ray)",
    )
    run.add_argument(
        "--resume", action="store_true", help="continue the interrupted experiment of CONFIG"
    )
    run.set_defaults(handler=_run)

    report = commands.add_parser(
        "report",
        parents=[common],
        help="the paper's analyses of an experiment from MLflow: curves, efficiency, win "
        "rates, score fidelity, ordering (PNG, HTML, Markdown)",
        description="Reads every trial of EXPERIMENT (finished, running or failed), writes "
        "figures, report.md and report.html to --out, and logs them to the experiment's "
        "'report' run in MLflow.",
    )
    report.add_argument("experiment", help="the MLflow experiment (by default the config's name)")
    report.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///runs/mlflow.db)",
    )
    report.add_argument("--out", type=Path, help="output folder (default: reports/EXPERIMENT)")
    report.set_defaults(handler=_report)

    export = commands.add_parser(
        "export",
        parents=[common],
        help="a trial's accepted synthetic items as a Hugging Face dataset and Parquet, its "
        "LoRA adapter as a peft folder (--merge: merged into the base model), a model card",
        description="Reads the trial's newest checkpoint; writes README.md (the model card), "
        "dataset/ (datasets.load_from_disk), items.parquet, adapter/ "
        "(peft.PeftModel.from_pretrained) and with --merge merged/ to --out, whole or not at all.",
    )
    export.add_argument(
        "experiment",
        type=Path,
        help="the experiment's folder (storage/NAME, e.g. runs/quickstart) or a ray-asd trial "
        "--out folder",
    )
    which = export.add_mutually_exclusive_group()
    which.add_argument("--cell", help="the trial's cell, e.g. loss-smollm2-135m-arith-seed0")
    which.add_argument(
        "--best",
        action="store_true",
        help="the trial with the highest final accuracy (ties: fewer teacher tokens)",
    )
    export.add_argument("--out", type=Path, help="output folder (default: exports/EXPERIMENT/CELL)")
    export.add_argument("--merge", action="store_true", help="also write the merged model")
    export.add_argument("--force", action="store_true", help="replace a non-empty --out")
    export.set_defaults(handler=_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ray-asd` console script; returns the exit code (module docstring)."""
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("ray-asd: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the last resort: one line, whatever was raised
        if debug:
            traceback.print_exc()
        cause = root_cause(error)
        print(f"ray-asd: error: {cause.line}", file=sys.stderr)
        if not debug and not cause.explained:
            print(HINT, file=sys.stderr)
        return 2 if cause.input else 1


if __name__ == "__main__":
    sys.exit(main())
