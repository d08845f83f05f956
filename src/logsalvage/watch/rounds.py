"""One watch round — read what each live log gained, commit it, detect, alert on what was not
alerted before, check the heartbeats — and the loop of rounds."""

from __future__ import annotations

import glob
import logging
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from logsalvage.config import CaseConfig, WatchConfig
from logsalvage.detect.run import EXPLOITATION, run_detection
from logsalvage.errors import UsageError
from logsalvage.store import CaseStore, check_case_outside
from logsalvage.watch.alerts import Alert, AlertSink, alert_id
from logsalvage.watch.committing import commit_piece
from logsalvage.watch.silence import stopped
from logsalvage.watch.tailing import FileState, read_new

log = logging.getLogger("logsalvage.watch")

# rotated and compressed copies are never appended to: they are read by ``ingest``, not watched
_COMPRESSED = (".gz", ".bz2", ".xz", ".zip", ".Z", ".zst")
_STATE_COLS = ["path", "device", "inode", "offset", "size", "head_sha256", "head_len", "host", "format_id"]
_STATE_SQL = ", ".join(f'"{c}"' for c in _STATE_COLS)  # ("offset" is a keyword)


@dataclass
class RoundResult:
    files: int = 0
    pieces: int = 0
    events: int = 0
    alerts: list[Alert] = field(default_factory=list)


def watch_config(config: CaseConfig) -> WatchConfig:
    if config.watch is None or not config.watch.paths:
        raise UsageError(f"the case config {config.path or ''} has no watch.paths: name the live logs to watch "
                         "(watch: {paths: [/var/log/apache2/access.log, …]})")
    from logsalvage.parsing.formats import log_formats

    known = {f.id for f in log_formats()}
    for item in config.watch.paths:
        if item.get("format") and item["format"] not in known:
            raise UsageError(f"{config.path or 'case config'}: watch.paths: unknown format {item['format']!r}; "
                             f"known: {', '.join(sorted(known))}")
    return config.watch


def _default_host() -> str:
    return socket.gethostname().split(".")[0] or "localhost"


def watched_files(wc: WatchConfig, config: CaseConfig, case_dir: Path) -> dict[str, dict]:
    """Each live log matched by ``watch.paths``: its host and format (None: identified). The case's
    own files are never watched (a glob as wide as /var/log/** may reach a case kept there)."""
    out: dict[str, dict] = {}
    case = Path(case_dir).resolve()
    for item in wc.paths:
        for p in sorted(glob.glob(item["glob"], recursive=True)):
            if p.endswith(_COMPRESSED) or not Path(p).is_file() or case in Path(p).resolve().parents:
                continue
            path = str(Path(p).absolute())
            host = item.get("host") or config.host_for(path) or _default_host()
            out.setdefault(path, {"host": host, "format": item.get("format")})
    return out


def _states(store: CaseStore) -> dict[str, FileState]:
    rows = store.query(f"SELECT {_STATE_SQL} FROM watch_state")
    return {r[0]: FileState(*r) for r in rows}


def _save_state(store: CaseStore, st: FileState) -> None:
    # one transaction: a watch killed between the two statements must not leave the log without a
    # state (it would be read again from its start)
    with store.transaction():
        store.execute("DELETE FROM watch_state WHERE path = ?", [st.path])
        store.execute(f"INSERT INTO watch_state ({_STATE_SQL}, updated) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
                      [st.path, st.device, st.inode, st.offset, st.size, st.head_sha256, st.head_len, st.host,
                       st.format_id])


def _read_logs(store: CaseStore, config: CaseConfig, wc: WatchConfig, result: RoundResult, notes: list[Alert],
               now: datetime) -> set[str]:
    files = watched_files(wc, config, store.case_dir)
    states = _states(store)
    hosts = {s.host for s in states.values() if s.host}
    if files:
        check_case_outside(store.case_dir, [Path(p) for p in files])
    index = 0
    for path in sorted(set(files) | set(states)):
        old = states.get(path)
        want = files.get(path) or {"host": old.host if old else _default_host(), "format": None}
        host = want["host"]
        hosts.add(host)
        tail = read_new(Path(path), old)
        result.files += 1
        fmt = (old.format_id if old else None) or want["format"]
        for rule, severity, title in tail.notes:
            notes.append(Alert(now.isoformat(), host, rule, severity, title,
                               alert_id("W", rule, path, now.isoformat())))
        for piece in tail.pieces:
            index += 1
            done = commit_piece(store, config, piece, host, fmt, index)
            fmt = fmt or done.format_id
            result.pieces += 1
            result.events += done.events
            log.info("%s: %d bytes from offset %d, %d event(s)", piece.origin, len(piece.data), piece.start,
                     done.events)
        if tail.state is None:  # the path is gone (its rotated file finished above)
            store.execute("DELETE FROM watch_state WHERE path = ?", [path])
            continue
        st = tail.state
        _save_state(store, FileState(st.path, st.device, st.inode, st.offset, st.size, st.head_sha256,
                                     st.head_len, host, fmt))
    return hosts


def _severity_of_milestone(kind: str) -> str:
    return "critical" if kind in EXPLOITATION else "high"


def milestone_alert_id(m: dict) -> str:
    """A milestone's identity across rounds: its kind, host, time and the event it starts at. Not
    its detail: a step still going on when a round reads it (a scan's request count, its last
    request) has a grown detail in the next round, and is the same step. A milestone without
    events (from the case config, a file listing) is known by its detail, which does not grow."""
    anchor = m["event_ids"][:1] if m.get("event_ids") else m["detail"]
    return alert_id("M", m["kind"], m["host"], m["time"], anchor)


def _detection_alerts(store: CaseStore, config: CaseConfig) -> list[Alert]:
    found = run_detection(store, config)
    alerts = []
    for f in found["findings"]:
        alerts.append(Alert(f["first_seen"], f["host"], f["rule"], f["severity"], f["title"], f["id"]))
    for m in found["milestones"]:
        mid = milestone_alert_id(m)
        alerts.append(Alert(m["time"], m["host"], f"milestone.{m['kind']}", _severity_of_milestone(m["kind"]),
                            f"{m['kind'].replace('_', ' ')} on {m['host']}", mid))
    return alerts


def _not_alerted(store: CaseStore, alerts: list[Alert]) -> list[Alert]:
    done = {r[0] for r in store.query("SELECT alert_id FROM watch_alerts")}
    out, seen = [], set()
    for a in alerts:
        if a.finding_id not in done and a.finding_id not in seen:
            seen.add(a.finding_id)
            out.append(a)
    return out


def run_round(case_dir: Path, config: CaseConfig, sink: AlertSink, *, now: datetime | None = None,
              detect_always: bool = True) -> RoundResult:
    """One round: new lines in, detection, alerts out (each alert once per case). Detection runs when
    events arrived, or always with ``detect_always`` (a process's first round: the case may have
    gained events from ``ingest`` since)."""
    wc = watch_config(config)
    now = now or datetime.now(timezone.utc)
    result = RoundResult()
    notes: list[Alert] = []
    with CaseStore(Path(case_dir)) as store:
        hosts = _read_logs(store, config, wc, result, notes, now)
        alerts = list(notes)
        if result.events or detect_always:
            alerts += _detection_alerts(store, config)
        for host in sorted(h for h in hosts if h):
            silent = stopped(store, host, wc.heartbeat_periods, now)
            if silent is not None:
                alerts.append(silent)
        fresh = _not_alerted(store, alerts)
        for a in fresh:
            # recorded before it is sent: an alert is never repeated, even if the round dies after it
            store.execute("INSERT INTO watch_alerts VALUES (?, ?, ?, now())", [a.finding_id, a.rule, a.host])
            sink.emit(a)
        result.alerts = fresh
    return result


def watch(case_dir: Path, config: CaseConfig, sink: AlertSink, *, interval: float | None = None,
          once: bool = False) -> int:
    """Rounds every ``interval`` seconds until SIGINT/SIGTERM (their exceptions end it), or one."""
    wc = watch_config(config)
    interval = interval or wc.interval
    rounds = 0
    while True:
        started = time.monotonic()
        r = run_round(case_dir, config, sink, detect_always=rounds == 0)
        rounds += 1
        log.info("round %d: %d file(s), %d new event(s), %d alert(s) in %.2f s", rounds, r.files, r.events,
                 len(r.alerts), time.monotonic() - started)
        if once:
            return rounds
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
