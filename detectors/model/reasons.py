"""Reason codes: the vocabulary in which a finding explains itself to an analyst."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


class ReasonCode(enum.StrEnum):
    """Why a finding scored what it did; docs/reasons.md describes each one."""

    NO_HISTORY = "NO_HISTORY"
    DEPLOYMENT_CREDENTIALS = "DEPLOYMENT_CREDENTIALS"
    APP_SECRETS = "APP_SECRETS"
    FUNCTION_KEYS = "FUNCTION_KEYS"
    CREDENTIAL_CHANGE = "CREDENTIAL_CHANGE"
    BASIC_AUTH_POLICY = "BASIC_AUTH_POLICY"
    NEW_SITE = "NEW_SITE"
    SITE_BURST = "SITE_BURST"
    NEW_SCRIPTING_TOOL = "NEW_SCRIPTING_TOOL"
    NEW_TOOL = "NEW_TOOL"
    NEW_NETWORK = "NEW_NETWORK"
    UNUSUAL_HOUR = "UNUSUAL_HOUR"
    RATE_SPIKE = "RATE_SPIKE"
    FAILURES = "FAILURES"
    FAILURES_THEN_SUCCESS = "FAILURES_THEN_SUCCESS"
    NEW_OPERATION = "NEW_OPERATION"
    NEW_WEBJOB = "NEW_WEBJOB"
    JOB_FILES_CHANGED = "JOB_FILES_CHANGED"
    UNATTRIBUTED_JOB_CHANGE = "UNATTRIBUTED_JOB_CHANGE"
    JOB_STOPPED_OR_DELETED = "JOB_STOPPED_OR_DELETED"
    REPETITIVE_RUNS = "REPETITIVE_RUNS"
    NEW_JOB_ON_SITE = "NEW_JOB_ON_SITE"
    JOB_RUN_SPIKE = "JOB_RUN_SPIKE"
    DOWNLOAD_THEN_LOGIN = "DOWNLOAD_THEN_LOGIN"
    POLICY_THEN_DOWNLOAD = "POLICY_THEN_DOWNLOAD"
    RESET_THEN_DOWNLOAD = "RESET_THEN_DOWNLOAD"
    LOGIN_THEN_JOB_FILES = "LOGIN_THEN_JOB_FILES"
    JOB_CREATED_THEN_RUN = "JOB_CREATED_THEN_RUN"
    SHARED_SOURCE = "SHARED_SOURCE"
    CAMPAIGN = "CAMPAIGN"


TAKEN = frozenset(
    {ReasonCode.DEPLOYMENT_CREDENTIALS, ReasonCode.APP_SECRETS, ReasonCode.FUNCTION_KEYS}
)
"""Reasons that say credentials or secrets were taken: only a successful read adds them."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Reason:
    """One piece of evidence: its code, what it means here, and what it added to the score."""

    code: ReasonCode
    message: str
    weight: float

    def __post_init__(self) -> None:
        # A weight is a float wherever it came from (a setting's default may be written 30):
        # alerts and the engine state show every weight alike, `30.0`.
        if type(self.weight) is not float:
            object.__setattr__(self, "weight", float(self.weight))


NEXT_STEPS: Mapping[ReasonCode, str] = MappingProxyType(
    {
        ReasonCode.NO_HISTORY: (
            "Is this a new employee, a new pipeline, a new managed identity? Look for its "
            "creation in the Entra audit log and its role assignments."
        ),
        ReasonCode.DEPLOYMENT_CREDENTIALS: (
            "Look in `AppServiceAuditLogs` for `$<site>` logins after the download, from "
            "addresses the site's pipelines do not use."
        ),
        ReasonCode.APP_SECRETS: (
            "Which secrets do these settings hold (Key Vault references or literal secrets)? "
            "Rotate literal ones if the read was not expected."
        ),
        ReasonCode.FUNCTION_KEYS: (
            "Rotate the keys if the listing was not expected; review the functions' recent "
            "invocations."
        ),
        ReasonCode.CREDENTIAL_CHANGE: (
            "A reset invalidates the old profile: was it followed by a download? Who asked for it?"
        ),
        ReasonCode.BASIC_AUTH_POLICY: (
            "Read the new policy value on the site; if basic auth is now enabled and nobody "
            "planned it, disable it and look for a profile download."
        ),
        ReasonCode.NEW_SITE: "Does the principal's role justify access to these sites?",
        ReasonCode.SITE_BURST: (
            "Treat as likely compromise until the owner confirms; rotate the credentials of "
            "every listed site."
        ),
        ReasonCode.NEW_SCRIPTING_TOOL: (
            "A user who only ever used the portal now scripts: confirm with them; check the "
            "sign-in log for the same client and address."
        ),
        ReasonCode.NEW_TOOL: "Which application is it (`principal.appId`)? Is it an approved tool?",
        ReasonCode.NEW_NETWORK: (
            "Geolocate and look up the address owner; compare with the principal's sign-in log."
        ),
        ReasonCode.UNUSUAL_HOUR: "Is the owner in another time zone this week, or on call?",
        ReasonCode.RATE_SPIKE: "What is reading so much, and why now?",
        ReasonCode.FAILURES: "Which sites refused? The identity is being used to explore.",
        ReasonCode.FAILURES_THEN_SUCCESS: "Rotate what was read; find the identity's owner.",
        ReasonCode.NEW_OPERATION: "Is this part of a new job role or deployment?",
        ReasonCode.NEW_WEBJOB: "Read the job's files in Kudu; compare with the repository.",
        ReasonCode.JOB_FILES_CHANGED: (
            "Read `run.*` and `settings.job`; is the schedule or command new?"
        ),
        ReasonCode.UNATTRIBUTED_JOB_CHANGE: (
            "Check the deployment history and the site's audit logs; a deployment through the"
            " platform may explain it."
        ),
        ReasonCode.JOB_STOPPED_OR_DELETED: "Which job, and is it back?",
        ReasonCode.REPETITIVE_RUNS: "What does the job do, and who triggers it?",
        ReasonCode.NEW_JOB_ON_SITE: (
            "Read the new job's `run.*` and `settings.job` in Kudu; is it in the repository?"
        ),
        ReasonCode.JOB_RUN_SPIKE: (
            "Who triggers the extra runs, and what does the job do each time?"
        ),
        ReasonCode.DOWNLOAD_THEN_LOGIN: (
            "Treat the profile as stolen: reset the publish profile, disable basic auth, and "
            "read what the login did (deployments, files)."
        ),
        ReasonCode.RESET_THEN_DOWNLOAD: (
            "Who asked for the reset? Were the site's deployments broken afterwards? Look for"
            " `$<site>` logins after the download; reset again and disable basic auth if "
            "nobody owns it."
        ),
        ReasonCode.POLICY_THEN_DOWNLOAD: "Is basic auth now enabled on the site? Who asked for it?",
        ReasonCode.LOGIN_THEN_JOB_FILES: (
            "Compare the job's files with the repository; who was at the console?"
        ),
        ReasonCode.JOB_CREATED_THEN_RUN: "Read the job's files and stop it if nobody owns it.",
        ReasonCode.SHARED_SOURCE: (
            "Treat both identities as one actor's: revoke their sessions, and search the "
            "Activity Log and the sign-in logs for the address."
        ),
        ReasonCode.CAMPAIGN: (
            "Ask the person whether they worked from the block; search the sign-in logs for "
            "it, and treat every credential taken from it since its first day as stolen."
        ),
    }
)
"""What to check next for each reason: the alert's `investigation.nextSteps`, `replay --show`
and the report. docs/reasons.md's last column says the same (a test keeps them equal)."""
