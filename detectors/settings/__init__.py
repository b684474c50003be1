"""One settings tree: the Function App's app settings (`app`) and the detections' thresholds
and weights (`detection`), read from the environment in one place and passed down. Pure.
"""
