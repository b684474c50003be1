"""What every `detector` command prints: tables, progress, JSON and errors, in one place.

- Tables fit the terminal: a column too wide for it wraps its cells onto more lines, never
  cut, so an id, a site or a detection is always there in full. Off a terminal (a pipe, a
  file) rows stay on one line, unless `COLUMNS` says how wide to be.
- Progress is a live line on standard error with the share done, the rate and the time
  left; only on a terminal, and never with `--quiet`. Notes (one line per day of a
  backfill) print above it, or as plain lines off a terminal.
- `--json` prints one JSON document on standard output, on success and on error: an error
  is `{"error": {"message": ..., "kind": ...}}` with the exit code kept (docs/cli.md).
  Keys are camelCase, as in the alerts.

Written here rather than with a library: nothing to install beside the Function App's own
packages, and `detector --help` stays quick to start.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from detectors.cli.terminal import printable
from detectors.model.errors import (
    ConfigurationError,
    ConflictError,
    InputError,
    StoreError,
)

GAP = "  "
"""Between two columns of a table."""
MIN_COLUMN = 10
"""A column wrapped to fit the terminal keeps at least this many characters a line."""
REDRAW_SECONDS = 0.2
"""A live progress line is redrawn at most this often."""
RATE_AFTER_SECONDS = 1.0
"""The rate and the time left are shown once they were measured over this long."""

_CAMEL = re.compile(r"_([a-z0-9])")


def camel(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A record's field names in camelCase (`alert_queue` -> `alertQueue`). Only the names of
    its own fields: the keys of a mapping it holds are data (rule ids in `allowed`)."""
    return {_camel_key(str(k)): v for k, v in fields.items()}


def _camel_key(key: str) -> str:
    return _CAMEL.sub(lambda m: m.group(1).upper(), key)


def error_kind(err: BaseException) -> str:
    """The `kind` of an error object: what sort of problem, for a script to branch on (an
    error a command re-raised with more words keeps the kind of the one it wraps)."""
    seen: BaseException | None = err
    while seen is not None:
        for cls, kind in (
            (ConflictError, "conflict"),
            (StoreError, "store"),
            (ConfigurationError, "configuration"),
            (InputError, "input"),
        ):
            if isinstance(seen, cls):
                return kind
        seen = seen.__cause__
    return "error"


def error_document(message: str, kind: str) -> dict[str, Any]:
    """The one JSON shape of an error (docs/cli.md)."""
    return {"error": {"message": message, "kind": kind}}


def columns(stream: TextIO) -> int | None:
    """How wide a table may be: `COLUMNS`, else the terminal's width, else no limit."""
    given = os.environ.get("COLUMNS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    try:
        if stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        pass
    return None


def fit(natural: Sequence[int], floors: Sequence[int], width: int | None) -> list[int]:
    """Column widths: the natural ones, the widest narrowed (not below its floor) until the
    row fits `width`."""
    widths = list(natural)
    if width is None:
        return widths
    room = width - len(GAP) * (len(widths) - 1)
    while sum(widths) > room:
        shrinkable = [i for i, w in enumerate(widths) if w > floors[i]]
        if not shrinkable:
            break  # wider than the terminal, but nothing is cut
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    width: int | None,
    keep: Sequence[str] = (),
) -> str:
    """Aligned columns within `width`, cells wrapped and never cut; columns named in `keep`
    (ids) are wrapped only when nothing else is left to narrow."""
    cells = [[printable(str(c)) for c in row] for row in rows]
    natural = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    # Narrowed first: the columns that are not keys, down to their longest word (so they
    # wrap between words); then the keys; then, only if the terminal is very narrow, any
    # column down to MIN_COLUMN, words broken.
    words = [
        max([len(h), *(len(w) for r in cells for w in r[i].split())]) for i, h in enumerate(headers)
    ]
    least = [min(n, max(len(h), MIN_COLUMN)) for h, n in zip(headers, natural, strict=True)]
    widths = natural
    for floors in (
        [n if h in keep else min(n, w) for h, n, w in zip(headers, natural, words, strict=True)],
        [
            lo if h in keep else min(n, w)
            for h, n, w, lo in zip(headers, natural, words, least, strict=True)
        ],
        least,
    ):
        widths = fit(widths, floors, width)
    lines = [GAP.join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        wrapped = [_wrap(c, w) for c, w in zip(row, widths, strict=True)]
        for n in range(max(len(w) for w in wrapped)):
            parts = [(w[n] if n < len(w) else "") for w in wrapped]
            lines.append(GAP.join(p.ljust(w) for p, w in zip(parts, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def duration_text(seconds: float) -> str:
    """`0:07`, `12:30`, `1:02:03`."""
    whole = max(int(seconds + 0.5), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(kw_only=True, slots=True)
class Bar:
    """One long task's progress: a live line with share, rate and time left (or nothing)."""

    stream: TextIO
    label: str
    total: float
    unit: str = ""
    scale: float = 1.0
    """`done` and `total` are divided by this for display (bytes shown as MB: 1e6)."""
    live: bool = True
    clock: Callable[[], float] = time.monotonic
    done: float = 0.0
    base: float = 0.0
    """Done when the rate started to be measured (at `started`): an interrupted run's days,
    or what a phase had done when it first reported."""
    detail: str = ""
    started: float = field(init=False)
    drawn: float | None = field(default=None, init=False)
    width: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def update(self, done: float, *, total: float | None = None, detail: str = "") -> None:
        """Where the task is now; redrawn at most every REDRAW_SECONDS."""
        self.done, self.detail = done, detail
        if total is not None:
            self.total = total
        now = self.clock()
        if self.drawn is None or now - self.drawn >= REDRAW_SECONDS:
            self.drawn = now
            self._draw(self.line(now))

    def measure_from(self, done: float) -> None:
        """Measure the rate from now, with `done` already done."""
        self.started, self.base, self.done = self.clock(), done, done

    def advance(self, amount: float = 1, *, detail: str = "") -> None:
        """`amount` more done."""
        self.update(self.done + amount, detail=detail)

    def line(self, now: float) -> str:
        """`label: 42.0%  21/50 days  3.1 days/s  ETA 0:09  (detail)`."""
        elapsed = max(now - self.started, 1e-9)
        share = self.done / self.total if self.total else 0.0
        unit = f" {self.unit}" if self.unit else ""
        parts = [
            f"{self.label}: {min(share, 1.0):6.1%}",
            f"{_number(self.done / self.scale)}/{_number(self.total / self.scale)}{unit}",
        ]
        # A rate over less than a second says nothing yet.
        if self.done > self.base and now - self.started >= RATE_AFTER_SECONDS:
            rate = (self.done - self.base) / elapsed
            parts.append(f"{_number(rate / self.scale)}{unit}/s")
            left = max(self.total - self.done, 0) / rate
            parts.append(f"ETA {duration_text(left)}")
        text = GAP.join(parts)
        return f"{text}  ({self.detail})" if self.detail else text

    def note(self, text: str) -> None:
        """A line that stays (above the live line)."""
        if self.live:
            self._clear()
        self.stream.write(printable(text) + "\n")
        if self.live and self.drawn is not None:
            self._draw(self.line(self.clock()))
        self.stream.flush()

    def close(self) -> None:
        """Take the live line away."""
        if self.live:
            self._clear()
            self.stream.flush()

    def _draw(self, text: str) -> None:
        if not self.live:
            return
        self.stream.write("\r" + text.ljust(self.width))
        self.width = len(text)
        self.stream.flush()

    def _clear(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.width = 0


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or float(value).is_integer() else f"{value:,.1f}"


class Output:
    """Where a command's results, notes, progress and errors go, as `--json` and `--quiet`
    say."""

    def __init__(
        self,
        *,
        json_mode: bool = False,
        quiet: bool = False,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.clock = clock

    @classmethod
    def of(cls, args: Any) -> Output:
        """The output a parsed command line asks for."""
        return cls(
            json_mode=bool(getattr(args, "json", False)), quiet=bool(getattr(args, "quiet", False))
        )

    def data(self, value: Any) -> None:
        """The command's result as JSON on standard output (its keys camelCase already)."""
        self.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        self.stdout.flush()

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[Any]], keep: Sequence[str] = ()
    ) -> None:
        """Rows as aligned columns that fit the terminal."""
        self.stdout.write(table(headers, rows, width=columns(self.stdout), keep=keep))

    def text(self, text: str) -> None:
        """Human output on standard output."""
        self.stdout.write(text if text.endswith("\n") else text + "\n")

    def say(self, text: str) -> None:
        """A message for the person at the terminal, on standard error."""
        self.stderr.write(printable(text) + "\n")
        self.stderr.flush()

    def error(self, message: str, kind: str) -> None:
        """An error: the JSON error object on standard output with `--json`, else one line
        on standard error."""
        if self.json_mode:
            self.stdout.write(json.dumps(error_document(message, kind), indent=2) + "\n")
            self.stdout.flush()
        else:
            self.stderr.write(f"detector: error: {message}\n")

    def bar(self, label: str, total: float, *, unit: str = "", scale: float = 1.0) -> Bar:
        """A progress line for a long task: live only on a terminal and without `--quiet`
        (its notes still print off a terminal, not with `--quiet`)."""
        live = not self.quiet and _is_terminal(self.stderr)
        return Bar(
            stream=self.stderr if not self.quiet else io.StringIO(),
            label=label,
            total=total,
            unit=unit,
            scale=scale,
            live=live,
            clock=self.clock,
        )

    def confirm(self, question: str) -> bool:
        """Whether the person at the terminal answers yes; False off a terminal."""
        if not _is_terminal(sys.stdin):
            return False
        self.stderr.write(printable(question) + " [y/N] ")
        self.stderr.flush()
        answer = sys.stdin.readline().strip().casefold()
        return answer in ("y", "yes")


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
