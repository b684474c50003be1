"""Operators' commands: `baselines`, `allow`, `feedback` and `backfill` (see docs/tuning.md).

Every command takes `--store` (see `detectors.stores.locate`), prints tables for people and
JSON with `--json`, and refuses bad input with one line that says what to do, before it
changes anything. Writes are conditional on ETags: when another operator (or the timer)
changed the same entity in between, the command reads it again and re-applies its change,
and after a few lost races says to retry.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from detectors.alerts.allow import (
    AllowGate,
    AllowRule,
    last_day,
    new_rule,
    problems,
)
from detectors.baselines import admin
from detectors.baselines.baseline import PrincipalBaseline
from detectors.baselines.feedback import teach, unlearn
from detectors.baselines.surroundings import is_context_id
from detectors.cli.output import Output
from detectors.cli.terminal import printable
from detectors.detections import DETECTIONS
from detectors.model.errors import ConflictError, DetectorError, InputError, StoreError
from detectors.model.reasons import ReasonCode
from detectors.runs.backfill import MAX_DAYS as BACKFILL_MAX_DAYS
from detectors.runs.backfill import backfill
from detectors.runs.progress import DayDone
from detectors.settings.app import DEFAULT_MAX_DAYS, MAX_DAYS_SETTING, OperatorSettings
from detectors.stores import StoredBaseline
from detectors.stores.locate import SPELLINGS, OperatorStore, describe, open_store

EXIT_OK = 0
ATTEMPTS = 5
"""Lost races an edit re-reads and re-applies before it asks the operator to retry."""

_DETECTION_IDS = [d.spec.id for d in DETECTIONS]


def clock() -> datetime:
    """The wall clock: the command line is the edge where time is read (tests replace it)."""
    return datetime.now(UTC)


def moment(text: str) -> datetime:
    """A UTC date (2026-11-01) or date and time (2026-11-01T06:00, offsets allowed)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date: expected 2026-11-01 or 2026-11-01T06:00 (UTC)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def archive_options(
    parser: argparse.ArgumentParser,
    *,
    what: str = "also read the logs diagnostic settings archived to a storage account",
) -> None:
    """`--archive`: the storage account diagnostic settings archive logs to."""
    parser.add_argument(
        "--archive",
        metavar="ACCOUNT",
        help=f"{what}: its blob endpoint (https://ACCOUNT.blob.core.windows.net, signed in "
        "with az login), or `env` for the connection string in AZURE_STORAGE_CONNECTION_STRING",
    )


def register(commands: Any) -> None:
    """Add the operators' subcommands to the `detector` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        metavar="STORE",
        help=f"{SPELLINGS} (default: $DETECTOR_STORE)",
    )
    common.add_argument("--json", action="store_true", help="print JSON for scripts")

    base = commands.add_parser(
        "baselines",
        help="list, show, forget, export and import baselines",
        description="Read and tune per-principal baselines (docs/tuning.md).",
    )
    sub = base.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = sub.add_parser("list", parents=[common], help="baselines, most recently active first")
    _filters(ls)
    ls.add_argument("--limit", type=int, default=0, metavar="N", help="show at most N")
    ls.add_argument(
        "--context",
        action="store_true",
        help="also list the context baselines the detections keep per site, WebJob and "
        "peer group (ids starting site:, webjob:, peers:)",
    )
    ls.set_defaults(handler=_baselines_list)
    show = sub.add_parser("show", parents=[common], help="one principal's baseline, readably")
    show.add_argument("principal", metavar="PRINCIPAL", help="principal id or display name")
    show.set_defaults(handler=_baselines_show)
    forget = sub.add_parser(
        "forget", parents=[common], help="delete a principal's baseline, or one site from it"
    )
    forget.add_argument("principal", metavar="PRINCIPAL", help="principal id or display name")
    forget.add_argument(
        "--site",
        metavar="SITE",
        help="forget only this site (name, site/slot, or subscription/group/site) in every "
        "dimension that holds it",
    )
    forget.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation (needed off a terminal)"
    )
    forget.set_defaults(handler=_baselines_forget)
    export = sub.add_parser("export", parents=[common], help="baselines as JSON lines")
    _filters(export)
    export.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout)")
    export.set_defaults(handler=_baselines_export)
    imp = sub.add_parser("import", parents=[common], help="baselines from exported JSON lines")
    imp.add_argument("path", type=Path, metavar="FILE", help="written by `baselines export`")
    imp.add_argument(
        "--replace", action="store_true", help="overwrite principals that already have one"
    )
    imp.set_defaults(handler=_baselines_import)

    allow = commands.add_parser(
        "allow",
        help="add, list and remove allow rules",
        description="Allow rules keep known, benign activity off the queue; every allowed "
        "alert is counted against its rule and logged (docs/tuning.md).",
    )
    sub = allow.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = sub.add_parser("add", parents=[common], help="add a rule")
    add.add_argument("--principal", metavar="ID_OR_NAME", help="the principal (id or name)")
    add.add_argument("--app-id", metavar="ID", help="the client application id")
    add.add_argument("--cidr", metavar="RANGE", help="every source address is in this range")
    add.add_argument("--site", metavar="PATTERN", help="every site matches (* ? [..] allowed)")
    add.add_argument("--detection", choices=_DETECTION_IDS, help="only this detection")
    add.add_argument("--reason-code", metavar="CODE", help="only alerts listing this reason")
    add.add_argument("--reason", required=True, metavar="TEXT", help="why this is benign")
    add.add_argument(
        "--expires",
        required=True,
        metavar="DATE",
        help=f"last day the rule holds, UTC (at most {MAX_DAYS_SETTING}, default "
        f"{DEFAULT_MAX_DAYS}, days ahead)",
    )
    add.add_argument("--added-by", metavar="NAME", help="who adds it (default: your user name)")
    add.add_argument("--id", metavar="ID", help="the rule's id (default: generated)")
    add.add_argument(
        "--unseen-principal",
        action="store_true",
        help="allow a principal the store has no baseline of yet",
    )
    add.add_argument(
        "--dry-run",
        action="store_true",
        help="write nothing: list the alerts the rule would have allowed, of --alerts or "
        "else of the alert records the store keeps",
    )
    add.add_argument(
        "--alerts",
        type=Path,
        metavar="ALERTS.jsonl",
        help="with --dry-run: alerts as JSON lines (`replay --out`, messages taken off the "
        "queue) to try the rule on; - for standard input",
    )
    add.set_defaults(handler=_allow_add)
    lst = sub.add_parser("list", parents=[common], help="every rule, with its hits and status")
    lst.set_defaults(handler=_allow_list)
    rm = sub.add_parser("remove", parents=[common], help="remove a rule")
    rm.add_argument("rule_id", metavar="RULE_ID")
    rm.set_defaults(handler=_allow_remove)

    fb = commands.add_parser(
        "feedback",
        parents=[common],
        help="teach an alert's activity to the baseline (benign) or keep it out (malicious)",
        description="Needs the alert's record, which the timer (and `replay --store`) keeps "
        "in the store for each alert it emits.",
    )
    fb.add_argument("alert_id", metavar="ALERT_ID")
    verdict = fb.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--benign", action="store_true", help="the activity was expected")
    verdict.add_argument("--malicious", action="store_true", help="the activity was an attack")
    fb.add_argument("--reason", metavar="TEXT", help="why (kept with the alert's record)")
    fb.add_argument("--by", metavar="NAME", help="who decided (default: your user name)")
    fb.set_defaults(handler=_feedback)

    bf = commands.add_parser(
        "backfill",
        parents=[common],
        help="build baselines from the last N days in Log Analytics, without alerts",
        description="Reads LOG_ANALYTICS_WORKSPACE_ID (and LOG_ANALYTICS_ENDPOINT) from the "
        "environment and signs in with DefaultAzureCredential. Day by day, resumable: run "
        "it again after an interruption. A new deployment's timer learns "
        "DETECTOR_BOOTSTRAP_DAYS days this way by itself; run it for more, before the "
        "timer's first run (the timer then goes on from where it ended).",
    )
    bf.add_argument(
        "--days",
        type=days_to_learn,
        required=True,
        metavar="N",
        help=f"whole UTC days before today to learn, 1 to {BACKFILL_MAX_DAYS} (today so far too)",
    )
    bf.add_argument("--quiet", action="store_true", help="no progress, only the summary")
    archive_options(
        bf,
        what="read the days from the logs diagnostic settings archived to a "
        "storage account instead of the workspace (for days past its retention)",
    )
    bf.set_defaults(handler=_backfill)

    ex = commands.add_parser(
        "export",
        help="write a time range of the workspace to NDJSON, for replay",
        description="Reads LOG_ANALYTICS_WORKSPACE_ID (and LOG_ANALYTICS_ENDPOINT) from the "
        "environment and signs in with DefaultAzureCredential. Writes every row the timer's "
        "queries read that was ingested in the range, each with its IngestionTime, day by "
        "day; a day too large for one query is split. Interrupted, the same command resumes. "
        "`detector replay FILE` then gives the alerts the timer gave over the range.",
    )
    ex.add_argument(
        "--since", type=moment, required=True, metavar="DATE", help="first day (UTC) to export"
    )
    ex.add_argument(
        "--until",
        type=moment,
        metavar="DATE",
        help="export up to this day or moment (UTC), not included (default: now)",
    )
    ex.add_argument("--out", type=Path, required=True, metavar="FILE", help="NDJSON to write")
    ex.add_argument("--quiet", action="store_true", help="no progress, only the summary")
    ex.add_argument("--json", action="store_true", help="print the summary as JSON")
    ex.set_defaults(handler=_export)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--principal", metavar="TEXT", help="id or name contains TEXT")
    parser.add_argument("--site", metavar="SITE", help="the principal knows this site")
    parser.add_argument(
        "--detection", choices=_DETECTION_IDS, help="has history this detection reads"
    )


def settings() -> OperatorSettings:
    """The operators' settings from the environment: the one place these commands read it."""
    return OperatorSettings.from_env(os.environ)


def _open(args: argparse.Namespace, *, must_exist: bool = True) -> OperatorStore:
    """The store `--store` names; with `must_exist=False` a new embedded store file is
    created (and said so)."""
    new_file = None if must_exist else _new_sqlite_file(args)
    try:
        store = open_store(args.store, settings(), must_exist=must_exist)
    except StoreError as err:
        raise DetectorError(f"{err}; nothing was changed") from err
    if new_file is not None:
        _output(args).say(f"created a new store in {new_file}")
    return store


def _new_sqlite_file(args: argparse.Namespace) -> Path | None:
    """The embedded store's file when `--store` names one that does not exist yet."""
    spec = args.store or settings().store or ""
    kind, _, target = spec.partition(":")
    if kind != "sqlite" or not target or Path(target).exists():
        return None
    return Path(target)


def _where(args: argparse.Namespace) -> str:
    return describe(args.store or settings().store or "")


def _output(args: argparse.Namespace) -> Output:
    return Output.of(args)


def stored_json(props: Mapping[str, Any]) -> dict[str, Any]:
    """Stored properties (PascalCase, as Table Storage shows them) with camelCase keys, as
    every `--json` prints them."""
    return {key[:1].lower() + key[1:]: value for key, value in props.items()}


def _user(given: str | None) -> str:
    if given and given.strip():
        return given.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        raise DetectorError("cannot tell who you are: pass --added-by NAME (or --by)") from None


# Baselines.


def resolve(store: OperatorStore, text: str, where: str) -> StoredBaseline:
    """The baseline an operator means: the exact id, else one id or name without case."""
    exact = store.load([text])
    if text in exact:
        return exact[text]
    wanted = text.casefold()
    found = [
        s
        for s in store.all_baselines()
        if wanted in (s.baseline.principal_id.casefold(), s.baseline.name.casefold())
    ]
    if len(found) == 1:
        return found[0]
    if found:
        ids = ", ".join(repr(s.baseline.principal_id) for s in found[:5])
        raise DetectorError(f"{text!r} names several principals ({ids}); give the exact id")
    raise DetectorError(
        f"no baseline for principal {text!r} in {where}; `detector baselines list "
        f"--principal TEXT` finds similar ones"
    )


def _select(store: OperatorStore, args: argparse.Namespace) -> list[PrincipalBaseline]:
    families = None
    if args.detection is not None:
        families = next(d.spec.families for d in DETECTIONS if d.spec.id == args.detection)
    chosen = [
        s.baseline
        for s in store.all_baselines()
        if admin.selected(s.baseline, principal=args.principal, site=args.site, families=families)
    ]
    return admin.by_last_activity(chosen)


def _baselines_list(args: argparse.Namespace) -> int:
    out = _output(args)
    store = _open(args)
    try:
        chosen = _select(store, args)
    finally:
        store.close()
    context = [b for b in chosen if is_context_id(b.principal_id)]
    if not args.context:
        chosen = [b for b in chosen if not is_context_id(b.principal_id)]
    matched = len(chosen)
    if args.limit > 0:
        chosen = chosen[: args.limit]
    rows = [admin.summary(b) for b in chosen]
    if args.json:
        out.data(rows)
        return EXIT_OK
    out.table(
        ["LAST SEEN", "PRINCIPAL", "NAME", "TYPE", "DAYS", "SITES", "NETWORKS", "TOOLS"],
        [
            [
                r["lastSeen"][:16].replace("T", " "),
                r["principalId"],
                _name(r["name"], r["principalId"]),
                r["type"],
                r["activeDays"],
                r["sites"],
                r["networks"],
                ", ".join(r["tools"]),
            ]
            for r in rows
        ],
        keep=["PRINCIPAL"],
    )
    note = f"{len(rows)} baseline(s)"
    if len(rows) < matched:
        note += f" of {matched} (--limit {args.limit})"
    if context and not args.context:
        note += (
            f"; {len(context)} context baseline(s) of sites, WebJobs and peer groups not "
            "listed (--context lists them; `baselines export` writes them too)"
        )
    out.say(note)
    return EXIT_OK


def _name(name: str, principal_id: str) -> str:
    """A principal's name for the NAME column, `-` where it would only repeat the id:
    service principals and publishing users log no other name, and a context baseline's
    name is its id."""
    if not name or name == principal_id or is_context_id(principal_id):
        return "-"
    return name


def _baselines_show(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        held = resolve(store, args.principal, _where(args))
    finally:
        store.close()
    out = _output(args)
    if args.json:
        out.data(stored_json(_plain(held.baseline)))
    else:
        out.text("\n".join(printable(line) for line in admin.readable(held.baseline)))
    return EXIT_OK


def _plain(baseline: PrincipalBaseline) -> dict[str, Any]:
    """The stored properties, JSON-valued ones decoded, for `show --json`."""
    props = json.loads(admin.export_line(baseline))
    for key, value in props.items():
        if isinstance(value, str) and value.startswith(("[", "{")):
            props[key] = json.loads(value)
    return dict(props)


def _baselines_forget(args: argparse.Namespace) -> int:
    out = _output(args)
    store = _open(args)
    try:
        held = resolve(store, args.principal, _where(args))
        principal_id = held.baseline.principal_id
        what = (
            f"the whole baseline of {principal_id!r} ({held.baseline.active_days} active "
            f"day(s), {len(held.baseline.sites)} site(s))"
            if args.site is None
            else f"site {args.site!r} from the baseline of {principal_id!r}"
        )
        if not args.yes and (args.json or not out.confirm(f"forget {what}?")):
            raise DetectorError(f"not confirmed: pass --yes to forget {what}; nothing was changed")
        for _attempt in range(ATTEMPTS):
            try:
                if args.site is None:
                    store.delete_baseline(principal_id, str(held.etag))
                    removed: list[str] = []
                    message = f"forgot the baseline of {principal_id!r}"
                else:
                    changed, removed = admin.forget_site(held.baseline, args.site)
                    if not removed:
                        raise DetectorError(
                            f"the baseline of {principal_id!r} holds no site {args.site!r}; "
                            f"`detector baselines show {principal_id}` lists its sites"
                        )
                    store.save([StoredBaseline(baseline=changed, etag=held.etag)])
                    message = (
                        f"forgot {len(removed)} value(s) of site {args.site!r} in the baseline "
                        f"of {principal_id!r}: {'; '.join(removed)}"
                    )
                break
            except ConflictError:
                again = store.load([principal_id]).get(principal_id)
                if again is None:
                    raise DetectorError(
                        f"the baseline of {principal_id!r} was deleted by someone else meanwhile"
                    ) from None
                held = again
        else:
            raise DetectorError(f"the baseline of {principal_id!r} kept changing; retry")
    finally:
        store.close()
    if args.json:
        out.data(
            {"principalId": principal_id, "site": args.site, "removed": removed, "result": message}
        )
    else:
        out.say(message)
    return EXIT_OK


def _baselines_export(args: argparse.Namespace) -> int:
    out = _output(args)
    if args.json and args.out is None:
        raise DetectorError(
            "--json prints the summary, and the baselines go to standard output without "
            "--out: give --out FILE"
        )
    store = _open(args)
    try:
        chosen = sorted(_select(store, args), key=lambda b: b.principal_id)
    finally:
        store.close()
    data = b"".join(admin.export_line(b) for b in chosen)
    if args.out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        try:
            args.out.write_bytes(data)
        except OSError as err:
            raise DetectorError(f"cannot write {args.out}: {err.strerror or err}") from err
    context = sum(1 for b in chosen if is_context_id(b.principal_id))
    if args.json:
        out.data(
            {
                "baselines": len(chosen),
                "principals": len(chosen) - context,
                "context": context,
                "out": str(args.out),
            }
        )
        return EXIT_OK
    out.say(
        f"exported {len(chosen)} baseline(s): {len(chosen) - context} of principals (as "
        f"`baselines list` shows them) and {context} context baseline(s) of sites, WebJobs "
        "and peer groups (`baselines list --context`)"
    )
    return EXIT_OK


def _baselines_import(args: argparse.Namespace) -> int:
    try:
        lines = args.path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DetectorError(f"cannot read {args.path}: {err}; nothing was imported") from err
    baselines: dict[str, PrincipalBaseline] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{args.path}:{number}"
        try:
            baseline = admin.import_line(line, where)
        except (ValueError, TypeError) as err:
            raise DetectorError(f"{err}; fix the line, nothing was imported") from None
        if baseline.principal_id in baselines:
            raise DetectorError(
                f"{where}: a second baseline of {baseline.principal_id!r}; nothing was imported"
            )
        baselines[baseline.principal_id] = baseline
    store = _open(args, must_exist=False)
    try:
        existing = store.load(list(baselines))
        if existing and not args.replace:
            ids = ", ".join(repr(p) for p in sorted(existing)[:5])
            raise DetectorError(
                f"{len(existing)} principal(s) already have a baseline ({ids}); pass --replace "
                "to overwrite them; nothing was imported"
            )
        items = [
            StoredBaseline(baseline=b, etag=existing[p].etag if p in existing else None)
            for p, b in sorted(baselines.items())
        ]
        try:
            store.save(items)
        except ConflictError as err:
            raise DetectorError(
                f"{len(err.principals)} baseline(s) changed while importing "
                f"({', '.join(repr(p) for p in err.principals[:5])}); "
                f"{len(err.written)} were written; run the import again with --replace"
            ) from err
    finally:
        store.close()
    if args.json:
        _output(args).data(
            {"imported": len(items), "replaced": len(existing), "store": _where(args)}
        )
    else:
        _output(args).say(f"imported {len(items)} baseline(s) into {_where(args)}")
    return EXIT_OK


# Allow rules.


def rule_json(rule: AllowRule) -> dict[str, Any]:
    """A rule as `allow add --json` and `allow list --json` print it (docs/cli.md)."""
    return {
        "ruleId": rule.id,
        "principal": rule.principal,
        "appId": rule.app_id,
        "cidr": rule.cidr,
        "site": rule.site,
        "detection": rule.detection,
        "reasonCode": rule.reason_code,
        "addedBy": rule.added_by,
        "reason": rule.reason,
        "addedAt": rule.added_at.isoformat(),
        "expires": rule.expires.isoformat(),
        "lastDay": last_day(rule.expires),
        "hits": rule.hits,
        "lastHit": rule.last_hit.isoformat() if rule.last_hit else None,
    }


def holds(rule: AllowRule) -> str:
    """`holds through 2027-01-31 (UTC)`: the expiry as the operator gave it."""
    day = last_day(rule.expires)
    return f"holds until {day}" if " " in day else f"holds through {day} (UTC)"


def _allow_add(args: argparse.Namespace) -> int:
    out = _output(args)
    now = clock()
    max_days = settings().allow_max_days
    if args.alerts is not None and not args.dry_run:
        raise DetectorError("--alerts is for --dry-run: the alerts a rule is tried on")
    rule = new_rule(
        rule_id=args.id or f"r{now:%Y%m%d}-{uuid.uuid4().hex[:6]}",
        principal=args.principal,
        app_id=args.app_id,
        cidr=args.cidr,
        site=args.site,
        detection=args.detection,
        reason_code=args.reason_code,
        added_by=_user(args.added_by),
        reason=args.reason,
        expires=args.expires,
        now=now,
        max_days=max_days,
        detections=_DETECTION_IDS,
        reason_codes=[c.value for c in ReasonCode],
    )
    if args.dry_run:
        return _allow_dry_run(args, rule, out)
    new_store = _new_sqlite_file(args) is not None
    if new_store and rule.principal is not None and not args.unseen_principal:
        raise DetectorError(
            f"{_where(args)} does not exist yet, so it knows no principal "
            f"{rule.principal!r}: pass --unseen-principal to allow one not seen yet "
            "(the store is created then); nothing was changed"
        )
    store = _open(args, must_exist=False)
    try:
        rule = _principal_id(store, rule, args, out)
        try:
            store.add_rule(rule)
        except ConflictError as err:
            raise DetectorError(f"{err}; choose another --id") from err
    finally:
        store.close()
    if args.json:
        out.data(rule_json(rule))
    else:
        out.text(f"added allow rule {rule.id}; it {holds(rule)}")
    return EXIT_OK


def _principal_id(
    store: OperatorStore, rule: AllowRule, args: argparse.Namespace, out: Output
) -> AllowRule:
    """The rule naming the principal's id: rules hold ids, and a display name given is the
    one principal it names now."""
    if rule.principal is None or args.unseen_principal:
        return rule
    try:
        held = resolve(store, rule.principal, _where(args))
    except DetectorError as err:
        raise DetectorError(
            f"{err}; or pass --unseen-principal to allow one not seen yet"
        ) from None
    if held.baseline.principal_id != rule.principal:
        out.say(f"principal {rule.principal!r} is {held.baseline.principal_id!r}")
        rule = replace(rule, principal=held.baseline.principal_id)
    return rule


def _allow_dry_run(args: argparse.Namespace, rule: AllowRule, out: Output) -> int:
    """What the rule would have allowed among the alerts of a file, or those the store
    recorded; nothing is written."""
    stored = args.store or settings().store
    if args.alerts is None and not stored:
        raise DetectorError(
            "--dry-run tries the rule on --alerts FILE (alerts as JSON lines: `replay --out`, "
            "messages taken off the queue) or on the alert records of --store"
        )
    alerts = read_alerts(args.alerts) if args.alerts is not None else []
    where = str(args.alerts)
    if stored and (rule.principal is not None or args.alerts is None):
        store = _open(args)
        try:
            rule = _principal_id(store, rule, args, out)
            if args.alerts is None:
                records = store.alert_records()
                alerts = [a for a in map(alert_of_record, records) if a is not None]
                where = f"the alert records of {_where(args)}"
                if len(alerts) < len(records):
                    out.say(
                        f"{len(records) - len(alerts)} alert record(s) written by an earlier "
                        "version keep too little to try a rule on (left out; --alerts FILE "
                        "tries the alerts themselves)"
                    )
        finally:
            store.close()
    matched = [a for a in alerts if rule.matches(a)]
    found: list[dict[str, Any]] = [
        {
            "alertId": str(a.get("id")),
            "lastSeen": a.get("lastSeen"),
            "severity": a.get("severity"),
            "detection": a.get("detection"),
            "principal": (a.get("principal") or {}).get("id"),
            "sites": [str(r.get("site")) for r in a.get("resources") or ()],
        }
        for a in matched
    ]
    if args.json:
        out.data({"dryRun": True, "rule": rule_json(rule), "alerts": len(alerts), "matched": found})
        return EXIT_OK
    if found:
        out.table(
            ["ALERT", "LAST SEEN", "SEVERITY", "DETECTION", "PRINCIPAL", "SITES"],
            [
                [
                    f["alertId"],
                    str(f["lastSeen"] or "")[:16].replace("T", " "),
                    f["severity"] or "-",
                    f["detection"],
                    f["principal"],
                    ", ".join(f["sites"]),
                ]
                for f in found
            ],
            keep=["ALERT"],
        )
    out.say(
        f"dry run: the rule would have allowed {len(found)} of {len(alerts)} alert(s) in "
        f"{where}; nothing was written"
    )
    return EXIT_OK


def alert_of_record(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """What an allow rule looks at in an alert, from the alert's record in the store; None
    for a record written before records kept it."""
    view = record.get("allowView")
    if not isinstance(view, dict):
        return None
    return {
        "id": record.get("alertId"),
        "detection": record.get("detection"),
        "severity": view.get("severity"),
        "lastSeen": record.get("lastSeen"),
        "principal": {
            "id": record.get("principalId"),
            "name": record.get("principalName"),
            "appId": view.get("appId"),
        },
        "sourceIps": view.get("sourceIps") or [],
        "resources": view.get("resources") or [],
        "reasons": [{"code": code} for code in view.get("reasonCodes") or ()],
    }


def read_alerts(path: Path) -> list[dict[str, Any]]:
    """Alerts as JSON lines from a file (`-`: standard input); InputError names a bad line."""
    try:
        if str(path) == "-":
            lines = sys.stdin.buffer.read().splitlines()
        else:
            lines = path.read_bytes().splitlines()
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from err
    alerts: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            alert = json.loads(line)
        except ValueError as err:
            raise InputError(f"{path}:{number}: not JSON: {err}") from err
        if not isinstance(alert, dict):
            raise InputError(f"{path}:{number}: not an alert (a JSON object)")
        alerts.append(alert)
    return alerts


def _allow_list(args: argparse.Namespace) -> int:
    out = _output(args)
    store = _open(args)
    try:
        stored = store.list_rules()
    finally:
        store.close()
    now = clock()
    gate = AllowGate(rules=[s.rule for s in stored], now=now, max_days=settings().allow_max_days)
    invalid = {text.split(":", 1)[0] for text in gate.invalid}

    def status(rule_id: str) -> str:
        if rule_id in invalid:
            return "invalid"
        return "expired" if rule_id in gate.expired else "active"

    if args.json:
        out.data(
            [
                {**rule_json(s.rule), "status": status(s.rule.id), "problems": problems(s.rule)}
                for s in stored
            ]
        )
        return EXIT_OK
    rows = []
    for s in stored:
        r = s.rule
        match = [
            f"{name}={value}"
            for name, value in (
                ("principal", r.principal),
                ("app", r.app_id),
                ("cidr", r.cidr),
                ("site", r.site),
                ("detection", r.detection),
                ("reason", r.reason_code),
            )
            if value
        ]
        rows.append(
            [
                r.id,
                status(r.id),
                last_day(r.expires),
                r.hits,
                f"{r.last_hit:%Y-%m-%d %H:%M}" if r.last_hit else "-",
                " ".join(match),
                r.added_by,
                r.reason,
            ]
        )
    out.table(
        ["ID", "STATUS", "LAST DAY", "HITS", "LAST HIT", "MATCHES", "BY", "WHY"],
        rows,
        keep=["ID"],
    )
    if rows:
        out.say(
            "LAST DAY: the last day (UTC) a rule holds; LAST HIT: when the activity it "
            "last allowed happened"
        )
    for rule_id in gate.expired:
        out.say(f"rule {rule_id} has expired: remove it, or add a new one")
    return EXIT_OK


def _allow_remove(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        for _attempt in range(ATTEMPTS):
            found = [s for s in store.list_rules() if s.rule.id == args.rule_id]
            if not found:
                raise DetectorError(
                    f"no allow rule {args.rule_id!r} in {_where(args)}; `detector allow list` "
                    "shows them"
                )
            try:
                store.remove_rule(args.rule_id, found[0].etag)
            except ConflictError:
                continue  # its hits were counted meanwhile: read it again
            break
        else:
            raise DetectorError(f"allow rule {args.rule_id} kept changing; retry")
    finally:
        store.close()
    out = _output(args)
    if args.json:
        out.data({"ruleId": args.rule_id, "removed": True, "rule": rule_json(found[0].rule)})
    else:
        out.say(f"removed allow rule {args.rule_id}")
    return EXIT_OK


# Feedback.


CLAIM = "verdictClaim"
CLAIM_FOR = timedelta(minutes=2)
"""How long a verdict being applied keeps others off the same alert: the record is claimed
(a conditional write) before the baseline changes, so two verdicts given at once cannot
both change the baseline and leave the record saying the other one."""


def _claim_verdict(
    store: OperatorStore,
    alert_id: str,
    record: Mapping[str, Any],
    etag: str,
    *,
    verdict: str,
    by: str,
) -> str:
    """Claim an alert's record for one verdict; the new etag, or DetectorError when another
    verdict holds it or got there first."""
    now = clock()
    held = record.get(CLAIM)
    if isinstance(held, dict):
        try:
            fresh = now - datetime.fromisoformat(str(held.get("at"))) < CLAIM_FOR
        except ValueError:
            fresh = False
        if fresh:
            raise DetectorError(
                f"a {held.get('verdict')} verdict on alert {alert_id!r} by {held.get('by')!r} "
                "is being applied; run `detector feedback` again in a minute or two"
            )
    claimed = {**record, CLAIM: {"verdict": verdict, "by": by, "at": now.isoformat()}}
    try:
        return store.put_alert_record_if(claimed, etag)
    except ConflictError:
        raise DetectorError(
            f"another verdict on alert {alert_id!r} was given at the same moment; nothing was "
            "changed: run `detector feedback` again to see it and give yours after it"
        ) from None


def _feedback(args: argparse.Namespace) -> int:
    verdict = "benign" if args.benign else "malicious"
    by = _user(args.by)
    store = _open(args)
    try:
        record, record_etag = store.get_alert_record(args.alert_id)
        if record is None or record_etag is None:
            raise DetectorError(
                f"no record of alert {args.alert_id!r} in {_where(args)}: feedback works for "
                "alerts the timer (or `replay --store`) emitted into this store; check the id "
                "(the alert's `id`)"
            )
        principal_id = str(record["principalId"])
        record_etag = _claim_verdict(
            store, args.alert_id, record, record_etag, verdict=verdict, by=by
        )
        changed = 0
        for _attempt in range(ATTEMPTS):
            held = store.load([principal_id]).get(principal_id)
            if verdict == "benign":
                baseline, changed = teach(held.baseline if held else None, record)
            elif held is None:
                baseline, changed = None, 0
            else:
                baseline, changed = unlearn(held.baseline, record)
            if baseline is None:
                break
            try:
                store.save([StoredBaseline(baseline=baseline, etag=held.etag if held else None)])
            except ConflictError:
                continue
            break
        else:
            raise DetectorError(f"the baseline of {principal_id!r} kept changing; retry")
        marked = {
            **{k: v for k, v in record.items() if k != CLAIM},
            "verdict": {
                "verdict": verdict,
                "by": by,
                "reason": args.reason or "",
                "at": clock().isoformat(),
                "changedValues": changed,
            },
        }
        try:
            store.put_alert_record_if(marked, record_etag)
        except ConflictError:
            raise DetectorError(
                f"the record of alert {args.alert_id!r} changed while this verdict was applied "
                f"(its claim lapsed after {CLAIM_FOR.seconds // 60} minutes); the baseline "
                "holds this verdict's change: give the verdict again to record it"
            ) from None
    finally:
        store.close()
    earlier = record.get("verdict") if isinstance(record.get("verdict"), dict) else None
    message = verdict_sentence(
        args.alert_id, verdict, changed, principal_id, record, earlier=earlier
    )
    out = _output(args)
    if args.json:
        out.data(
            {
                "alertId": args.alert_id,
                "principalId": principal_id,
                "verdict": verdict,
                "previousVerdict": earlier.get("verdict") if earlier else None,
                "changedValues": changed,
                "values": record.get("values" if verdict == "benign" else "novel") or {},
                "message": message,
            }
        )
    else:
        out.say(message)
    return EXIT_OK


def verdict_sentence(
    alert_id: str,
    verdict: str,
    changed: int,
    principal_id: str,
    record: Mapping[str, Any],
    *,
    earlier: Mapping[str, Any] | None = None,
) -> str:
    """What a verdict did to the baseline, in words: the values taught or kept out."""
    whose = f"the baseline of {principal_id!r}"
    if verdict == "benign":
        values = _values_text(record.get("values") or {})
        if changed:
            text = (
                f"alert {alert_id} is benign: taught {changed} value(s) new to {whose} "
                f"({values}), so the same activity no longer counts as new"
            )
        else:
            text = (
                f"alert {alert_id} is benign: {whose} already holds every value of it "
                f"({values}), learned when it was scored; they stay, so the same activity "
                "does not count as new"
            )
    else:
        novel = record.get("novel") or {}
        if changed:
            text = (
                f"alert {alert_id} is malicious: took {changed} value(s) the alert was the "
                f"first to show ({_values_text(novel)}) out of {whose}, so the same activity "
                "alerts again"
            )
        elif novel:
            text = (
                f"alert {alert_id} is malicious: the value(s) it was the first to show "
                f"({_values_text(novel)}) are not in {whose}; nothing to take out, the same "
                "activity alerts again"
            )
        else:
            text = (
                f"alert {alert_id} is malicious: it showed nothing new to {whose}, so nothing "
                "was taken out; the baseline is unchanged and the same activity scores as it did"
            )
    if earlier and earlier.get("verdict"):
        before = f"{earlier.get('verdict')} by {earlier.get('by')} at {earlier.get('at')}"
        if earlier.get("verdict") != verdict:
            text += f"; this reverses the earlier verdict ({before})"
        else:
            text += f"; it was already marked {before}"
    return text


def _values_text(values: Mapping[str, Any], most: int = 3) -> str:
    """`sites: a, b; networks: 203.0.113.0/24` (a few per dimension)."""
    parts = []
    for name, entries in sorted(values.items()):
        names = sorted(entries)
        shown = ", ".join(str(v) for v in names[:most])
        more = f" and {len(names) - most} more" if len(names) > most else ""
        parts.append(f"{name.replace('_', ' ')}: {shown}{more}")
    return "; ".join(parts) or "no values"


# Backfill.


def logs_source(settings: OperatorSettings) -> Any:
    """The Log Analytics source the settings name (tests replace this)."""
    from azure.monitor.query import LogsQueryClient  # noqa: PLC0415 - only this command

    from detectors.clients.connections import credential  # noqa: PLC0415
    from detectors.sources.log_analytics import LogAnalyticsSource  # noqa: PLC0415

    workspace = settings.workspace_id
    if not workspace:
        raise DetectorError(
            "LOG_ANALYTICS_WORKSPACE_ID is not set: export the workspace's id (a GUID) first"
        )
    client = LogsQueryClient(
        credential(settings.storage.client_id),
        endpoint=settings.logs_endpoint,
        retry_total=0,
        connection_timeout=15,
        read_timeout=300,
    )
    return LogAnalyticsSource(client=client, workspace_id=workspace)


def days_to_learn(text: str) -> int:
    """`backfill --days`: a whole number of days from 1 to MAX_DAYS, checked before anything
    is read or created."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if not 1 <= value <= BACKFILL_MAX_DAYS:
        raise argparse.ArgumentTypeError(
            f"{value}: give a number of days from 1 to {BACKFILL_MAX_DAYS}"
        )
    return value


class DayBar:
    """Progress of a day-by-day command: each day's line, and a live line with the days
    done, their rate and the time left."""

    def __init__(self, out: Output, label: str) -> None:
        self.bar = out.bar(label, 0, unit="days")
        self.first = True

    def __call__(self, day: DayDone) -> None:
        if self.first:
            # Days an interrupted run finished are not part of this run's rate.
            self.bar.base = self.bar.done = day.total - day.left - 1  # the rate from the start
            self.first = False
        self.bar.note(day.text)
        self.bar.update(day.total - day.left, total=day.total)

    def close(self) -> None:
        """Take the live line away."""
        self.bar.close()


def _backfill(args: argparse.Namespace) -> int:
    out = _output(args)
    chosen = settings()
    lateness = timedelta(hours=chosen.lateness_hours)
    if args.archive is not None:
        from detectors.clients.connections import archive_service  # noqa: PLC0415
        from detectors.sources.archive import ArchiveLogSource  # noqa: PLC0415

        source = ArchiveLogSource(archive_service(args.archive, os.environ))
    else:
        source = logs_source(chosen)
    store = _open(args, must_exist=False)
    bar = DayBar(out, "backfill")
    try:
        report = backfill(
            source=source,
            store=store,
            settings=chosen.detection,
            days=args.days,
            now=clock(),
            lateness=lateness,
            progress=bar,
        )
    except DetectorError as err:
        raise DetectorError(
            f"{err}; the days learned so far are kept: run the same command again to resume"
        ) from err
    finally:
        bar.close()
        store.close()
    if args.json:
        out.data(
            {
                "since": report.since,
                "until": report.until,
                "days": report.days,
                "done": report.done,
                "resumedFrom": report.resumed_from,
                "rows": report.rows,
                "rejected": report.rejected,
                "observations": report.observations,
                "principals": len(report.principals),
                "queries": report.queries,
            }
        )
    out.say(report.line())
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from detectors.runs.export import export  # noqa: PLC0415 - only this command
    from detectors.sources.queries import EXPORT_QUERIES  # noqa: PLC0415

    out = _output(args)
    chosen = settings()
    source = logs_source(chosen)
    source.queries = EXPORT_QUERIES
    bar = DayBar(out, "export")
    try:
        report = export(
            source=source,
            out=args.out,
            since=args.since,
            until=args.until or clock(),
            lateness=timedelta(hours=chosen.lateness_hours),
            progress=bar,
        )
    except DetectorError as err:
        raise DetectorError(
            f"{err}; the days written so far are kept: run the same command again to resume"
        ) from err
    finally:
        bar.close()
    if args.json:
        out.data(
            {
                "since": report.since.isoformat(),
                "until": report.until.isoformat(),
                "days": report.days,
                "done": report.done,
                "resumedFrom": report.resumed_from.isoformat() if report.resumed_from else None,
                "rows": report.rows,
                "queries": report.queries,
                "splits": report.splits,
                "retries": report.retries,
                "out": report.out,
            }
        )
    out.say(report.line())
    return EXIT_OK
