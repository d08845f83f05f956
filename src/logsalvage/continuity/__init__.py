"""Continuity: one merged timeline per host, and the proof of how complete it is.

``timeline`` dedupes and merges live, backup and salvaged copies; ``heartbeat`` finds the
periodic record; ``coverage`` turns its absence into holes and coverage ratios; ``gaps`` and
``seams`` describe the spacing of records and files; ``agreement`` compares two sources over
their overlap; ``analysis`` puts a host's figures together.
"""
