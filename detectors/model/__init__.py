"""The vocabulary every other folder speaks: observations, operation families, reason codes,
the exception tree. Pure: no I/O, no clock.
"""
