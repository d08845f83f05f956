"""``logsalvage watch``: continuous, automated log audit of live logs into a case.

One module per job: ``tailing`` reads what each live log gained since the last round (by device,
inode and offset, across rotation and truncation, complete lines only); ``committing`` turns those
bytes into a source of the case with the ingest's own machinery; ``alerts`` writes alerts (JSON
lines on stdout, syslog, a webhook); ``silence`` says when a host's heartbeat stopped; ``rounds``
runs one round (read, commit, detect, alert) and the loop. State lives in the case database
(``watch_state``, ``watch_alerts``), so a restarted watch continues where the last one stopped.
"""

from logsalvage.watch.rounds import RoundResult, run_round, watch

__all__ = ["RoundResult", "run_round", "watch"]
