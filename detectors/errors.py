"""The package's exception tree: one root, a few meaningful subclasses."""

from __future__ import annotations


class DetectorError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigurationError(DetectorError):
    """A setting is missing or malformed; the message lists every problem at once."""


class InputError(DetectorError):
    """An input file cannot be used at all (not one bad row: the whole file)."""


class StoreError(DetectorError):
    """The baseline store could not be read or written."""


class ConflictError(StoreError):
    """A conditional write lost a race (someone else changed the entity first)."""
