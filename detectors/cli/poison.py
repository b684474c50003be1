"""`detector poison`: the alerts the notifier gave up on, listed and put back on the queue.

Reads the same storage settings as the other operators' commands (`DETECTOR_STORAGE`, or
`DETECTOR_STORAGE__queueServiceUri` signed in with `az login`) and `DETECTOR_ALERT_QUEUE`;
needs Storage Queue Data Contributor on the account (the deployment grants it to
`operatorsPrincipalId`).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from detectors.cli.output import Output
from detectors.cli.terminal import printable
from detectors.clients.connections import queue_client
from detectors.delivery.poison import PoisonMessage, PoisonQueue, poison_name
from detectors.model.errors import DetectorError
from detectors.settings.app import OperatorSettings

EXIT_OK = 0


def register(commands: Any) -> None:
    """Add `poison list` and `poison requeue` to the command line."""
    poison = commands.add_parser(
        "poison",
        help="list alerts that failed delivery, and put them back on the queue",
        description="After five failed deliveries the Functions host moves an alert to "
        "<DETECTOR_ALERT_QUEUE>-poison, where nothing reads it. List them, fix the "
        "destination (the notifier's errors in Application Insights say what failed), then "
        "requeue: destinations that already have an alert are skipped.",
    )
    actions = poison.add_subparsers(dest="poison_command", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", help="show the alerts waiting there (the first 32)", description="Reads only."
    )
    listing.add_argument("--json", action="store_true", help="print them as JSON")
    listing.set_defaults(handler=_list)
    requeue = actions.add_parser(
        "requeue",
        help="put alerts back on the alert queue",
        description="Moves the messages named (by message id or alert id), or all of them, "
        "back to the alert queue, where they never expire.",
    )
    which = requeue.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", default=[], metavar="ID", help="message or alert ids")
    which.add_argument(
        "--all", action="store_true", help="every alert on the poison queue (not other messages)"
    )
    requeue.add_argument("--json", action="store_true", help="print what moved as JSON")
    requeue.set_defaults(handler=_requeue)


def poison_queue(settings: OperatorSettings) -> PoisonQueue:
    """The poison queue of the alert queue the settings name (tests replace this)."""
    storage = settings.storage
    if not storage.connection_string and not storage.queue_service_uri:
        raise DetectorError(
            "storage is not configured: set DETECTOR_STORAGE__queueServiceUri (from `azd env "
            "get-values`) or DETECTOR_STORAGE (a connection string)"
        )
    return PoisonQueue(
        poison=queue_client(storage, poison_name(settings.alert_queue)),
        alerts=queue_client(storage, settings.alert_queue),
    )


def _list(args: argparse.Namespace) -> int:
    out = Output.of(args)
    queue = poison_queue(OperatorSettings.from_env(os.environ))
    depth = queue.depth()
    found = queue.peek()
    if args.json:
        out.data({"queue": queue.name, "depth": depth, "messages": _rows(found)})
        return EXIT_OK
    out.text(f"{depth} message(s) on {queue.name}")
    if found:
        out.table(
            ["MESSAGE", "SINCE", "EXPIRES", "ALERT"],
            [
                [
                    m.message_id,
                    f"{m.inserted_on:%Y-%m-%d %H:%M}" if m.inserted_on else "?",
                    f"{m.expires_on:%Y-%m-%d %H:%M}" if m.expires_on else "never",
                    printable(
                        m.problem
                        or f"{m.alert_id} [{m.severity or '-'}] {m.detection or '-'}: "
                        f"{m.principal or '?'}: {m.title or ''}"
                    ),
                ]
                for m in found
            ],
            keep=["MESSAGE"],
        )
    if depth > len(found):
        out.text(f"... and {depth - len(found)} more (requeue --all takes every one)")
    return EXIT_OK


def _requeue(args: argparse.Namespace) -> int:
    out = Output.of(args)
    queue = poison_queue(OperatorSettings.from_env(os.environ))
    wanted = set(args.ids)
    # `--all` leaves what is not an alert: the notifier would only refuse it again.
    result = queue.requeue(
        lambda message: (
            (args.all and message.problem is None) or any(message.matches(item) for item in wanted)
        )
    )
    missing = sorted(item for item in wanted if not any(m.matches(item) for m in result.moved))
    if args.json:
        out.data({"moved": _rows(result.moved), "left": result.left, "notFound": missing})
    else:
        target = queue.alerts.queue_name
        out.text(f"moved {len(result.moved)} message(s) back to {target}; {result.left} left")
        for message in result.moved:
            out.text(printable(f"  {message.message_id}  alert {message.alert_id or '-'}"))
    if missing:
        out.say(f"detector: not on {queue.name}: {', '.join(missing)}")
        return 1
    return EXIT_OK


def _rows(messages: list[PoisonMessage]) -> list[dict[str, Any]]:
    return [
        {
            "messageId": m.message_id,
            "insertedOn": m.inserted_on.isoformat() if m.inserted_on else None,
            "expiresOn": m.expires_on.isoformat() if m.expires_on else None,
            "alertId": m.alert_id,
            "detection": m.detection,
            "severity": m.severity,
            "principal": m.principal,
            "title": m.title,
            "problem": m.problem,
        }
        for m in messages
    ]
