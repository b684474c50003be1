"""The notifier: alerts from the queue to a signed webhook, Microsoft Teams and Slack.

- `alert_body`: reads a queue message into an alert, refusing malformed ones.
- `digest`: what an analyst needs first (who, what, where, severity, why, next).
- `escape`: attacker-controlled text made inert for each chat format.
- `webhook`, `teams`, `slack`: the pure message builders.
- `transport`: HTTPS delivery, and what a failure means (transient or permanent).
- `ledger`: idempotency records in Table Storage, one per alert and destination.
- `notifier`: one queue message through all of it.

docs/consumers.md describes the delivery semantics for the people receiving them.
"""
