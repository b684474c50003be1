"""Run checkov over infra/ and fail on any failed check or any file it could not parse.

checkov exits 0 when a template does not parse (it only counts it in summary.parsing_errors),
so the exit code alone proves nothing: this reads the JSON report instead. Run with the Python
of the checkov virtual environment (`make infra-check` does).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

INFRA = Path(__file__).resolve().parent
CHECKOV = Path(sys.executable).parent / "checkov"


def main() -> int:
    """Exit status 0 only if checkov scanned resources, parsed every file and failed nothing."""
    command = [
        str(CHECKOV),
        "--directory",
        str(INFRA),
        "--framework",
        "bicep",
        "--skip-download",
        "--output",
        "json",
        "--config-file",
        str(INFRA / ".checkov.yaml"),
    ]
    # A fixed argument list, no shell.
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"checkov gave no JSON report (exit {done.returncode}):", file=sys.stderr)
        print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
        return 1
    reports = report if isinstance(report, list) else [report]
    problems: list[str] = []
    passed = resources = 0
    for item in reports:
        summary = item.get("summary", {})
        results = item.get("results", {})
        passed += summary.get("passed", 0)
        resources += summary.get("resource_count", 0)
        problems += [f"cannot parse {path}" for path in results.get("parsing_errors", [])]
        if summary.get("parsing_errors", 0) and not results.get("parsing_errors"):
            problems.append(f"{summary['parsing_errors']} file(s) could not be parsed")
        problems += [
            f"{check['check_id']} {check['check_name']}: {check['resource']} "
            f"({check['file_path']}:{check['file_line_range'][0]})"
            for check in results.get("failed_checks", [])
        ]
    if resources == 0 or passed == 0:
        problems.append("checkov scanned nothing: is infra/ empty or the framework wrong?")
    for problem in problems:
        print(f"checkov: {problem}", file=sys.stderr)
    print(
        f"checkov: {resources} resources, {passed} checks passed, "
        f"{len(problems)} problem(s); skipped checks and why: infra/.checkov.yaml"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
