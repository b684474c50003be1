"""Reason codes: the vocabulary in which a finding explains itself to an analyst."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
