"""Where the notifier sends an alert: one module per destination, each building the
message its service expects (a signed webhook, Microsoft Teams, Slack). Pure builders; the
transport does the sending.
"""
