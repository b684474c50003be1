"""Local Log Analytics endpoint fixtures (placeholder until the harness lands)."""
