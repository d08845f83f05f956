"""The demo scenario: a synthetic evidence set shaped like the ferry-reservation incident.

``generate(out_dir)`` writes ``out_dir/evidence/`` (web01 and db01 logs, configuration, backups,
a raw image of db01's log partition) and the answer key ``out_dir/truth.json`` (plus
``truth-db-records.tsv.gz``). ``make_plan`` computes what a run would produce without writing.
"""

from .build import generate
from .timeline import make_plan

__all__ = ["generate", "make_plan"]
