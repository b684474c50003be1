"""Detects suspicious App Service credential downloads and anomalous WebJob activity.

Pure folders compute (`model`, `settings`, `normalize`, `baselines`, `detections`,
`alerts`, `engine`); adapters talk to one service each (`sources`, `stores`, `delivery`);
`runs` joins them, and `cli` and `function_app.py` start them.
"""

__version__ = "0.1.0"
