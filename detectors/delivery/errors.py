"""How a delivery can fail, as the queue trigger's retry and poison handling sees it.

Every one of these is raised out of the function so the Functions host retries the message
and, after `maxDequeueCount` attempts (host.json), moves it to `<queue>-poison`. The class
says what the retry can be expected to achieve; it does not change what the host does.
"""

from __future__ import annotations

from detectors.model.errors import DeliveryFailed


class NotifyFailed(DeliveryFailed):
    """The notifier could not deliver an alert to every destination."""


class TransientDeliveryError(NotifyFailed):
    """A retry may succeed: a timeout, a 5xx, a 408 or 429, or another worker in flight."""


class PermanentDeliveryError(NotifyFailed):
    """A retry will not help until someone changes something: a 4xx such as 400 or 404."""


class MalformedAlertError(PermanentDeliveryError):
    """The message is not an alert this notifier can read; it is never sent anywhere."""
