"""A deterministic, labelled simulator of App Service activity in the Log Analytics export format.

`simulate(profile)` yields AzureActivity, AppServiceAuditLogs and AppServiceFileAuditLogs rows
(column name to value, dynamic columns as JSON text) for an organisation of developers,
administrators, deployment pipelines, WebJob-running managed identities and monitoring
scripts, with attack scenarios injected after a learning period; `labels(profile)` names the
rows that are each attack. The output is a pure function of the profile: no clock, no I/O
but write_dataset's.

Rough rows per simulated day, averaged over the week (measured, all three tables):

- developer: ~80 (~110 on a working day: 4-12 sessions of CLI, portal, VS Code, Visual
  Studio or Kudu; about 75 AzureActivity rows, the rest files and logins of their own
  deployments); almost nothing at weekends;
- administrator: ~35 (settings reviews, plus a weekly maintenance window);
- pipeline: ~550 (6-18 commit deployments per working day, nightly and release runs; a
  deployment is about 8 AzureActivity rows, 2-5 `$app` logins and 10-100 file writes);
- managed identity: 2 rows per ARM-started WebJob run (every 15 minutes to daily, so it
  grows with the sites: ~120 for 12 sites, ~1,700 for 150), plus WebJob stops and starts
  around deployments;
- monitoring script: 2 rows per production site and settings kind, once a day;
- the apps themselves: one in four writes 150-400 files a day under wwwroot.

The default profile (8 developers, 2 admins, 4 pipelines, 12 sites) gives about 3,700 rows a
day; developers=60, pipelines=30, sites=150 gives about 33,000, a million in 30 days.
"""

from detectors.simulation.dataset import (
    labels,
    labels_document,
    read_labels,
    read_profile,
    write_dataset,
)
from detectors.simulation.profile import (
    ALL_ATTACKS,
    ATTACK_DETECTIONS,
    CREDENTIAL_DOWNLOAD,
    PRODUCT_TEAMS,
    PRODUCT_TEAMS_ATTACKS,
    SHAPES,
    WEBJOB_ACTIVITY,
    OrgProfile,
    ScenarioLabel,
    all_attacks,
)
from detectors.simulation.rows import row_event_id
from detectors.simulation.timeline import simulate

__all__ = [
    "ALL_ATTACKS",
    "ATTACK_DETECTIONS",
    "CREDENTIAL_DOWNLOAD",
    "PRODUCT_TEAMS",
    "PRODUCT_TEAMS_ATTACKS",
    "SHAPES",
    "WEBJOB_ACTIVITY",
    "OrgProfile",
    "ScenarioLabel",
    "all_attacks",
    "labels",
    "labels_document",
    "read_labels",
    "read_profile",
    "row_event_id",
    "simulate",
    "write_dataset",
]
