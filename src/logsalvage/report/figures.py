"""The continuity figures of a case, per host: what ``logsalvage plot`` and the report draw.

* ``<host>-time-of-day`` and ``<host>-time-of-week``: every record of the heartbeat's log stream
  at (local time of day / of week, record number) — the incident report's figures 5 and 6;
* ``<host>-coverage``: covered time per source, per kind and merged, holes marked (figure 7);
* ``<host>-gaps``: the histogram of seconds between consecutive records.
"""

from __future__ import annotations

from pathlib import Path

from logsalvage.continuity.analysis import Options, coverage_model, hosts
from logsalvage.continuity.gaps import gap_histogram
from logsalvage.continuity.timeline import ensure_timeline, format_filter
from logsalvage.errors import UsageError
from logsalvage.report.plots import CoverageRow, coverage_figure, gap_histogram_figure, time_of_day_figure
from logsalvage.store import CaseStore


def write_continuity_figures(store: CaseStore, out_dir: Path, *, host: str | None = None, heartbeat: str = "auto",
                             period: int | None = None, k: int = 2) -> list[Path]:
    """Write every figure of ``host`` (or of every host) into ``out_dir``; return the files."""
    ensure_timeline(store)
    known = hosts(store)
    if host is not None and host not in known:
        raise UsageError(f"no host {host!r} in the case (hosts: {', '.join(known) or 'none'})")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in [host] if host else known:
        written += host_figures(store, name, out_dir, Options(heartbeat=heartbeat, period=period, k=k))
    return written


def host_figures(store: CaseStore, host: str, out_dir: Path, options: Options) -> list[Path]:
    model = coverage_model(store, host, options)
    tz = model.zone.key
    stream = ", ".join(model.formats) if model.formats else "all records"
    where, params = format_filter(model.formats)
    times = store.columns(f"SELECT sec FROM timeline t WHERE host = ? {where} ORDER BY sec, priority",
                          [host, *params])["sec"]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in host)
    written = []
    for fold in ("day", "week"):
        written += time_of_day_figure(times, tz, out_dir / f"{safe}-time-of-{fold}", fold=fold,
                                      title=f"{host}: {stream} records by local time of {fold} ({tz})")
    rows = []
    for s in model.spans:
        if model.formats and s.format_id not in model.formats:
            continue
        own = model.by_source.get(s.source_id)
        if own:
            rows.append(CoverageRow(label=f"{s.kind}  {s.display}", kind=s.kind,
                                    intervals=tuple(own[0].covered_intervals())))
        else:  # no heartbeat in it: only its first to last record can be drawn, nothing proven
            rows.append(CoverageRow(label=f"{s.kind}  {s.display} (span, no heartbeat)", kind=s.kind,
                                    intervals=((s.first, max(s.last, s.first + 1)),)))
    for kind, cov in model.by_kind.items():
        rows.append(CoverageRow(label=f"{kind} (all sources)", kind=kind, intervals=tuple(cov.covered_intervals())))
    if model.merged is not None:
        rows.append(CoverageRow(label="merged timeline", kind="merged",
                                intervals=tuple(model.merged.covered_intervals())))
    holes = list(model.merged.holes) if model.merged is not None else []
    title = (f"{host}: time covered by each source (heartbeat-proven), holes marked" if model.heartbeat
             else f"{host}: time spanned by each source (no heartbeat found: continuity not proven)")
    written += coverage_figure(rows, holes, out_dir / f"{safe}-coverage", tz=tz, title=title)
    period = model.heartbeat.period_s if model.heartbeat else None
    written += gap_histogram_figure(gap_histogram(store, host, formats=model.formats), out_dir / f"{safe}-gaps",
                                    title=f"{host}: seconds between consecutive {stream} records",
                                    expected_period=period)
    return written
