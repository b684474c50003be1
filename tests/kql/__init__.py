"""Checks KQL the way the service does: Microsoft's Kusto.Language, run by Node.

`check(queries)` runs `check.js` once for the whole batch against the declared workspace
(`schemas.TABLES`) and returns one `Result` per query. A missing `node` or a missing
`@kusto/language-service-next` is a failure, never a skip: `make test` installs both
(`npm ci`), so their absence means a broken setup, not an optional test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.kql import schemas
from tests.node import NodeUnavailableError, run_script

ROOT = Path(__file__).resolve().parents[2]
CHECK_JS = Path(__file__).with_name("check.js")
SERVICE = ROOT / "node_modules" / "@kusto" / "language-service-next"
PACKAGE = SERVICE / "Kusto.Language.Bridge.min.js"
TIMEOUT_SECONDS = 120


class CheckerUnavailableError(RuntimeError):
    """Node or the KQL language service is not installed, or the checker itself failed."""


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    code: str
    message: str
    start: int
    length: int


@dataclass(frozen=True)
class Result:
    """What Kusto.Language says about one query."""

    query: str
    diagnostics: list[Diagnostic]
    columns: dict[str, str]  # result column name -> KQL type, in order
    strings: list[str]  # the values of the query's string literals, as the parser reads them

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "Error"]

    def explain(self) -> str:
        """The diagnostics with the text they point at, for an assertion message."""
        lines = [
            f"{d.severity} {d.code} at {d.start}: {d.message} "
            f"[{self.query[d.start : d.start + d.length]!r}]"
            for d in self.diagnostics
        ]
        return "\n".join([*lines, "in:", self.query])


def check(queries: Sequence[str], database: dict[str, str] | None = None) -> list[Result]:
    """Parse and analyse every query in one Node run; one Result per query, in order."""
    request = {"database": database or schemas.database(), "queries": list(queries)}
    try:
        answers: list[dict[str, Any]] = run_script(
            CHECK_JS, request, needs=PACKAGE, timeout=TIMEOUT_SECONDS
        )
    except NodeUnavailableError as err:
        raise CheckerUnavailableError(str(err)) from err
    if len(answers) != len(queries):
        raise CheckerUnavailableError(f"{len(answers)} answers for {len(queries)} queries")
    return [
        Result(
            query=query,
            diagnostics=[Diagnostic(**d) for d in answer["diagnostics"]],
            columns={c["name"]: c["type"] for c in answer["columns"]},
            strings=answer["strings"],
        )
        for query, answer in zip(queries, answers, strict=True)
    ]
