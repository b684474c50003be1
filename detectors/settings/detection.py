"""Thresholds and weights of the detections: one documented value each, no literals in code.

Every field can be overridden from the environment as `DETECTOR_<FIELD>` (upper case),
which is how the Function App's app settings reach it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from detectors.model.errors import ConfigurationError
from detectors.model.hosting import parse_ranges


@dataclass(frozen=True, kw_only=True, slots=True)
class DetectionSettings:
    """How baselines learn and how evidence turns into a score and a severity."""

    # How baselines learn and age.
    baseline_max_age_days: int = 45
    """A value not seen for this many days stops counting as known."""
    quarantine_days: int = 7
    """What only an alert's activity taught a principal's baseline (a new network, tool,
    site...) counts as known this many days after the alert, unless `feedback` gives a
    verdict first (benign: known at once; malicious: never). 0 learns it at once."""
    baseline_max_values: int = 256
    """At most this many values are kept per baseline dimension (the most recent win)."""
    min_history_days: int = 2
    """A principal active on fewer earlier days than this is scored as having no history."""
    mature_history_days: int = 7
    """History needed before novelty counts fully; below it, novelty weighs less."""
    immature_factor: float = 0.3
    """What novelty weighs for a principal just past `min_history_days` (rising to 1)."""
    roaming_networks: int = 6
    """A principal seen from at least this many networks roams: a new network weighs less."""
    min_hour_history: int = 20
    """Active hours needed before an unusual hour of day counts as evidence."""
    unusual_hour_share: float = 0.02
    """An hour of day holding less than this share of the principal's activity (with half the
    share of the hours on either side) is unusual."""
    hour_overrun_minutes: int = 30
    """Work that goes on past the end of a usual hour, with no pause longer than this, is not
    in an unusual hour: the hour after a usual one is usual while the principal's last action
    was at most this long before."""
    maintenance_slot_hours: int = 1
    """A credential, key or basic-auth change within this many hours of an hour of the week
    in which the principal made such changes in an earlier week is in its maintenance window."""
    login_attribution_minutes: int = 30
    """A WebJob file change is tied to the last Kudu/FTP login on its site within this time."""

    # Thresholds.
    burst_sites: int = 4
    """Credential reads on at least this many sites in one burst are a harvesting pattern."""
    failure_burst: int = 3
    """At least this many failed attempts in one burst count as probing."""
    rate_factor: float = 3.0
    """Activity above this multiple of the principal's own busiest earlier period is a spike."""
    min_rate_credential_reads: int = 10
    """Credential reads in one burst below this count never make a rate spike."""
    min_rate_webjob_runs: int = 6
    """WebJob runs in one hour below this count never make a rate spike."""

    # Weights: each reason adds its weight to the finding's score.
    weight_no_history: float = 15
    weight_deployment_credentials: float = 12
    weight_app_secrets: float = 5
    weight_function_keys: float = 15
    weight_function_keys_extra: float = 5
    """Added for each further set of keys listed in a burst (another app's host keys,
    another function's keys or secrets), up to 5."""
    own_app_key_sets: int = 3
    """At most this many sets of function keys of one app the principal works on, listed in
    the portal from its usual networks in its usual hours, are a developer testing its
    function (its keys, its URL, the App keys blade): `FUNCTION_KEYS` and a first listing's
    `NEW_OPERATION` weigh `peer_routine_factor` (when its peers list keys) or
    `known_sites_factor`."""
    weight_credential_change: float = 15
    weight_basic_auth_policy: float = 25
    weight_new_site: float = 15
    weight_new_site_extra: float = 5
    weight_site_burst: float = 25
    weight_new_scripting_tool: float = 20
    weight_new_tool: float = 8
    weight_new_network: float = 20
    hosting_factor: float = 1.5
    """Multiplies `NEW_NETWORK` for a person whose new address block belongs to a provider
    that rents servers (`model.hosting`), roaming or not: people do not work from VPSs."""
    roaming_factor: float = 0.25
    """Multiplies the new-network weight for principals that roam (pipelines' agents)."""
    weight_unusual_hour: float = 10
    weight_rate_spike: float = 20
    weight_failures: float = 15
    weight_failures_extra: float = 2.5
    """`FAILURES` adds this for each refused site past `burst_sites`, up to four."""
    weight_failures_then_success: float = 15
    weight_refused_key_sweep: float = 35
    """`SITE_BURST` for a person's refused sweep of function keys, outside the portal, of apps
    it does not work on (with `FAILURES`, though the refusals are on fewer sites)."""
    weight_new_operation: float = 20
    weight_new_webjob: float = 25
    weight_job_files_changed: float = 15
    weight_unattributed_job_change: float = 20
    weight_job_stopped_or_deleted: float = 10
    weight_repetitive_runs: float = 30
    routine_factor: float = 0.4
    """Multiplies credential-change weights for principals that routinely make such changes."""
    known_sites_factor: float = 0.5
    """Multiplies tool and network novelty when every site touched is one the principal knows."""

    peer_routine_factor: float = 0.4
    """Multiplies novelty that is routine for the principal's peers (others of its type): an
    address block colleagues use, or a new principal acting like its peers (new joiners)."""
    broad_sites: int = 12
    """A principal that took credentials of at least this many sites works broadly (a lead,
    an operator): a new site weighs `broad_sites_factor`, and a `SITE_BURST` needs
    `burst_sites` sites new to it rather than half of them."""
    broad_sites_factor: float = 0.5
    """Multiplies `NEW_SITE` for a principal that works broadly."""
    peer_site_share: float = 0.5
    """A new site is one of its peers' when at least this share of the principals that take
    its credentials (its crowd) also take those of the sites the principal knows in the burst."""
    min_peer_site_crowd: int = 2
    """A site's crowd needs at least this many other principals to tell whose site it is."""
    related_site_factor: float = 0.5
    """Multiplies `NEW_SITE` when every new site sits in a resource group the principal knows."""
    established_job_factor: float = 0.4
    """Multiplies `NEW_WEBJOB` when the job has its own history on the site (an existing job)."""
    non_production_factor: float = 0.5
    """Multiplies what a person's hands-on edit of job files adds (`NEW_WEBJOB`, its
    `NEW_OPERATION`, `JOB_FILES_CHANGED`, `LOGIN_THEN_JOB_FILES`) when it is on non-production
    sites of apps it works on, from its usual networks in its usual hours, with no job stopped
    or deleted: development. Production is never damped so."""
    weight_new_job_on_site: float = 20
    weight_job_run_spike: float = 15

    # Correlation: chains of actions across tables, principals and windows.
    chain_minutes: int = 120
    """Actions on one site this close in time can form a chain."""
    weight_download_then_login: float = 30
    deployment_login_minutes: int = 5
    """A `$site` login this soon after an automation identity's deployment of the site is
    the deployment's own, not a use of a profile someone took before (`DOWNLOAD_THEN_LOGIN`)."""
    weight_policy_then_download: float = 20
    weight_reset_then_download: float = 20
    weight_login_then_job_files: float = 15
    weight_job_created_then_run: float = 20
    weight_shared_source: float = 30
    weight_shared_source_refused: float = 15
    """`SHARED_SOURCE` adds this when the credentials taken are of a site the probing
    identity was refused: the second identity holds exactly what the first could not get."""
    weight_campaign: float = 20
    """`CAMPAIGN` adds this for each later day (up to three) on which a block new to the
    principal and the organisation took credentials of another site, and nothing else."""
    campaign_days: int = 4
    """The days of a new block's trail (`CAMPAIGN`) must each follow the one before within
    this many days (a weekend fits), and a trail is forgotten this long after its last use."""

    # Alert bursts: one alert per principal, detection and burst; updates, not repeats.
    burst_gap_minutes: int = 120
    """A finding this close to the last one of the same principal and detection continues
    its burst (same `burst.id`) instead of opening a new alert."""
    quiet_burst_score: float = 20
    """A finding below an alert whose evidence beyond what it took (every download, setting
    or key read scores that) adds up to at least this opens a quiet burst: the
    principal's findings of the next `burst_gap_minutes` are judged together with it, so a
    session that straddles two scoring windows (a job stopped in one, its files edited in
    the next) is judged whole. Probing (`FAILURES`) always opens one."""
    update_min_score_gain: float = 10
    """A burst's later finding is sent as an update only if its severity rises or its
    accumulated score grows by at least this much; otherwise it is counted in `repeats`."""

    hosting_ranges: str = ""
    """The operator's own additions to the providers that rent servers by the hour
    (`model.hosting`): `Provider=CIDR CIDR; Provider=CIDR`. Empty: the built-in list only."""

    # Severity bands.
    alert_threshold: float = 35
    """Findings scoring below this are not alerts."""
    medium_threshold: float = 50
    high_threshold: float = 75

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        """Defaults overridden by `DETECTOR_<FIELD>` variables; every bad value reported at once."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for spec in dataclasses.fields(cls):
            name = f"DETECTOR_{spec.name.upper()}"
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            if spec.type in ("str", str):
                try:
                    _TEXT_CHECKS[spec.name](raw)
                except ValueError as err:
                    problems.append(f"{name}: {err}")
                    continue
                values[spec.name] = raw
                continue
            kind = int if spec.type in ("int", int) else float
            try:
                value = kind(raw)
            except ValueError:
                article = "an integer" if kind is int else "a number"
                problems.append(f"{name}={raw!r} is not {article}")
                continue
            if value < 0:
                problems.append(f"{name}={raw!r} must not be negative")
                continue
            values[spec.name] = value
        if problems:
            raise ConfigurationError("invalid detection settings: " + "; ".join(problems))
        settings = cls(**values)
        if not settings.alert_threshold <= settings.medium_threshold <= settings.high_threshold:
            raise ConfigurationError(
                "invalid detection settings: DETECTOR_ALERT_THRESHOLD <= "
                "DETECTOR_MEDIUM_THRESHOLD <= DETECTOR_HIGH_THRESHOLD must hold, but they are "
                f"{settings.alert_threshold:g}, {settings.medium_threshold:g} and "
                f"{settings.high_threshold:g}"
            )
        return settings


_TEXT_CHECKS: dict[str, Callable[[str], object]] = {"hosting_ranges": parse_ranges}
"""How each text setting is checked when it is read from the environment (ValueError says
what is wrong)."""
