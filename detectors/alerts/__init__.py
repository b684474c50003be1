"""What leaves the engine: the alert document, its rendering, and the operators' allow
rules that gate it. Pure.
"""
