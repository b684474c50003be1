"""The Function App's app settings: read once per invocation, every problem reported at once.

The names here are exactly the app settings `infra/` writes; a test keeps the two in step.
Detection thresholds and weights (`DETECTOR_<FIELD>`) are read by `DetectionSettings`.

Storage is reached either with a connection string (Azurite, local runs) in
`DETECTOR_STORAGE`, or identity-based, the way the Functions host reads a connection:
`DETECTOR_STORAGE__tableServiceUri` and `DETECTOR_STORAGE__queueServiceUri`, with
`DETECTOR_STORAGE__clientId` naming the user-assigned managed identity.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from detectors.model.errors import ConfigurationError
from detectors.settings.detection import DetectionSettings

STORAGE = "DETECTOR_STORAGE"
STORE = "DETECTOR_STORE"
"""Prefix of the storage connection: the queue trigger's `connection` names it too."""

DEFAULT_SCHEDULE = "0 */5 * * * *"
DEFAULT_HOLD_MINUTES = 20
"""Azure documents 3 to 20 minutes from an Activity Log event to Log Analytics."""
DEFAULT_LOGS_ENDPOINT = "https://api.loganalytics.io/v1"
DEFAULT_BOOTSTRAP_DAYS = 14
"""Two weeks: every weekly habit seen twice, inside the 30 days a workspace keeps by default."""
DEFAULT_MAX_DAYS = 180
"""Longest an allow rule may live when added with `detector allow add`."""
MAX_DAYS_SETTING = "DETECTOR_ALLOW_MAX_DAYS"
MAX_DAYS_LIMIT = 3650
"""The largest `DETECTOR_ALLOW_MAX_DAYS` accepted, by the operators' commands and the timer."""

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_RULE_ID = re.compile(r"^dcr-[0-9a-f]{32}$")
_STREAM = re.compile(r"^Custom-[A-Za-z][A-Za-z0-9_]{0,62}$")
SENTINEL_ENDPOINT = "DETECTOR_SENTINEL_ENDPOINT"
SENTINEL_RULE_ID = "DETECTOR_SENTINEL_RULE_ID"
SENTINEL_STREAM = "DETECTOR_SENTINEL_STREAM"
DEFAULT_SENTINEL_STREAM = "Custom-AppServiceDetectorAlerts"
"""The stream `infra/` declares (detectors.delivery.destinations.sentinel_table.STREAM)."""
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_QUEUE_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


_TABLE = "Azure table name (letters and digits, 3-63, starting with a letter)"
_QUEUE = "queue name (lower-case letters, digits and single hyphens, 3-63)"
_NAMES = {
    "baseline_table": (_TABLE_NAME, _TABLE),
    "state_table": (_TABLE_NAME, _TABLE),
    "delivery_table": (_TABLE_NAME, _TABLE),
    "allow_table": (_TABLE_NAME, _TABLE),
    "alert_queue": (_QUEUE_NAME, _QUEUE),
}
_NUMBERS = {
    "window_minutes": (1, 1440),
    "settle_seconds": (0, 3600),
    "hold_minutes": (0, 1440),
    "lateness_hours": (1, 168),
    "first_run_lookback_minutes": (1, 10080),
    "bootstrap_days": (0, 365),
    "run_budget_seconds": (10, 3600),
    "retention_days": (8, 3650),
    "allow_max_days": (1, MAX_DAYS_LIMIT),
}


def _setting(field: str) -> str:
    """The app setting behind a field: `DETECTOR_` and the field's name in upper case."""
    return f"DETECTOR_{field.upper()}"


@dataclass(frozen=True, kw_only=True, slots=True)
class StorageSettings:
    """Where tables and queues live, and how to sign in to them."""

    connection_string: str | None = None
    table_service_uri: str | None = None
    queue_service_uri: str | None = None
    client_id: str | None = None
    """The user-assigned managed identity's client id (None: DefaultAzureCredential's choice)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AppSettings:
    """Everything one timer or notifier invocation needs, from the app settings."""

    workspace_id: str
    storage: StorageSettings
    logs_endpoint: str = DEFAULT_LOGS_ENDPOINT
    schedule: str = DEFAULT_SCHEDULE
    baseline_table: str = "DetectorBaselines"
    state_table: str = "DetectorState"
    delivery_table: str = "DetectorDeliveries"
    allow_table: str = "DetectorAllowRules"
    alert_queue: str = "detector-alerts"
    window_minutes: int = 15
    """The slice of event time one step scores (steps end on a grid of this size from
    midnight UTC); a run catching up takes several."""
    hold_minutes: int = DEFAULT_HOLD_MINUTES
    """How long a slice of event time waits for its late rows before it is scored: the
    detection delay the timer adds so that a burst split across ingestion batches is judged
    whole. Rows later still are scored as stragglers with the next step."""
    settle_seconds: int = 120
    """Rows ingested this recently are left for the next run (they may not be queryable yet)."""
    lateness_hours: int = 24
    """How far event time may lag ingestion time; bounds the TimeGenerated filter."""
    first_run_lookback_minutes: int = 60
    """Where a new deployment starts reading when it has no bootstrap (`bootstrap_days` 0)."""
    bootstrap_days: int = DEFAULT_BOOTSTRAP_DAYS
    """Days of the workspace a new deployment learns, run by run, before it scores anything
    (0: none, start `first_run_lookback_minutes` back and score at once)."""
    run_budget_seconds: int = 240
    """A run stops taking new windows after this long; the next run catches up."""
    retention_days: int = 90
    """Alert and delivery records older than this are deleted, a slice each run (at least 8
    days; alert messages never expire, so an alert requeued from the poison queue later than
    this may reach a destination that had it already)."""
    allow_max_days: int = DEFAULT_MAX_DAYS
    """Allow rules meant to hold longer than this after they were added are ignored (a rule
    written into the table by hand could otherwise never expire)."""
    webhook_url: str | None = None
    webhook_secret: str | None = None
    teams_url: str | None = None
    slack_url: str | None = None
    detection: DetectionSettings = field(default_factory=DetectionSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        """Read the app settings; ConfigurationError lists every missing or malformed one."""
        problems: list[str] = []
        text = _reader(environ)
        workspace = text("LOG_ANALYTICS_WORKSPACE_ID")
        if workspace is None:
            problems.append("LOG_ANALYTICS_WORKSPACE_ID is missing (the workspace's GUID)")
        elif not _GUID.match(workspace):
            problems.append(f"LOG_ANALYTICS_WORKSPACE_ID={workspace!r} is not a GUID")
        endpoint = text("LOG_ANALYTICS_ENDPOINT") or DEFAULT_LOGS_ENDPOINT
        if not endpoint.startswith("https://"):
            problems.append(f"LOG_ANALYTICS_ENDPOINT={endpoint!r} must be an https:// URL")

        storage = _storage(text, problems)

        values = _numbers_and_names(cls, text, problems)
        _check_destinations(text, problems)
        detection = _detection(environ, problems)
        if problems:
            raise ConfigurationError("invalid app settings: " + "; ".join(problems))
        return cls(
            workspace_id=workspace or "",
            storage=storage,
            logs_endpoint=endpoint,
            schedule=text("DETECTOR_SCHEDULE") or DEFAULT_SCHEDULE,
            webhook_url=text("NOTIFY_WEBHOOK_URL"),
            webhook_secret=text("NOTIFY_WEBHOOK_SECRET"),
            teams_url=text("NOTIFY_TEAMS_URL"),
            slack_url=text("NOTIFY_SLACK_URL"),
            detection=detection,
            **values,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class OperatorSettings:
    """What the operators' commands (`baselines`, `allow`, `feedback`, `backfill`, `poison`,
    `replay`, `evaluate`) read from the environment: the app settings they share with the
    deployment, none required until a command needs it. The command line reads the environment only
    through this and `AppSettings`."""

    store: str | None = None
    """`DETECTOR_STORE`: the store the commands use when `--store` is not given."""
    storage: StorageSettings = field(default_factory=StorageSettings)
    workspace_id: str | None = None
    logs_endpoint: str = DEFAULT_LOGS_ENDPOINT
    baseline_table: str = "DetectorBaselines"
    state_table: str = "DetectorState"
    allow_table: str = "DetectorAllowRules"
    alert_queue: str = "detector-alerts"
    """`detector poison` looks at its poison queue."""
    lateness_hours: int = 24
    allow_max_days: int = DEFAULT_MAX_DAYS
    detection: DetectionSettings = field(default_factory=DetectionSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        """Read them; ConfigurationError lists every malformed one."""
        problems: list[str] = []
        text = _reader(environ)
        values = _numbers_and_names(cls, text, problems)
        detection = _detection(environ, problems)
        if problems:
            raise ConfigurationError("invalid settings: " + "; ".join(problems))
        return cls(
            store=text(STORE),
            storage=_storage_settings(text),
            workspace_id=text("LOG_ANALYTICS_WORKSPACE_ID"),
            logs_endpoint=text("LOG_ANALYTICS_ENDPOINT") or DEFAULT_LOGS_ENDPOINT,
            detection=detection,
            **values,
        )


def _detection(environ: Mapping[str, str], problems: list[str]) -> DetectionSettings:
    """The detection settings (`DETECTOR_<FIELD>`); what is wrong goes to `problems`."""
    try:
        return DetectionSettings.from_env(environ)
    except ConfigurationError as err:
        problems.append(str(err))
        return DetectionSettings()


def _numbers_and_names(
    cls: type[Any], text: Callable[[str], str | None], problems: list[str]
) -> dict[str, Any]:
    """The numeric settings and table and queue names a settings class has, read and
    checked (`_NUMBERS`, `_NAMES`); what is wrong goes to `problems`."""
    defaults: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, (low, high) in _NUMBERS.items():
        if key not in defaults:
            continue
        setting, raw = _setting(key), text(_setting(key))
        values[key] = defaults[key]
        if raw is None:
            continue
        try:
            value = int(raw)
        except ValueError:
            problems.append(f"{setting}={raw!r} is not a whole number")
            continue
        if not low <= value <= high:
            problems.append(f"{setting}={value} must be between {low} and {high}")
        values[key] = value
    for key, (pattern, what) in _NAMES.items():
        if key not in defaults:
            continue
        name = text(_setting(key)) or str(defaults[key])
        if not pattern.match(name):
            problems.append(f"{_setting(key)}={name!r} is not a valid {what}")
        values[key] = name
    return values


def _reader(environ: Mapping[str, str]) -> Callable[[str], str | None]:
    """A setting's trimmed value, None when missing or blank."""

    def text(name: str) -> str | None:
        value = environ.get(name, "").strip()
        return value or None

    return text


def _storage_settings(text: Callable[[str], str | None]) -> StorageSettings:
    """The storage settings as they are, unchecked."""
    return StorageSettings(
        connection_string=text(STORAGE),
        table_service_uri=text(f"{STORAGE}__tableServiceUri"),
        queue_service_uri=text(f"{STORAGE}__queueServiceUri"),
        client_id=text(f"{STORAGE}__clientId"),
    )


def _storage(text: Callable[[str], str | None], problems: list[str]) -> StorageSettings:
    """The storage connection: a connection string, or identity-based service URIs."""
    storage = _storage_settings(text)
    if storage.connection_string is None and not (
        storage.table_service_uri and storage.queue_service_uri
    ):
        problems.append(
            f"storage is not configured: set {STORAGE} (a connection string) or both "
            f"{STORAGE}__tableServiceUri and {STORAGE}__queueServiceUri"
        )
    return storage


def _check_destinations(text: Callable[[str], str | None], problems: list[str]) -> None:
    """Destination URLs must be https to a host a webhook may be; the webhook needs its
    signing secret."""
    private = text(PRIVATE_DESTINATIONS)
    if private is not None and private.lower() not in ("true", "false"):
        problems.append(f"{PRIVATE_DESTINATIONS}={private!r} is not true or false")
    for setting in ("NOTIFY_WEBHOOK_URL", "NOTIFY_TEAMS_URL", "NOTIFY_SLACK_URL"):
        url = text(setting)
        if url is None:
            continue
        problem = destination_problem(url, private_ok=(private or "").lower() == "true")
        if problem is not None:
            problems.append(f"{setting} {problem}")
    if text("NOTIFY_WEBHOOK_URL") and not text("NOTIFY_WEBHOOK_SECRET"):
        problems.append("NOTIFY_WEBHOOK_SECRET is missing (it signs the webhook's requests)")
    _check_sentinel(text, problems, private_ok=(private or "").lower() == "true")


def _check_sentinel(
    text: Callable[[str], str | None], problems: list[str], *, private_ok: bool
) -> None:
    """The Sentinel destination needs its ingestion endpoint and rule id together."""
    endpoint, rule_id = text(SENTINEL_ENDPOINT), text(SENTINEL_RULE_ID)
    stream = text(SENTINEL_STREAM)
    if endpoint is not None:
        problem = destination_problem(endpoint, private_ok=private_ok)
        if problem is not None:
            problems.append(f"{SENTINEL_ENDPOINT} {problem}")
    if rule_id is not None and not _RULE_ID.match(rule_id):
        problems.append(
            f"{SENTINEL_RULE_ID}={rule_id!r} is not a data collection rule's immutable id "
            "(dcr- and 32 hexadecimal digits)"
        )
    if (endpoint is None) != (rule_id is None):
        missing = SENTINEL_RULE_ID if rule_id is None else SENTINEL_ENDPOINT
        problems.append(f"{missing} is missing (the Sentinel destination needs both)")
    if stream is not None and not _STREAM.match(stream):
        problems.append(f"{SENTINEL_STREAM}={stream!r} is not a custom stream name (Custom-...)")


PRIVATE_DESTINATIONS = "NOTIFY_ALLOW_PRIVATE_ADDRESSES"
"""`true` lets destinations be private, loopback or `localhost` addresses (a receiver in the
app's virtual network; the tests' local receiver). Link-local addresses, the instance
metadata service's among them, are refused whatever it says."""
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_NUMERIC_HOST = re.compile(r"(?i)[0-9.]+|0x[0-9a-f.x]+")


def destination_problem(url: str, *, private_ok: bool = False) -> str | None:
    """Why a URL cannot be a destination, or None: it must be https, to a named host or a
    public address, without credentials or characters that would split a request."""
    if _CONTROL_OR_SPACE.search(url):
        return "holds a space or a control character"
    if not url.startswith("https://"):
        return "must be an https:// URL"
    authority = re.split(r"[/?#]", url[len("https://") :], maxsplit=1)[0]
    if "@" in authority:
        return "carries a user name or password; put credentials in the settings meant for them"
    host = authority[1:].split("]", 1)[0] if authority.startswith("[") else authority
    host = host.rsplit(":", 1)[0] if not authority.startswith("[") and ":" in host else host
    host = host.rstrip(".").lower()
    if not host:
        return "has no host"
    if host == "localhost" or host.endswith(".localhost"):
        return None if private_ok else f"is a local address (set {PRIVATE_DESTINATIONS}=true)"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if _NUMERIC_HOST.fullmatch(host):
            return "is an address written in an unusual form; write it as a.b.c.d"
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    if address.is_link_local or address.is_unspecified or address.is_multicast:
        return "is a link-local (the metadata service's), unspecified or multicast address"
    internal = address.is_loopback or address.is_private or address.is_reserved
    if internal and not private_ok:
        return f"is a private or loopback address (set {PRIVATE_DESTINATIONS}=true)"
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class NotifierSettings:
    """What the queue-triggered notifier needs, and nothing the timer needs.

    The notifier reads its own narrower set so that a setting only the timer uses (the
    workspace, the window) cannot stop alerts from being delivered. The names are the
    same app settings `AppSettings` reads. URLs and the secret are kept out of `repr`:
    a Teams or Slack webhook URL is itself a credential.
    """

    storage: StorageSettings
    delivery_table: str = "DetectorDeliveries"
    alert_queue: str = "detector-alerts"
    webhook_url: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_secret_previous: str | None = field(default=None, repr=False)
    """The secret being rotated out: requests carry a signature with each (see webhook)."""
    teams_url: str | None = field(default=None, repr=False)
    slack_url: str | None = field(default=None, repr=False)
    sentinel_endpoint: str | None = None
    """The Logs Ingestion endpoint of the data collection rule (or its endpoint's)."""
    sentinel_rule_id: str | None = None
    """The data collection rule's immutable id (`dcr-...`)."""
    sentinel_stream: str = DEFAULT_SENTINEL_STREAM

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        """Read the notifier's settings; ConfigurationError lists every problem at once.

        At least one destination is required: without one the notifier would take alerts
        off the queue and deliver them nowhere, so it refuses them instead (they end in
        the poison queue, kept).
        """
        problems: list[str] = []
        text = _reader(environ)
        storage = _storage(text, problems)
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        names: dict[str, str] = {}
        for key in ("delivery_table", "alert_queue"):
            pattern, what = _NAMES[key]
            setting = _setting(key)
            value = text(setting) or str(defaults[key])
            if not pattern.match(value):
                problems.append(f"{setting}={value!r} is not a valid {what}")
            names[key] = value
        _check_destinations(text, problems)
        urls = ("NOTIFY_WEBHOOK_URL", "NOTIFY_TEAMS_URL", "NOTIFY_SLACK_URL", SENTINEL_ENDPOINT)
        if not any(text(name) for name in urls):
            problems.append(
                "no destination is configured: set NOTIFY_WEBHOOK_URL (with "
                "NOTIFY_WEBHOOK_SECRET), NOTIFY_TEAMS_URL, NOTIFY_SLACK_URL or "
                f"{SENTINEL_ENDPOINT} (with {SENTINEL_RULE_ID})"
            )
        if problems:
            raise ConfigurationError("invalid notifier settings: " + "; ".join(problems))
        return cls(
            storage=storage,
            webhook_url=text("NOTIFY_WEBHOOK_URL"),
            webhook_secret=text("NOTIFY_WEBHOOK_SECRET"),
            webhook_secret_previous=text("NOTIFY_WEBHOOK_SECRET_PREVIOUS"),
            teams_url=text("NOTIFY_TEAMS_URL"),
            slack_url=text("NOTIFY_SLACK_URL"),
            sentinel_endpoint=text(SENTINEL_ENDPOINT),
            sentinel_rule_id=text(SENTINEL_RULE_ID),
            sentinel_stream=text(SENTINEL_STREAM) or DEFAULT_SENTINEL_STREAM,
            **names,
        )


APP_SETTINGS: tuple[str, ...] = (
    "DETECTOR_SCHEDULE",
    "LOG_ANALYTICS_WORKSPACE_ID",
    "LOG_ANALYTICS_ENDPOINT",
    STORAGE,
    f"{STORAGE}__tableServiceUri",
    f"{STORAGE}__queueServiceUri",
    f"{STORAGE}__credential",
    f"{STORAGE}__clientId",
    "DETECTOR_BASELINE_TABLE",
    "DETECTOR_STATE_TABLE",
    "DETECTOR_DELIVERY_TABLE",
    "DETECTOR_ALLOW_TABLE",
    "DETECTOR_ALERT_QUEUE",
    "DETECTOR_WINDOW_MINUTES",
    "DETECTOR_HOLD_MINUTES",
    "DETECTOR_SETTLE_SECONDS",
    "DETECTOR_LATENESS_HOURS",
    "DETECTOR_FIRST_RUN_LOOKBACK_MINUTES",
    "DETECTOR_BOOTSTRAP_DAYS",
    "DETECTOR_RUN_BUDGET_SECONDS",
    "DETECTOR_RETENTION_DAYS",
    "DETECTOR_ALLOW_MAX_DAYS",
    "NOTIFY_WEBHOOK_URL",
    "NOTIFY_WEBHOOK_SECRET",
    "NOTIFY_WEBHOOK_SECRET_PREVIOUS",
    "NOTIFY_TEAMS_URL",
    "NOTIFY_SLACK_URL",
    PRIVATE_DESTINATIONS,
    SENTINEL_ENDPOINT,
    SENTINEL_RULE_ID,
    SENTINEL_STREAM,
)
"""Every app setting the detector reads besides the detection settings (`DETECTOR_<FIELD>`).

`DETECTOR_STORAGE__credential` (`managedidentity`) is read by the Functions host for the
notifier's queue trigger, not by this module.
"""

PREFIX = "DETECTOR_"


def known_settings() -> frozenset[str]:
    """Every `DETECTOR_*` name something reads: the app settings, the detection settings
    (`DETECTOR_<FIELD>`) and `DETECTOR_STORE` of the operators' commands."""
    detection = {_setting(f.name) for f in dataclasses.fields(DetectionSettings)}
    return frozenset({*APP_SETTINGS, STORE, *detection})


def unknown_settings(environ: Mapping[str, str]) -> list[str]:
    """A warning for each `DETECTOR_*` variable nothing reads (a misspelt name is otherwise
    ignored without a word), with the known name it most resembles."""
    known = known_settings()
    warnings = []
    for name in sorted(environ):
        # The Functions host reads a connection's `__` properties (`__credential`, ...).
        if not name.startswith(PREFIX) or name in known or name.startswith(f"{STORAGE}__"):
            continue
        near = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
        hint = f"; did you mean {near[0]}?" if near else " (see docs/settings.md)"
        warnings.append(f"unknown setting {name} is ignored{hint}")
    return warnings
