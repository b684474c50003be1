"""One queue message through the notifier: read the alert, and for each destination claim,
send, record.

What the Functions host sees (docs/consumers.md explains it to receivers):

- Every destination delivered, or already delivered before: the function returns and the
  host deletes the message.
- A destination failed transiently (timeout, connection, 408/425/429/5xx) after the
  in-process retries of `RetryPolicy`, another worker still held its claim after
  `IN_FLIGHT_WAIT_SECONDS`, or the delivery records cannot be read:
  `TransientDeliveryError`. The host makes the message visible
  again after `visibilityTimeout` and retries; destinations already delivered are skipped.
- A destination refused the alert (another 3xx/4xx, an untrusted certificate):
  `PermanentDeliveryError`, logged with the destination's answer. It is not retried
  in-process, but the host still retries the message (a fixed URL or a restored channel
  then gets it) until `maxDequeueCount`, then moves it to `<queue>-poison`.
- A body that is not an alert: `MalformedAlertError`, logged, nothing sent, same path to
  the poison queue. Nothing in an alert's content can make this function fail otherwise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from detectors.delivery.alert_body import read_alert
from detectors.delivery.destinations import TYPES, Connection, Destination
from detectors.delivery.digest import Digest, digest
from detectors.delivery.errors import (
    MalformedAlertError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from detectors.delivery.ledger import Busy, DeliveryLedger, TableLedger
from detectors.delivery.transport import (
    DEFAULT_TIMEOUT_SECONDS,
    HttpsSender,
    Sender,
    Verdict,
    retry_after,
    verdict,
)
from detectors.model.errors import StoreError
from detectors.settings.app import NotifierSettings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

log = logging.getLogger(__name__)

CLAIM_HOLD = timedelta(minutes=2)
"""How long a claim keeps other workers off; longer than one destination's attempts take."""
IN_FLIGHT_WAIT_SECONDS = 30.0
"""How long a worker waits for another worker's delivery of the same alert to finish."""
_IN_FLIGHT_POLL_SECONDS = 0.5


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """In-process retries of transient failures, before the host's slower retries."""

    attempts: int = 3
    backoff_seconds: tuple[float, ...] = (0.5, 2.0)
    max_wait_seconds: float = 15.0
    """A longer `Retry-After` is not waited for here: the host retries the message later."""


class Result(StrEnum):
    """What happened to the alert at one destination."""

    DELIVERED = "delivered"
    DUPLICATE = "already delivered"
    IN_FLIGHT = "in flight elsewhere"
    TRANSIENT = "failed, to be retried"
    PERMANENT = "refused"


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """One destination's result, the requests it took and the last answer's status."""

    destination: str
    result: Result
    requests: int = 0
    status: int | None = None
    reason: str = ""

    def text(self) -> str:
        """`slack refused (HTTP 400: invalid_payload) after 1 request`."""
        parts = [f"{self.destination} {self.result.value}"]
        if self.reason:
            parts.append(f"({self.reason})")
        elif self.status is not None:
            parts.append(f"(HTTP {self.status})")
        if self.requests:
            parts.append(f"after {self.requests} request{'s' if self.requests > 1 else ''}")
        return " ".join(parts)


@dataclass(frozen=True, kw_only=True, slots=True)
class NotifyReport:
    """What one invocation did with one alert."""

    alert_id: str
    message_id: str
    dequeue_count: int
    outcomes: tuple[Outcome, ...]
    seconds: float

    def line(self) -> str:
        """The one summary line logged per invocation."""
        return (
            f"alert {self.alert_id} (message {self.message_id}, attempt {self.dequeue_count}): "
            + "; ".join(o.text() for o in self.outcomes)
            + f"; {self.seconds:.2f} s"
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Notifier:
    """Delivers alerts to the configured destinations, each at most once per success."""

    def __init__(
        self,
        *,
        destinations: Sequence[Destination],
        ledger: DeliveryLedger,
        sender: Sender,
        senders: Mapping[str, Sender] | None = None,
        policy: RetryPolicy | None = None,
        claim_hold: timedelta = CLAIM_HOLD,
        in_flight_wait_seconds: float = IN_FLIGHT_WAIT_SECONDS,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Wire the parts; `clock` and `sleep` are for tests.

        `sender` posts to the HTTPS destinations; `senders` holds, by destination name, the
        sender of each destination reached through a client of its own (Sentinel).
        """
        if not destinations:
            raise ValueError("a notifier needs at least one destination")
        unknown = {d.name for d in destinations} - TYPES.keys()
        if unknown:
            raise ValueError(f"unknown destinations: {sorted(unknown)}")
        for d in destinations:
            if TYPES[d.name].needs_secret and not d.secret:
                raise ValueError(f"the {d.name} destination needs its signing secret")
        self.destinations = tuple(destinations)
        self.ledger = ledger
        self.sender = sender
        self.senders = dict(senders or {})
        missing = {d.name for d in destinations if TYPES[d.name].connect} - self.senders.keys()
        if missing:
            raise ValueError(f"no sender for the destinations {sorted(missing)}")
        self.policy = policy or RetryPolicy()
        self.claim_hold = claim_hold
        self.in_flight_wait_seconds = in_flight_wait_seconds
        self.clock = clock
        self.sleep = sleep

    @classmethod
    def from_settings(
        cls,
        settings: NotifierSettings,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        ca_path: str | None = None,
        policy: RetryPolicy | None = None,
        credential: TokenCredential | None = None,
    ) -> Self:
        """The notifier the app settings describe: their destinations, their table.

        `credential` signs in to destinations with a client of their own (default: the
        managed identity the settings name); `ca_path` trusts a local CA (tests).
        """
        destinations = [
            destination
            for kind in TYPES.values()
            if (destination := kind.configured(settings)) is not None
        ]
        connection = Connection(
            timeout_seconds=timeout_seconds, ca_path=ca_path, credential=credential
        )
        senders = {
            d.name: connect(settings, connection)
            for d in destinations
            if (connect := TYPES[d.name].connect) is not None
        }
        ledger = TableLedger.from_settings(
            settings.storage,
            table=settings.delivery_table,
            create_table=settings.storage.connection_string is not None,
        )
        return cls(
            destinations=destinations,
            ledger=ledger,
            sender=HttpsSender(timeout_seconds=timeout_seconds, ca_path=ca_path),
            senders=senders,
            policy=policy,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the ledger's connection and the destinations' own clients."""
        if isinstance(self.ledger, TableLedger):
            self.ledger.close()
        for sender in self.senders.values():
            close = getattr(sender, "close", None)
            if callable(close):
                close()

    def handle(self, body: bytes, *, message_id: str, dequeue_count: int) -> NotifyReport:
        """Deliver the alert in one message body to every destination not yet reached.

        Returns the report when every destination has the alert; raises a
        `NotifyFailed` otherwise (see the module's docstring for what the host does).
        """
        started = time.monotonic()
        try:
            alert = read_alert(body)
        except MalformedAlertError as err:
            # The reason is what matters; a traceback of our own check would add nothing.
            log.error(  # noqa: TRY400
                "message %s (attempt %d) is not an alert; nothing was sent, and after "
                "maxDequeueCount attempts it moves to the poison queue: %s",
                message_id,
                dequeue_count,
                err,
            )
            raise
        view = digest(alert)
        outcomes = tuple(
            self._deliver(destination, alert, view, holder=message_id, attempt=dequeue_count)
            for destination in self.destinations
        )
        report = NotifyReport(
            alert_id=view.alert_id,
            message_id=message_id,
            dequeue_count=dequeue_count,
            outcomes=outcomes,
            seconds=time.monotonic() - started,
        )
        if any(o.result is Result.PERMANENT for o in outcomes):
            log.error("%s", report.line())
            raise PermanentDeliveryError(report.line())
        if any(o.result in (Result.TRANSIENT, Result.IN_FLIGHT) for o in outcomes):
            log.warning("%s", report.line())
            raise TransientDeliveryError(report.line())
        return report

    def _deliver(
        self,
        destination: Destination,
        alert: Mapping[str, Any],
        view: Digest,
        *,
        holder: str,
        attempt: int,
    ) -> Outcome:
        """Claim, send, record; the outcome for one destination."""
        name = destination.name
        details: dict[str, str | int] = {
            "Detection": view.detection,
            "Severity": view.severity,
            "DequeueCount": attempt,
        }
        started = time.monotonic()
        while True:
            try:
                claim = self.ledger.claim(
                    view.alert_id,
                    name,
                    holder=holder,
                    now=self.clock(),
                    hold=self.claim_hold,
                    details=details,
                )
            except StoreError as err:
                return Outcome(
                    destination=name,
                    result=Result.TRANSIENT,
                    reason=f"delivery records unavailable, nothing sent: {err}",
                )
            waited = time.monotonic() - started
            if claim is not Busy.IN_FLIGHT or waited >= self.in_flight_wait_seconds:
                break
            # Another worker is sending a copy of this alert: its answer usually comes in
            # a second, and waiting for it here spares this message a retry by the host.
            self.sleep(_IN_FLIGHT_POLL_SECONDS)
        note = f"after waiting {waited:.1f} s for another worker" if waited >= 0.05 else ""
        if claim is Busy.ALREADY_DELIVERED:
            return Outcome(destination=name, result=Result.DUPLICATE, reason=note)
        if claim is Busy.IN_FLIGHT:
            return Outcome(destination=name, result=Result.IN_FLIGHT, reason=note)
        if claim.took_over:
            log.warning(
                "alert %s to %s: took over the unfinished claim of message %s; if that "
                "attempt did send it, %s receives it twice",
                view.alert_id,
                name,
                claim.took_over,
                name,
            )
        outcome = self._send(destination, alert, view)
        try:
            if outcome.result is Result.DELIVERED:
                self.ledger.delivered(claim, now=self.clock(), status=outcome.status or 0)
            else:
                self.ledger.failed(claim, now=self.clock(), error=outcome.reason)
        except StoreError as err:
            # The send happened (or failed) regardless; failing the message now would only
            # send it again. The unrecorded claim expires after its hold.
            log.error("alert %s to %s: %s, but %s", view.alert_id, name, outcome.result, err)  # noqa: TRY400
        return outcome

    def _send(self, destination: Destination, alert: Mapping[str, Any], view: Digest) -> Outcome:
        """POST with in-process retries of transient failures."""
        name, policy, kind = destination.name, self.policy, TYPES[destination.name]
        prepared = (
            None if kind.per_attempt else kind.request(destination, alert, view, self.clock())
        )
        wait, reason, status = 0.0, "", None
        for attempt in range(1, policy.attempts + 1):
            if attempt > 1:
                self.sleep(wait)
            body, headers = prepared or kind.request(destination, alert, view, self.clock())
            try:
                answer = self.senders.get(name, self.sender).post(destination.url, body, headers)
            except PermanentDeliveryError as err:
                return Outcome(
                    destination=name, result=Result.PERMANENT, requests=attempt, reason=str(err)
                )
            except TransientDeliveryError as err:
                reason, status = str(err), None
                wait = self._backoff(attempt)
                continue
            status = answer.status
            result = verdict(answer.status)
            if result is Verdict.DELIVERED and kind.throttled(answer.excerpt):
                result = Verdict.TRANSIENT
            if result is Verdict.DELIVERED:
                return Outcome(
                    destination=name, result=Result.DELIVERED, requests=attempt, status=status
                )
            reason = f"HTTP {status}" + (f": {answer.excerpt[:200]}" if answer.excerpt else "")
            if result is Verdict.PERMANENT:
                return Outcome(
                    destination=name,
                    result=Result.PERMANENT,
                    requests=attempt,
                    status=status,
                    reason=reason,
                )
            asked = retry_after(answer.retry_after, self.clock())
            wait = asked if asked is not None else self._backoff(attempt)
            if wait > policy.max_wait_seconds:
                reason += f"; Retry-After {wait:g} s is left to the host's retry"
                return Outcome(
                    destination=name,
                    result=Result.TRANSIENT,
                    requests=attempt,
                    status=status,
                    reason=reason,
                )
        return Outcome(
            destination=name,
            result=Result.TRANSIENT,
            requests=policy.attempts,
            status=status,
            reason=reason,
        )

    def _backoff(self, attempt: int) -> float:
        delays = self.policy.backoff_seconds or (0.0,)
        return delays[min(attempt - 1, len(delays) - 1)]
