"""Detects suspicious App Service credential downloads and anomalous WebJob activity.

The core (model, normalize, baseline, evidence, detections, alerts, engine) is pure; the
adapters (sources, stores) sit at the edges; `cli` and `function_app.py` wire them.
"""

__version__ = "0.1.0"
