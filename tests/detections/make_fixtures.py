"""Writes the detections' fixture files: each story's rows as a Log Analytics NDJSON export.

    .venv/bin/python -m tests.detections.make_fixtures

The stories are the ones `test_detections` tells with `tests/rowkit.py`; the expected
result beside each file (`<case>.expected.json`) is written by hand and is not touched
here. Rewriting a fixture changes its event ids, not what it shows. A story of more than a
megabyte is written gzipped, as exports often are.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

from tests.detections import test_detections as stories
from tests.rowkit import write_ndjson

FIXTURES = Path(__file__).resolve().parent / "fixtures"
_GZIP_OVER = 1_000_000

CASES: dict[tuple[str, str], Callable[[], list[dict]]] = {
    (stories.CRED, "routine-cli-on-own-sites"): stories.routine_cli_on_own_sites,
    (stories.CRED, "pipeline-from-changing-agent-addresses"): stories.pipeline_from_changing_agents,
    (stories.CRED, "harvest-at-night-with-a-stolen-identity"): stories.harvest_at_night,
    (stories.CRED, "probing-then-success"): stories.probing_then_success,
    (stories.CRED, "profile-then-login-from-an-unknown-block"): (
        stories.profile_then_login_from_an_unknown_block
    ),
    (stories.WEBJOB, "pipeline-deploying-its-jobs"): lambda: stories.pipeline_deploys(25),
    (stories.WEBJOB, "scheduled-runs-by-their-identity"): lambda: stories.scheduler_runs(20),
    (stories.WEBJOB, "job-planted-after-a-basic-auth-login"): (
        stories.job_planted_after_basic_auth_login
    ),
    (stories.WEBJOB, "repetitive-runs-by-a-new-runner"): stories.repetitive_runs_by_a_new_runner,
}


def main() -> None:
    for (detection, case), story in CASES.items():
        folder = FIXTURES / detection
        folder.mkdir(parents=True, exist_ok=True)
        path = write_ndjson(folder / f"{case}.jsonl", story())
        if path.stat().st_size > _GZIP_OVER:
            packed = path.with_suffix(".jsonl.gz")
            packed.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
            path.unlink()
            path = packed
        print(f"{path.relative_to(FIXTURES)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
