"""A heartbeat that stopped: for each watched host with a heartbeat (continuity/heartbeat.py), the
time since its last beat against k periods. A log that goes quiet is how tampering and outages
look, so silence is an alert."""

from __future__ import annotations

from datetime import datetime, timezone

from logsalvage.continuity import heartbeat
from logsalvage.store import CaseStore
from logsalvage.watch.alerts import Alert, alert_id


def stopped(store: CaseStore, host: str, periods: int, now: datetime) -> Alert | None:
    hb = heartbeat.detect(store, host)
    if hb is None:
        return None
    where, params = hb.filter_sql()
    last = store.query(f"SELECT max(ts_utc) FROM events WHERE host = ? AND {where}", [host, *params])[0][0]
    if last is None:
        return None
    last = last if last.tzinfo else last.replace(tzinfo=timezone.utc)
    silent = (now - last).total_seconds()
    if silent <= periods * hb.period_s:
        return None
    last_utc = last.astimezone(timezone.utc)
    return Alert(last_utc.isoformat(), host, "watch.heartbeat_stopped", "high",
                 f"heartbeat stopped on {host} since {last_utc.isoformat()} ({int(silent)} s without it, period "
                 f"{hb.period_s} s, alert past {periods} periods): {hb.pattern}",
                 # one alert per silence: beats resuming and stopping again is a new silence
                 alert_id("H", host, last_utc.isoformat(), hb.pattern))
