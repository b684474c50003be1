"""The package's exception tree: one root, a few meaningful subclasses."""

from __future__ import annotations

import re


class DetectorError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigurationError(DetectorError):
    """A setting is missing or malformed; the message lists every problem at once."""


class InputError(DetectorError):
    """An input file cannot be used at all (not one bad row: the whole file)."""


class StoreError(DetectorError):
    """The baseline store could not be read or written."""


class ConflictError(StoreError):
    """A conditional write lost a race (someone else changed the entity first).

    `principals` names the baselines that were not written; `written` maps those that
    were written anyway (a store without multi-partition transactions) to their new etags,
    so a caller retries only what was lost.
    """

    def __init__(
        self,
        message: str,
        *,
        principals: tuple[str, ...] = (),
        written: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.principals = principals
        self.written = dict(written or {})


class SignInFailed(DetectorError):
    """No token could be had: not signed in, or the identity named cannot sign in. The message
    says what to do; it is the same whichever service asked for the token."""


class QueryFailed(DetectorError):
    """Log Analytics could not give a complete answer for a window; nothing of it is used."""


class DeliveryFailed(DetectorError):
    """An alert could not be put on the queue (or delivered by the notifier)."""


def one_line(err: object, limit: int = 300) -> str:
    """An exception as `Type: first line of its message`, at most `limit` characters: what a
    one-line error of ours quotes of an SDK's many-line one (secrets redacted)."""
    lines = redact(str(err)).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:limit]


_SECRETS = re.compile(
    r"(?i)(?P<name>AccountKey|SharedAccessSignature|SharedAccessKey|sig|password)="
    r"(?P<value>[^;&\s'\"]+)"
)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^/\s:@'\"]+):[^@\s'\"/]+@", re.I)


def redact(text: str) -> str:
    """Text with the secrets a connection string or URL carries replaced by `***`: account
    keys, SAS signatures, passwords. Every message that may quote one passes here."""
    text = _SECRETS.sub(lambda m: f"{m['name']}=***", text)
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}:***@", text)
