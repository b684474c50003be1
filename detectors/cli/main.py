"""The `detector` command line: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from detectors import __version__
from detectors.alerts.allow import AllowGate
from detectors.alerts.document import AlertDocument
from detectors.alerts.render import alert_line
from detectors.cli import poison as cli_poison
from detectors.cli import tuning as cli_tuning
from detectors.cli.output import Bar, Output, camel, error_kind
from detectors.cli.report import report_html
from detectors.cli.terminal import printable
from detectors.cli.tuning import archive_options, moment
from detectors.detections import DETECTIONS, catalogue
from detectors.engine.scoring import Engine
from detectors.model.errors import DetectorError, InputError, redact
from detectors.model.reasons import NEXT_STEPS
from detectors.normalize.rows import early_skip
from detectors.runs.replay import APART_DAYS, Progress, ReplayStats, replay
from detectors.runs.step import WindowStep
from detectors.runs.wiring import build_timer
from detectors.settings.app import (
    DEFAULT_HOLD_MINUTES,
    AppSettings,
    OperatorSettings,
    unknown_settings,
)
from detectors.sources import Budget, RowSource
from detectors.sources.arrival import Arrival, DelayModel
from detectors.sources.files import FileSource
from detectors.sources.portal_dates import DateOrder
from detectors.stores.sqlite import SqliteStore
from detectors.stores.write_behind import WriteBehindStore

if TYPE_CHECKING:
    from detectors.simulation.evaluation import Evaluation

# Exit codes: 0 done, 1 unusable input or another error, 2 bad command line (argparse).
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
DEFAULT_LEARNING_DAYS = 14
REPLAY_STATE = "replay"
"""Where `replay --store` keeps its watermark and the engine's state between runs."""
_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|hr|d)?\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}


def duration(text: str) -> timedelta:
    """`15m`, `1h`, `900s` or a number of minutes, as a timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 15m, 1h or 900s")
    amount, unit = int(match.group(1)), (match.group(2) or "m").lower()
    value = timedelta(seconds=amount * _UNITS[unit])
    if not timedelta(minutes=1) <= value <= timedelta(days=1):
        raise argparse.ArgumentTypeError(f"{text!r} must be between 1m and 1d")
    return value


def open_store(spec: str | None) -> SqliteStore:
    """A store from `sqlite:FILE` (or nothing: a fresh in-memory one)."""
    if spec is None:
        return SqliteStore()
    kind, _, target = spec.partition(":")
    if kind != "sqlite" or not target:
        raise DetectorError(f"--store {spec!r}: expected sqlite:FILE")
    return SqliteStore(path=target)


def _new_store_file(spec: str | None) -> Path | None:
    """The file of a `sqlite:FILE` store that does not exist yet."""
    kind, _, target = (spec or "").partition(":")
    if kind != "sqlite" or not target or Path(target).exists():
        return None
    return Path(target)


def count(text: str) -> int:
    """A whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _scoring_options(parser: argparse.ArgumentParser, *, learning: str) -> None:
    """`--learning-days` and `--window`, the same for every command that scores."""
    parser.add_argument("--learning-days", type=count, metavar="N", help=learning)
    parser.add_argument(
        "--window",
        type=duration,
        default=timedelta(minutes=15),
        metavar="DURATION",
        help="scoring window, as the timer runs it: 15m, 1h, 900s (default 15m)",
    )
    parser.add_argument(
        "--hold",
        type=count,
        default=DEFAULT_HOLD_MINUTES,
        metavar="MINUTES",
        help="how long the timer waits for late rows before it scores a window "
        f"(DETECTOR_HOLD_MINUTES, default {DEFAULT_HOLD_MINUTES}); used when rows carry an "
        "IngestionTime column or --ingestion-delay is given",
    )
    parser.add_argument(
        "--ingestion-delay",
        type=_delays,
        metavar="MODEL",
        help="score rows in the order the timer would see them, with simulated delays from "
        "event to workspace: realistic (mostly 3-10m, a tail to 25m), a fixed delay (5m) or "
        "a range (3m-20m); rows with an IngestionTime column keep their own",
    )
    parser.add_argument(
        "--delay-seed",
        type=count,
        default=0,
        metavar="N",
        help="seed of the simulated delays (default 0)",
    )
    parser.add_argument(
        "--read-workers",
        type=count,
        metavar="N",
        help="processes that read an uncompressed NDJSON file of 64 MiB or more in parts "
        "(default: one per core, at most 2; 1 reads every file in this process); the "
        "alerts are the same",
    )


def _delays(text: str) -> DelayModel:
    try:
        return DelayModel.parse(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def arrival(args: argparse.Namespace) -> Arrival:
    """How the scoring options say rows arrived."""
    delays = args.ingestion_delay
    if delays is not None:
        delays = DelayModel(spec=delays.spec, seed=args.delay_seed)
    return Arrival(window=args.window, hold=timedelta(minutes=args.hold), delays=delays)


def _input_options(parser: argparse.ArgumentParser) -> None:
    """How to read the inputs, where they cannot tell by themselves."""
    archive_options(parser)
    parser.add_argument(
        "--since",
        type=moment,
        metavar="DATE",
        help="with --archive: the first day (or moment, UTC) to read, e.g. 2026-10-01",
    )
    parser.add_argument(
        "--until",
        type=moment,
        metavar="DATE",
        help="with --archive: read up to this day (or moment, UTC), not included (default: now)",
    )
    parser.add_argument(
        "--date-order",
        type=DateOrder,
        choices=list(DateOrder),
        metavar="ORDER",
        help="how a portal CSV export wrote its dates, when none of them settles it: dmy "
        "(19/12/2024) or mdy (12/19/2024); by default a date after the 12th decides, and an "
        "export where every date reads both ways is refused",
    )


def _file_sources(args: argparse.Namespace) -> list[RowSource]:
    """The exported files named on the command line, each checked before anything runs, and
    the archive's blobs for the range asked for."""
    sources: list[RowSource] = []
    for path in args.paths:
        if not Path(path).exists():
            raise InputError(f"{path}: no such file")
        source = FileSource(path, date_order=args.date_order, skip=early_skip)
        source.total_bytes  # noqa: B018 - a directory or a pipe fails here, clearly
        sources.append(source)
    if args.archive is None:
        if args.since is not None or args.until is not None:
            raise InputError("--since and --until choose what to read from --archive")
        if not sources:
            raise InputError("nothing to read: give exported files, or --archive")
        return sources
    if args.since is None:
        raise InputError("--archive needs --since: the first day to read, e.g. 2026-10-01")
    from detectors.clients.connections import archive_service  # noqa: PLC0415
    from detectors.sources.archive import ArchiveSource  # noqa: PLC0415 - only with --archive

    archive = ArchiveSource(
        archive_service(args.archive, os.environ),
        since=args.since,
        until=args.until or datetime.now(UTC),
        date_order=args.date_order,
        skip=early_skip,
    )
    blobs = archive.blobs
    for container in archive.missing:
        sys.stderr.write(
            f"archive: no container {container} in {archive.account} (no diagnostic setting "
            "archives that category there)\n"
        )
    sys.stderr.write(
        f"archive: {len(blobs):,} blob(s), {archive.total_bytes / 1e6:,.1f} MB in "
        f"{archive.account} for {args.since:%Y-%m-%d %H:%M} .. "
        f"{(args.until or datetime.now(UTC)):%Y-%m-%d %H:%M} UTC\n"
    )
    return [*sources, archive]


class UsageError(Exception):
    """A command line argparse refuses, with the (sub)parser that refused it."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class Parser(argparse.ArgumentParser):
    """argparse, except that a bad command line raises UsageError instead of exiting, so
    that `--json` can answer it with the JSON error object."""

    def error(self, message: str) -> NoReturn:
        """Raise UsageError (argparse would print the usage and exit 2)."""
        raise UsageError(self, message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = Parser(
        prog="detector",
        description="Detects suspicious App Service credential downloads and WebJob activity.",
        epilog="Every command answers --help; --json output is described in docs/cli.md.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument(
        "--version", action="version", version=f"detector {__version__} (appservice-detectors)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rep = commands.add_parser(
        "replay",
        help="run the detector over exported logs",
        description="Replay exported Log Analytics rows (JSON, NDJSON or CSV, gzip or not) "
        "window by window through the same engine the timer runs.",
    )
    rep.add_argument("paths", nargs="*", metavar="PATH", help="exported rows (files; or --archive)")
    rep.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="FILE",
        help="write alerts here (JSON lines); - for standard output",
    )
    _scoring_options(
        rep,
        learning="days at the start of the input that only train baselines (default 14; 0 "
        "when --store already holds an earlier replay)",
    )
    rep.add_argument(
        "--store",
        metavar="sqlite:FILE",
        help="keep baselines and progress here across runs (default: fresh, in memory)",
    )
    _input_options(rep)
    rep.add_argument("--show", action="store_true", help="also print each alert readably")
    rep.add_argument(
        "--report",
        type=Path,
        metavar="FILE.html",
        help="also write a self-contained HTML report: a triage index, each alert with the "
        "principal's history, the follow-up KQL, and the run's summary",
    )
    rep.add_argument("--quiet", action="store_true", help="no progress, only the summary")
    rep.add_argument("--json", action="store_true", help="print the summary as JSON (docs/cli.md)")
    rep.set_defaults(handler=_replay)

    ev = commands.add_parser(
        "evaluate",
        help="measure detection quality on a labelled dataset",
        description="Replay a labelled dataset (from `simulate`) and report recall per "
        "detection and scenario kind, and false alerts per 1,000 principal-days.",
    )
    ev.add_argument("paths", nargs="+", metavar="PATH", help="rows written by simulate")
    ev.add_argument(
        "--labels", type=Path, metavar="FILE", help="labels (default: next to the first PATH)"
    )
    _scoring_options(ev, learning="days that only train baselines (default: the dataset's own)")
    ev.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="also write the alerts here; - for standard output (the report then goes to "
        "standard error)",
    )
    ev.add_argument("--quiet", action="store_true", help="no progress")
    ev.add_argument("--json", action="store_true", help="print the figures as JSON")
    ev.set_defaults(handler=_evaluate)

    run = commands.add_parser(
        "run",
        help="run one timer cycle against Log Analytics, Table Storage and the queue",
        description="Run exactly what the timer function runs, once, with the app settings "
        "taken from the environment (LOG_ANALYTICS_WORKSPACE_ID, DETECTOR_STORAGE or "
        "DETECTOR_STORAGE__tableServiceUri/__queueServiceUri, ...; see docs/settings.md). "
        "Signs in with DefaultAzureCredential (az login). Exit code 0: done, or more to read "
        "next time; 1: the run failed, another run holds the lease, or a setting is wrong.",
    )
    run.add_argument("--json", action="store_true", help="print the run's report as JSON")
    run.set_defaults(handler=_run)

    status = commands.add_parser(
        "status",
        help="check that the deployed detector is working",
        description="Check the deployment the app settings describe (the same environment as "
        "`detector run`): how far runs have scored, alerts waiting in the outbox, on the "
        "queue and on its poison queue, and whether each table received what the detections "
        "read lately (a missing diagnostic setting leaves a detection blind). Reads only. "
        "Exit code 0: nothing failed (warnings may be listed); 1: a check failed.",
    )
    status.add_argument(
        "--days",
        type=count,
        default=7,
        metavar="N",
        help="how far back to look at the tables (default 7)",
    )
    status.add_argument("--json", action="store_true", help="print the checks as JSON")
    status.set_defaults(handler=_status)

    rpt = commands.add_parser(
        "report",
        help="write the HTML report of an alerts file",
        description="Write one self-contained HTML page (a triage index, then each alert) "
        "from alerts as JSON lines (`replay --out`, or messages taken off the queue). The "
        "principals' histories and the run's summary need the replay: `replay --report`.",
    )
    rpt.add_argument("alerts", type=Path, metavar="ALERTS.jsonl", help="alerts, one per line")
    rpt.add_argument("--out", required=True, type=Path, metavar="FILE.html", help="the page")
    rpt.add_argument("--json", action="store_true", help="say what was written as JSON")
    rpt.set_defaults(handler=_report)

    cat = commands.add_parser(
        "detections",
        help="describe the detections",
        description="Print every detection's declaration as Markdown.",
    )
    cat.add_argument("--json", action="store_true", help="the declarations as JSON")
    cat.set_defaults(handler=_detections)

    sim = commands.add_parser(
        "simulate",
        help="write a realistic, labelled activity dataset",
        description="Generate an organisation's activity with labelled attacks, "
        "in the Log Analytics export format (NDJSON).",
    )
    sim.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="rows (.jsonl, or .jsonl.gz)"
    )
    sim.add_argument("--labels", type=Path, metavar="FILE", help="labels (default: next to --out)")
    sim.add_argument("--seed", type=int, default=7, metavar="N", help="random seed (default 7)")
    sim.add_argument("--days", type=count, default=21, metavar="N", help="days (default 21)")
    sim.add_argument(
        "--start", default="2026-10-01", metavar="DATE", help="first day, UTC (default 2026-10-01)"
    )
    for name, default, what in (
        ("developers", 8, "developers"),
        ("admins", 2, "administrators"),
        ("pipelines", 4, "deployment pipelines"),
        ("managed-identities", 2, "managed identities running WebJobs"),
        ("sites", 12, "apps"),
    ):
        sim.add_argument(
            f"--{name}",
            type=count,
            default=default,
            metavar="N",
            help=f"{what} (default {default})",
        )
    sim.add_argument(
        "--learning-days",
        type=count,
        default=14,
        metavar="N",
        help="benign days before the first attack (default 14)",
    )
    sim.add_argument(
        "--attacks",
        default="all",
        metavar="KINDS",
        help="comma-separated attack kinds, 'all' (default) or 'none'",
    )
    sim.add_argument(
        "--shape",
        choices=("default", "product-teams"),
        default="default",
        help="the organisation's shape: default, or product-teams (team- and environment-"
        "named sites, portal key listings, Kudu job edits on dev/test, monthly and quarterly "
        "automation, pipeline moves, joiners, SRE on-call, guests; and three more attack kinds "
        "in 'all': admin-takeover, slow-campaign, shared-source)",
    )
    sim.add_argument("--quiet", action="store_true", help="no progress")
    sim.add_argument("--json", action="store_true", help="print what was written as JSON")
    sim.set_defaults(handler=_simulate)
    cli_tuning.register(commands)
    cli_poison.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(words)
    except UsageError as err:
        # `--json` anywhere on the line: a script asked for JSON, errors included.
        if "--json" in words:
            Output(json_mode=True).error(err.message, "usage")
        else:
            err.parser.print_usage(sys.stderr)
            sys.stderr.write(f"{err.parser.prog}: error: {err.message}\n")
        return EXIT_USAGE
    out = Output.of(args)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    _quiet_sign_in(verbose=args.verbose)
    for warning in unknown_settings(os.environ):
        out.say(f"detector: warning: {warning}")
    try:
        code: int = args.handler(args)
    except DetectorError as err:
        out.error(redact(str(err)), error_kind(err))
        return EXIT_ERROR
    except KeyboardInterrupt:
        out.error("interrupted; nothing was written", "interrupted")
        return 130
    return code


def _quiet_sign_in(*, verbose: bool) -> None:
    """azure.identity logs a warning for every credential it tried (dozens of lines when
    signed out); the one error a failed sign-in gives says what to do. `-v` shows them."""
    logging.getLogger("azure.identity").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def _run(args: argparse.Namespace) -> int:
    settings = AppSettings.from_env(os.environ)
    report = build_timer(settings).run(datetime.now(UTC), Budget(settings.run_budget_seconds))
    out = Output.of(args)
    if args.json:
        out.data(camel(dataclasses.asdict(report)))
    out.say(report.line())
    return EXIT_OK if report.outcome in ("ok", "behind", "learning") else EXIT_ERROR


def _status(args: argparse.Namespace) -> int:
    from detectors.runs.health import Level, assess, render, worst  # noqa: PLC0415 - this command
    from detectors.runs.status import gather  # noqa: PLC0415

    settings = AppSettings.from_env(os.environ)
    now = datetime.now(UTC)
    checks = assess(gather(settings, now=now, days=args.days))
    if args.json:
        Output.of(args).data([camel(dataclasses.asdict(check)) for check in checks])
    else:
        print(f"detector status at {now:%Y-%m-%d %H:%M} UTC, workspace {settings.workspace_id}")
        sys.stdout.write(render(checks))
    return EXIT_ERROR if worst(checks) is Level.FAIL else EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    out = Output.of(args)
    to_stdout = str(args.out) == "-"
    if to_stdout and args.show:
        raise InputError("--show and --out - both write to standard output; choose one")
    if to_stdout and args.json:
        raise InputError("--json and --out - both write to standard output; choose one")
    sources = _file_sources(args)
    operator = OperatorSettings.from_env(os.environ)
    settings = operator.detection
    for path in (args.out, args.report):
        if path is not None and str(path) != "-" and not path.parent.is_dir():
            raise InputError(f"{path}: no such directory {path.parent}; nothing was written")
    new_store = _new_store_file(args.store)
    # Baselines stay in memory between windows and reach the store only if the run succeeds.
    inner = open_store(args.store)
    store = WriteBehindStore(inner)
    succeeded = False
    started = time.monotonic()
    tmp = _partial(args.out)
    show = _AlertPrinter(sys.stdout) if args.show else None
    reported: list[AlertDocument] | None = [] if args.report is not None else None
    try:
        engine = Engine(settings=settings)
        # A persistent store's allow rules apply, and feedback finds each alert's record.
        gate = None
        if args.store is not None:
            gate = AllowGate(
                rules=[s.rule for s in inner.list_rules()],
                now=datetime.now(UTC),
                max_days=operator.allow_max_days,
            )
        earlier = store.get_state(REPLAY_STATE)
        watermark = None
        if earlier is not None:
            engine.restore_state(earlier["engine"])
            watermark = datetime.fromisoformat(earlier["watermark"])
        learning_days = args.learning_days
        if learning_days is None:
            learning_days = 0 if earlier is not None else DEFAULT_LEARNING_DAYS
        with tmp.open("wb") as written:

            def sink(alert: AlertDocument) -> None:
                written.write(alert_line(alert))
                if reported is not None:
                    reported.append(alert)
                if show is not None:
                    show.print(alert)

            reporter = ReplayProgress(out)
            try:
                stats = replay(
                    sources,
                    step=WindowStep(engine, store),
                    sink=sink,
                    window=args.window,
                    arrival=arrival(args),
                    now=datetime.now(UTC),
                    learning_days=learning_days,
                    progress=reporter,
                    after=watermark,
                    allow=gate,
                    keep_records=args.store is not None,
                    read_workers=args.read_workers or None,
                )
            finally:
                reporter.close()
        _require_usable(stats)
        if to_stdout:
            with tmp.open("rb") as alerts:
                shutil.copyfileobj(alerts, sys.stdout.buffer)
            sys.stdout.flush()
        elif _special(args.out):
            with tmp.open("rb") as alerts, args.out.open("wb") as target:
                shutil.copyfileobj(alerts, target)
        else:
            tmp.replace(args.out)
        if stats.last is not None:
            store.put_state(
                REPLAY_STATE,
                {"watermark": stats.last.isoformat(), "engine": engine.export_state()},
            )
        if stats.records:
            inner.record_alerts(stats.records)
        if gate is not None and gate.hits:
            # LAST HIT is when the allowed activity happened, not when it was replayed.
            times = gate.hit_times()
            for rule_id, hits in sorted(gate.hits.items()):
                inner.record_hits({rule_id: hits}, times.get(rule_id, gate.now))
        succeeded = True
    except InputError as err:
        raise InputError(f"{err}; no alerts or baselines were written") from err
    except OSError as err:
        raise DetectorError(f"cannot write alerts to {args.out}: {err.strerror or err}") from err
    finally:
        tmp.unlink(missing_ok=True)
        store.close(flush=succeeded)
        if new_store is not None and not succeeded:
            # A failed replay leaves no store behind that it made.
            for leftover in (new_store, *(Path(f"{new_store}{x}") for x in ("-wal", "-shm"))):
                leftover.unlink(missing_ok=True)
    if reported is not None:
        _write_report(args.report, reported, stats, args.paths)
    where = "standard output" if to_stdout else str(args.out)
    if args.json:
        out.data(replay_summary(stats, where, gate))
        return EXIT_OK
    _summary(stats, where, time.monotonic() - started, sys.stderr, watermark)
    if gate is not None and (gate.hits or gate.expired or gate.invalid):
        sys.stderr.write(gate.summary() + "\n")
        for hit in gate.allowed:
            when = f"{hit.last_seen:%Y-%m-%d %H:%M} UTC" if hit.last_seen else "?"
            out.say(
                f"  allowed by rule {hit.rule_id}: alert {hit.alert_id} ({hit.severity} "
                f"{hit.detection}, {hit.principal}, {when})"
            )
    return EXIT_OK


def _special(out: Path) -> bool:
    """Whether `out` exists and is no regular file (`/dev/null`, a pipe): it is written
    into once the replay succeeds, never replaced by a file."""
    try:
        return out.exists() and not out.is_file()
    except OSError:
        return False


def _partial(out: Path) -> Path:
    """Where alerts are written until the replay succeeds: beside `out`, or a temporary
    file for standard output and for a special file such as `/dev/null`."""
    if str(out) == "-" or _special(out):
        handle, name = tempfile.mkstemp(prefix="detector-alerts-", suffix=".partial")
        os.close(handle)
        return Path(name)
    return out.with_name(out.name + ".partial")


def replay_summary(stats: ReplayStats, where: str, gate: AllowGate | None) -> dict[str, Any]:
    """`replay --json`: what the human summary says, as one object (docs/cli.md)."""
    return {
        "rows": stats.rows,
        "bytes": stats.bytes,
        "files": stats.files,
        "rejected": stats.rejected,
        "observations": stats.observations,
        "principals": len(stats.principals),
        "windows": stats.windows,
        "first": stats.first.isoformat() if stats.first else None,
        "last": stats.last.isoformat() if stats.last else None,
        "learningUntil": stats.learning_until.isoformat() if stats.learning_until else None,
        "alerts": sum(stats.alerts.values()),
        "alertsBy": [
            {"detection": detection, "severity": severity, "count": n}
            for (detection, severity), n in sorted(stats.alerts.items())
        ],
        "inLearningDays": stats.suppressed,
        "seconds": {
            "reading": round(stats.reading_seconds, 3),
            "scoring": round(stats.scoring_seconds, 3),
            "learning": round(stats.learning_seconds, 3),
        },
        "allowed": [
            {
                "ruleId": hit.rule_id,
                "alertId": hit.alert_id,
                "detection": hit.detection,
                "severity": hit.severity,
                "principal": hit.principal,
                "lastSeen": hit.last_seen.isoformat() if hit.last_seen else None,
            }
            for hit in (gate.allowed if gate is not None else [])
        ],
        "out": where,
    }


def _report(args: argparse.Namespace) -> int:
    alerts: list[AlertDocument] = cli_tuning.read_alerts(args.alerts)  # type: ignore[assignment]
    _write_report(args.out, alerts, None, [str(args.alerts)], quiet=args.json)
    if args.json:
        Output.of(args).data({"out": str(args.out), "alerts": len(alerts)})
    return EXIT_OK


def _write_report(
    path: Path,
    alerts: Sequence[AlertDocument],
    stats: ReplayStats | None,
    sources: Sequence[str],
    *,
    quiet: bool = False,
) -> None:
    page = report_html(
        alerts, stats, generated=datetime.now(UTC), source=", ".join(map(str, sources))
    )
    tmp = path.with_name(path.name + ".partial")
    try:
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DetectorError(f"cannot write the report to {path}: {err.strerror or err}") from err
    if not quiet:
        sys.stderr.write(f"report written to {path}\n")


def _require_usable(stats: ReplayStats) -> None:
    """Input whose every row was rejected is unusable, not merely quiet."""
    if stats.rows and stats.observations == 0 and stats.rejected == stats.rows:
        raise InputError(
            f"no usable rows: all {stats.rows:,} rows were rejected "
            f"(first: {_first_rejection(stats)})"
        )


def _first_rejection(stats: ReplayStats) -> str:
    if not stats.rejection_examples:
        return "none"
    row = stats.rejection_examples[0]
    return f"{row.source}:{row.line}: {row.reason}"


def _simulate(args: argparse.Namespace) -> int:
    from detectors.simulation import OrgProfile, all_attacks, write_dataset  # noqa: PLC0415

    try:
        start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    except ValueError as err:
        raise DetectorError(f"--start {args.start!r} is not a date (YYYY-MM-DD)") from err
    known = all_attacks(args.shape)
    if args.attacks == "all":
        attacks = known
    elif args.attacks == "none":
        attacks = ()
    else:
        attacks = tuple(kind.strip() for kind in args.attacks.split(",") if kind.strip())
        unknown = sorted(set(attacks) - set(known))
        if unknown:
            raise DetectorError(
                f"--attacks: unknown kind(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
    profile = OrgProfile(
        seed=args.seed,
        learning_days=args.learning_days,
        attacks=attacks,
        start=start,
        days=args.days,
        developers=args.developers,
        admins=args.admins,
        pipelines=args.pipelines,
        managed_identities=args.managed_identities,
        sites=args.sites,
        shape=args.shape,
    )
    labels = args.labels or _labels_path(args.out)
    out = Output.of(args)
    bar = out.bar("simulate", args.days, unit="days")
    try:
        rows = write_dataset(
            profile,
            args.out,
            labels,
            progress=lambda days, rows: bar.update(days, detail=f"{rows:,} rows"),
        )
    finally:
        bar.close()
    if args.json:
        out.data({"rows": rows, "out": str(args.out), "labels": str(labels), "days": args.days})
    else:
        out.say(f"wrote {rows:,} rows to {args.out} and labels to {labels}")
    return EXIT_OK


def _detections(args: argparse.Namespace) -> int:
    if not args.json:
        sys.stdout.write(catalogue())
        return EXIT_OK
    Output.of(args).data(
        [
            {
                "id": spec.id,
                "title": spec.title,
                "description": spec.description,
                "tables": [str(t.value) for t in spec.tables],
                "families": sorted(str(f.value) for f in spec.families),
                "mitre": [
                    {"id": t.id, "name": t.name, "tactics": list(t.tactics)} for t in spec.mitre
                ],
                "severityRules": list(spec.severity_rules),
                "benignCauses": list(spec.benign_causes),
                "investigation": list(spec.investigation),
            }
            for spec in (d.spec for d in DETECTIONS)
        ]
    )
    return EXIT_OK


def _labels_path(rows: Path) -> Path:
    """`x.jsonl.gz` -> `x.labels.json`, as `simulate` names them."""
    return rows.with_name(rows.name.removesuffix(".gz").removesuffix(".jsonl") + ".labels.json")


def _evaluate(args: argparse.Namespace) -> int:
    from detectors.simulation import read_labels, read_profile  # noqa: PLC0415
    from detectors.simulation.evaluation import evaluate, report  # noqa: PLC0415 - this command

    labels_path = args.labels or _labels_path(Path(args.paths[0]))
    labels = read_labels(labels_path)
    learning_days = args.learning_days
    if learning_days is None:
        learning_days = read_profile(labels_path).learning_days
    alerts: list[AlertDocument] = []
    store = WriteBehindStore(SqliteStore())
    reporter = ReplayProgress(Output.of(args))
    try:
        stats = replay(
            args.paths,
            step=WindowStep(
                Engine(settings=OperatorSettings.from_env(os.environ).detection), store
            ),
            sink=alerts.append,
            window=args.window,
            arrival=arrival(args),
            now=datetime.now(UTC),
            learning_days=learning_days,
            progress=reporter,
            read_workers=args.read_workers or None,
        )
    finally:
        reporter.close()
        store.close(flush=False)
    lines = b"".join(alert_line(a) for a in alerts)
    result = evaluate(alerts, labels, len(stats.principal_days))
    if args.json:
        if args.out is not None and str(args.out) == "-":
            raise InputError("--json and --out - both write to standard output; choose one")
        if args.out is not None:
            _write_alerts(args.out, lines)
        Output.of(args).data(evaluation_json(result))
        return EXIT_OK
    if args.out is not None and str(args.out) == "-":
        # The alerts are the output; the report goes to standard error.
        sys.stdout.buffer.write(lines)
        sys.stdout.flush()
        sys.stderr.write(report(result, [d.spec.id for d in DETECTIONS]))
        return EXIT_OK
    if args.out is not None:
        _write_alerts(args.out, lines)
    sys.stdout.write(report(result, [d.spec.id for d in DETECTIONS]))
    return EXIT_OK


def _write_alerts(path: Path, lines: bytes) -> None:
    try:
        path.write_bytes(lines)
    except OSError as err:
        raise DetectorError(f"cannot write alerts to {path}: {err.strerror}") from err


def evaluation_json(result: Evaluation) -> dict[str, Any]:
    """`evaluate --json`: the figures of the report (docs/cli.md)."""

    def brief(alert: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": alert.get("id"),
            "detection": alert.get("detection"),
            "severity": alert.get("severity"),
            "score": alert.get("score"),
            "firstSeen": alert.get("firstSeen"),
            "principal": (alert.get("principal") or {}).get("name"),
        }

    recall = []
    for detection in DETECTIONS:
        caught, expected = result.recall(detection.spec.id)
        recall.append({"detection": detection.spec.id, "caught": caught, "expected": expected})
    return {
        "scenarios": len(result.scenarios),
        "principalDays": result.principal_days,
        "recall": recall,
        "scenarioResults": [
            {
                "id": s.label.id,
                "kind": s.label.kind,
                "caught": s.caught,
                "alerts": [brief(a) for a in s.alerts],
            }
            for s in result.scenarios
        ],
        "falseAlerts": [brief(a) for a in result.false_alerts],
        "falsePer1000PrincipalDays": result.false_rate(),
        "falseHighPer1000PrincipalDays": result.false_rate("high"),
    }


class ReplayProgress:
    """A replay's two phases as progress lines: reading (bytes of the inputs) and scoring
    (observations, in event-time order)."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.bar: Bar | None = None
        self.phase = ""

    def __call__(self, progress: Progress) -> None:
        if progress.phase != self.phase:
            self.close()
            self.phase = progress.phase
            reading = progress.phase == "reading"
            self.bar = self.out.bar(
                progress.phase,
                progress.total,
                unit="MB" if reading else "observations",
                scale=1e6 if reading else 1.0,
            )
            # The phase reports first after some work: its rate is measured from there.
            self.bar.measure_from(progress.done)
        assert self.bar is not None
        detail = f"{progress.rows:,} rows" if progress.phase == "reading" else ""
        self.bar.update(progress.done, total=progress.total, detail=detail)

    def close(self) -> None:
        """Take the live line away."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


SEVERITY_RANK = {"high": 3, "medium": 2, "low": 1}


def _summary(
    stats: ReplayStats, out: str, seconds: float, stream: TextIO, watermark: datetime | None
) -> None:
    """The human summary of a replay."""
    w = stream.write
    if watermark is not None:
        w(f"continuing an earlier replay into this store, scored up to {watermark:%Y-%m-%d %H:%M}")
        w(f" UTC; {stats.already_replayed:,} observations at or before that were skipped\n")
    mb = stats.bytes / 1_000_000
    w(f"read {stats.rows:,} rows ({mb:,.1f} MB) from {stats.files} file(s) in {seconds:,.1f} s")
    w(f" ({stats.rows / max(seconds, 1e-9):,.0f} rows/s): reading and ordering")
    w(f" {stats.reading_seconds:,.1f} s, scoring {stats.scoring_seconds:,.1f} s")
    w(f" (learning {stats.learning_seconds:,.1f} s of it)\n")
    if stats.first and stats.last:
        w(f"activity from {stats.first:%Y-%m-%d %H:%M} to {stats.last:%Y-%m-%d %H:%M} UTC; ")
        w(f"learning until {stats.learning_until:%Y-%m-%d %H:%M} UTC\n")
    w(f"observations: {stats.observations:,} ({stats.duplicates:,} duplicate rows of one action)")
    w(f"; principals: {len(stats.principals):,}; windows: {stats.windows:,}\n")
    if stats.skipped:
        skipped = ", ".join(f"{n:,} {reason}" for reason, n in stats.skipped.most_common())
        w(f"not relevant: {skipped}\n")
    if stats.apart:
        w(
            f"left out: {stats.apart:,} observations dated on days set apart from the rest of"
            f" the input (more than {APART_DAYS} days away, a stray few)\n"
        )
    if stats.rejected:
        w(f"rejected {stats.rejected:,} rows:\n")
        for reason, n in stats.rejection_reasons.most_common(10):
            w(f"  {n:>8,}  {printable(reason)}\n")
        w("  first ones:\n")
        for row in stats.rejection_examples[:10]:
            w(f"    {printable(row.source)}:{row.line}: {printable(row.reason)}\n")
    total = sum(stats.alerts.values())
    w(f"alerts: {total:,}")
    if total:
        parts = ", ".join(
            f"{n} {severity} {detection}"
            for (detection, severity), n in sorted(
                stats.alerts.items(),
                key=lambda item: (-SEVERITY_RANK.get(item[0][1] or "", 0), item[0]),
            )
        )
        w(f" ({parts})")
    w(f"; {stats.suppressed:,} more fell in the learning days\n")
    w(f"alerts written to {out}\n")


class _AlertPrinter:
    """Alerts as an analyst reads them first: who, what, where, why, what next."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def print(self, alert: Mapping[str, Any]) -> None:
        p = alert["principal"]
        app = f" (app id {p['appId']})" if p["appId"] else ""
        ops = "; ".join(f"{o['name']} x{o['count']} {o['status']}" for o in alert["operations"])
        lines = [
            f"[{alert['severity'].upper()} {alert['score']:g}, risk {alert.get('riskScore', '?')}]"
            f" {alert['title']}",
            f"  who    {p['name']} ({p['type']}, {p['id']}), tool {p['tool']}{app}",
            f"  when   {alert['firstSeen']} .. {alert['lastSeen']}",
            *[f"  {'where' if i == 0 else '':<6} {line}" for i, line in enumerate(where(alert))],
            *[f"  {'how' if i == 0 else '':<6} {line}" for i, line in enumerate(how(alert))],
            f"  what   {ops}",
            "  why",
            *[f"    - {x['message']} (+{x['weight']:g})" for x in alert["reasons"]],
            f"  usual  {_usual(alert['history'])}",
            "  next",
            *[f"    - {s['code']}: {s['step']}" for s in next_steps_of(alert)],
            f"  id     {alert['id']}  (KQL for the follow-up is in the alert JSON)",
            "",
        ]
        burst = alert.get("burst") or {}
        if burst.get("sequence", 1) > 1:
            lines.insert(
                1,
                f"  update {burst['sequence']} of alert {burst['id']}, active since "
                f"{burst['firstSeen']}: 'why' weighs the whole burst, 'what' is the new activity",
            )
        self.stream.write("\n".join(printable(line) for line in lines) + "\n")


def where(alert: Mapping[str, Any]) -> list[str]:
    """The sites of an alert grouped by subscription and resource group, one line each."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in alert.get("resources") or [alert["resource"]]:
        site = r["site"] + (f"/{r['slot']}" if r["slot"] else "")
        groups.setdefault((r["subscriptionId"], r["resourceGroup"]), []).append(site)
    return [
        f"{', '.join(sites[:6])}{' ...' if len(sites) > 6 else ''}"
        f"  [subscription {sub}, group {group}]"
        for (sub, group), sites in groups.items()
    ]


def how(alert: Mapping[str, Any]) -> list[str]:
    """Each actor's tools and addresses, the principal first (everyone's, for an old alert)."""
    actors = alert.get("actors")
    if actors is None:
        return [
            f"{', '.join(alert['tools']) or 'unknown tool'} from "
            f"{', '.join(alert['sourceIps'][:5]) or 'no address'}"
        ]
    return [
        f"{'' if a['role'] == 'principal' else a['name'] + ' (' + a['type'] + '): '}"
        f"{', '.join(a['tools']) or 'unknown tool'} from "
        f"{', '.join(a['sourceIps'][:5]) or 'no address'}"
        for a in actors
    ]


def next_steps_of(alert: Mapping[str, Any]) -> list[dict[str, str]]:
    """What to check next per reason (an alert before 1.1: per reason code, from the code)."""
    steps = alert["investigation"].get("nextSteps")
    if steps is not None:
        return list(steps)
    known = {c.value: step for c, step in NEXT_STEPS.items()}
    return [
        {"code": r["code"], "step": known[r["code"]]}
        for r in alert["reasons"]
        if r["code"] in known
    ]


def _usual(history: dict[str, Any]) -> str:
    if not history.get("known"):
        return "no history for this principal"
    return (
        f"active {history['activeDays']} day(s) since {history['firstSeen'][:10]}; "
        f"{history['sites']} site(s); tools {', '.join(history['tools']) or 'none'}; "
        f"{history['networks']} network(s)"
    )
