"""What the detector remembers: per-principal baselines, the context baselines around them
(sites, WebJobs, peer groups), their stored form, operators' edits and analysts' feedback.
Pure: the stores in `stores/` keep them.
"""
