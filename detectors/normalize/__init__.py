"""Rows as Log Analytics or an export returns them, made into observations; actions alike
within a minute grouped into one. Pure.
"""
