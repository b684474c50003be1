"""The runs that join sources, stores and delivery around the engine: the timer, replay,
backfill and status, with the app settings and the wiring of production objects.
"""
