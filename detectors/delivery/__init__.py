"""Delivery: alerts onto the queue, and the notifier that takes them from it to a signed
webhook, Microsoft Teams, Slack and Microsoft Sentinel.

- `queue`: the Storage Queue the timer writes and the notifier reads.
- `alert_body`: reads a queue message into an alert, refusing malformed ones.
- `digest`: what an analyst needs first (who, what, where, severity, why, next).
- `escape`: attacker-controlled text made inert for each chat format.
- `destinations/`: the registry of destination types; `webhook`, `teams`, `slack` build
  their messages and say how they are configured; `sentinel` uploads each alert as a row of
  the table `sentinel_table` declares, through the Logs Ingestion API.
- `transport`: HTTPS delivery, and what a failure means (transient or permanent).
- `ledger`: idempotency records in Table Storage, one per alert and destination.
- `notifier`: one queue message through all of it.

docs/consumers.md describes the delivery semantics for the people receiving them.
"""
