"""Readiness audit: could the next incident be answered, and would this one have happened?

``logsalvage audit`` reads the configuration of an evidence tree, a mounted image or a live
system (read-only) and reports one finding per weakness or strength, each with the file and line
that shows it, why it matters, the fix, and the incident's countermeasure it serves. One module
per configuration family; ``run`` puts them together.
"""
