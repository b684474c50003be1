"""One window in, findings and what it teaches out: the engine, the chains between
principals, and the bursts that fold repeated findings into one alert. Pure apart from the
store it is handed.
"""
