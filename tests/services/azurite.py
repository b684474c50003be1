"""Azurite fixtures (placeholder until the harness lands)."""
