"""Time oracle: small evidence trees ingested for real, each record's UTC time against the answer
worked out by hand, and the note that says how it was decided.

Zones east and west of UTC (Asia/Tokyo +09:00; America/New_York -05:00, -04:00 in summer), year-less
records anchored by the file's mtime (taken on the host's clock, not in UTC), a tar header's time or
the rotation date in the name, Dec → Jan roll-over and a late line across it, Feb 29, both DST
changes (the repeated hour in file order, the skipped hour), a long quiet stretch inside one file,
and records that carry their year or their UTC offset. Both parsing engines must give the same.
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from logsalvage.config import CaseConfig, HostConfig
from logsalvage.ingest import ingest


def L(stamp: str, message: str) -> str:  # noqa: N802 - reads as a log line in the table
    return f"{stamp} h1 kernel: {message}"


@dataclass(frozen=True)
class Case:
    name: str
    zone: str
    files: dict  # path under the host -> (lines, mtime as ISO 8601 with offset); a path 'x.tar!member' is a tar member
    expect: dict  # message -> (UTC ISO 8601, substrings of its time_basis)
    zone_from_config: bool = False  # else the evidence's etc/timezone names it
    not_in_basis: dict = field(default_factory=dict)  # message -> substrings its time_basis must not hold


REPEATED = "DST: local time repeated when the clock went back"
FIRST = "taken as its first occurrence (UTC-04:00)"
SECOND = "taken as its second occurrence (UTC-05:00)"
SKIPPED = "DST: local time skipped when the clock went forward"

CASES = [
    # east of UTC: the last line is 00:20 on Jan 1 in Tokyo, the mtime 2017-12-31 15:20 UTC
    Case("tokyo-mtime-new-year", "Asia/Tokyo",
         {"var/log/messages": ([L("Dec 31 23:50:00", "a"), L("Jan  1 00:20:00", "b")], "2018-01-01T00:20:00+09:00")},
         {"a": ("2017-12-31T14:50:00+00:00", ["modification time 2018-01-01T00:20:00+09:00", "1 year roll-over"]),
          "b": ("2017-12-31T15:20:00+00:00", ["Asia/Tokyo"])}),
    # the same through a backup archive: the member's tar header time
    Case("tokyo-tar-header", "Asia/Tokyo",
         {"backup/logs.tar!var/log/messages": ([L("Dec 31 23:50:00", "a"), L("Jan  1 00:20:00", "b")],
                                               "2018-01-01T00:20:00+09:00")},
         {"a": ("2017-12-31T14:50:00+00:00", ["(tar header)", "2018-01-01T00:20:00+09:00"]),
          "b": ("2017-12-31T15:20:00+00:00", ["(tar header)"])}),
    # west of UTC: last written at 22:00 on Dec 31 in New York (Jan 1 in UTC), so Jan 2 is of 2017
    Case("new-york-mtime-west", "America/New_York",
         {"var/log/messages": ([L("Jan  2 10:00:00", "c")], "2018-01-01T03:00:00+00:00")},
         {"c": ("2017-01-02T15:00:00+00:00", ["modification time 2017-12-31T22:00:00-05:00"])}),
    Case("rollover-from-rotation-name", "Asia/Tokyo",
         {"var/log/messages-20180107": ([L("Dec 30 22:00:00", "d1"), L("Dec 31 23:59:59", "d2"),
                                         L("Jan  1 00:00:01", "d3"), L("Jan  6 03:00:00", "d4")], None)},
         {"d1": ("2017-12-30T13:00:00+00:00", ["rotation date in the file name", "1 year roll-over"]),
          "d2": ("2017-12-31T14:59:59+00:00", []), "d3": ("2017-12-31T15:00:01+00:00", []),
          "d4": ("2018-01-05T18:00:00+00:00", ["time zone Asia/Tokyo (case config)"])},
         zone_from_config=True),
    # a line written late, just after the roll-over, belongs to the old year
    Case("late-line-across-new-year", "America/New_York",
         {"var/log/messages-20180110": ([L("Dec 31 23:59:58", "s1"), L("Jan  1 00:00:02", "s2"),
                                         L("Dec 31 23:59:59", "s3"), L("Jan  2 08:00:00", "s4")], None)},
         {"s1": ("2018-01-01T04:59:58+00:00", []), "s2": ("2018-01-01T05:00:02+00:00", []),
          "s3": ("2018-01-01T04:59:59+00:00", []), "s4": ("2018-01-02T13:00:00+00:00", [])}),
    Case("feb-29-leap-year", "America/New_York",
         {"var/log/messages": ([L("Feb 28 23:00:00", "f1"), L("Feb 29 12:00:00", "f2"), L("Mar  1 01:00:00", "f3")],
                               "2016-03-01T12:00:00-05:00")},
         {"f1": ("2016-02-29T04:00:00+00:00", []), "f2": ("2016-02-29T17:00:00+00:00", []),
          "f3": ("2016-03-01T06:00:00+00:00", [])}),
    # anchored in 2017, which has no Feb 29: the records move back to 2016, and say so
    Case("feb-29-moves-back", "Asia/Tokyo",
         {"var/log/messages": ([L("Feb 28 10:00:00", "g1"), L("Feb 29 10:00:00", "g2"), L("Mar  1 10:00:00", "g3")],
                               "2017-03-02T12:00:00+09:00")},
         {"g1": ("2016-02-28T01:00:00+00:00", ["moved back 1 year(s) so Feb 29 falls in a leap year"]),
          "g2": ("2016-02-29T01:00:00+00:00", []), "g3": ("2016-03-01T01:00:00+00:00", [])}),
    # 2017-11-05 in New York: 01:00-02:00 happens twice (EDT, then EST). In file order, 01:05 after
    # 01:50 is the second pass; 00:30 and 02:10 are not ambiguous at all
    Case("dst-fall-back", "America/New_York",
         {"var/log/messages": ([L("Nov  5 00:30:00", "n0"), L("Nov  5 01:10:00", "n1"), L("Nov  5 01:30:00", "n2"),
                                L("Nov  5 01:30:00", "n2b"), L("Nov  5 01:50:00", "n3"), L("Nov  5 01:49:30", "n3b"),
                                L("Nov  5 01:05:00", "n4"), L("Nov  5 01:55:00", "n5"), L("Nov  5 02:10:00", "n6")],
                               "2017-11-06T00:00:00-05:00")},
         {"n0": ("2017-11-05T04:30:00+00:00", []),
          "n1": ("2017-11-05T05:10:00+00:00", [REPEATED, FIRST]),
          "n2": ("2017-11-05T05:30:00+00:00", [REPEATED, FIRST]),
          "n2b": ("2017-11-05T05:30:00+00:00", [REPEATED, FIRST]),
          "n3": ("2017-11-05T05:50:00+00:00", [REPEATED, FIRST]),
          "n3b": ("2017-11-05T05:49:30+00:00", [REPEATED, FIRST]),  # 30 s back: ordinary disorder
          "n4": ("2017-11-05T06:05:00+00:00", [REPEATED, SECOND]),
          "n5": ("2017-11-05T06:55:00+00:00", [REPEATED, SECOND]),
          "n6": ("2017-11-05T07:10:00+00:00", [])},
         not_in_basis={"n0": ["DST"], "n6": ["DST"]}),
    # 2018-03-11 in New York: 02:00-03:00 never happened
    Case("dst-spring-forward", "America/New_York",
         {"var/log/messages": ([L("Mar 11 01:30:00", "p1"), L("Mar 11 02:30:00", "p2"), L("Mar 11 03:30:00", "p3")],
                               "2018-03-12T00:00:00-04:00")},
         {"p1": ("2018-03-11T06:30:00+00:00", []),
          "p2": ("2018-03-11T07:30:00+00:00", [SKIPPED, "offset before the change (UTC-05:00)"]),
          "p3": ("2018-03-11T07:30:00+00:00", [])},
         not_in_basis={"p1": ["DST"], "p3": ["DST"]}),
    # records with their year, and with their UTC offset, need no anchor
    Case("dated-records-new-york", "America/New_York",
         {"var/log/messages": ([L("2017 Nov  5 01:30:00", "y1"), L("2017-11-05T01:30:00-05:00", "y2"),
                                L("2018-03-11T02:30:00", "y3"), L("2018-07-01T12:00:00", "y4")], None)},
         {"y1": ("2017-11-05T05:30:00+00:00", ["year in record", REPEATED, FIRST]),
          "y2": ("2017-11-05T06:30:00+00:00", ["UTC offset in record"]),
          "y3": ("2018-03-11T07:30:00+00:00", ["year in record", SKIPPED]),
          "y4": ("2018-07-01T16:00:00+00:00", ["year in record", "time zone America/New_York"])},
         not_in_basis={"y2": ["DST"], "y4": ["DST"]}),
    Case("dated-records-tokyo", "Asia/Tokyo",
         {"var/log/messages": ([L("2017-12-31T23:50:00", "z1"), L("2017-12-31T23:50:00+09:00", "z2")], None)},
         {"z1": ("2017-12-31T14:50:00+00:00", ["year in record"]),
          "z2": ("2017-12-31T14:50:00+00:00", ["UTC offset in record"])}),
    # records in file order: a jump forward is a quiet stretch of the same year (said to be a guess)
    Case("long-forward-gap", "Asia/Tokyo",
         {"var/log/messages": ([L("Mar 12 10:00:00", "q1"), L("Mar 12 10:05:00", "q1b"), L("Nov  5 10:00:00", "q2")],
                               "2017-11-05T12:00:00+09:00")},
         {"q1": ("2017-03-12T01:00:00+00:00", ["line 3: Nov 5 after Mar 12", "quiet stretch of 238 days", "a guess"]),
          "q1b": ("2017-03-12T01:05:00+00:00", []),
          "q2": ("2017-11-05T01:00:00+00:00", ["quiet stretch of 238 days within the year"])}),
    # a step back of two months in file order is the next year after ten quiet months (a guess too)
    Case("rollover-after-long-quiet", "America/New_York",
         {"var/log/messages": ([L("Oct  1 10:00:00", "r1"), L("Jul 28 10:00:00", "r2")], "2018-08-01T12:00:00-04:00")},
         {"r1": ("2017-10-01T14:00:00+00:00", ["1 year roll-over", "a step back of 65 days", "a guess"]),
          "r2": ("2018-07-28T14:00:00+00:00", ["quiet stretch of 301 days"])}),
]


def _write(ev: Path, case: Case) -> None:
    host = ev / "h1"
    (host / "etc").mkdir(parents=True)
    if not case.zone_from_config:
        (host / "etc/timezone").write_text(case.zone + "\n")
    for rel, (lines, mtime) in case.files.items():
        data = "".join(line + "\n" for line in lines).encode()
        stamp = datetime.fromisoformat(mtime).timestamp() if mtime else None
        if "!" in rel:
            archive, member = rel.split("!")
            path = host / archive
            path.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(path, "w") as tf:
                info = tarfile.TarInfo(member)
                info.size, info.mtime = len(data), int(stamp)
                tf.addfile(info, io.BytesIO(data))
            continue
        path = host / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if stamp is not None:
            os.utime(path, (stamp, stamp))


@pytest.mark.parametrize("engine", ["auto", "reference"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_time_oracle(tmp_path, case, engine):
    ev = tmp_path / "evidence"
    _write(ev, case)
    config = CaseConfig(hosts={"h1": HostConfig("h1", timezone=case.zone)}) if case.zone_from_config else None
    ingest([ev], tmp_path / "case", config=config, engine=engine)
    con = duckdb.connect(str(tmp_path / "case/case.duckdb"), read_only=True)
    rows = con.execute("SELECT message, ts_utc, time_basis FROM events ORDER BY source_id, \"offset\"").fetchall()
    got = {m: (t.isoformat() if t else None, basis) for m, t, basis in rows}
    assert sorted(got) == sorted(case.expect), got
    wrong = {m: (got[m][0], want) for m, (want, _) in case.expect.items() if got[m][0] != want}
    assert not wrong, f"got (UTC, expected): {wrong}"
    for m, (_, notes) in case.expect.items():
        for note in notes:
            assert note in got[m][1], f"{m}: {note!r} not in {got[m][1]!r}"
    for m, notes in case.not_in_basis.items():
        for note in notes:
            assert note not in got[m][1], f"{m}: {note!r} in {got[m][1]!r}"


CARVED = [  # (host, zone, acquisition time, log line, UTC, substrings of time_basis)
    # the acquisition time given in UTC is Jan 1 on the Tokyo host's clock: Jan 1 is of 2018
    ("t1", "Asia/Tokyo", "2017-12-31T15:20:00+00:00", "Dec 31 23:50:00 t1 sshd[101]: carved a",
     "2017-12-31T14:50:00+00:00", ["acquisition time 2018-01-01T00:20:00+09:00 in Asia/Tokyo"]),
    ("t1", "Asia/Tokyo", "2017-12-31T15:20:00+00:00", "Jan  1 00:10:00 t1 sshd[102]: carved b",
     "2017-12-31T15:10:00+00:00", []),
    # carved records have no file order: a repeated local time is its first occurrence, and says so
    ("n1", "America/New_York", "2018-03-12T12:00:00-04:00", "Nov  5 01:30:00 n1 sshd[201]: carved c",
     "2017-11-05T05:30:00+00:00", [REPEATED, FIRST, "carved records have no file order"]),
    ("n1", "America/New_York", "2018-03-12T12:00:00-04:00", "Mar 11 02:30:00 n1 sshd[202]: carved d",
     "2018-03-11T07:30:00+00:00", [SKIPPED]),
    ("n1", "America/New_York", "2018-03-12T12:00:00-04:00", "Nov  5 00:30:00 n1 sshd[203]: carved e",
     "2017-11-05T04:30:00+00:00", []),
]


def test_carved_records_take_the_hosts_clock_for_year_and_dst(tmp_path):
    from logsalvage.carve.pipeline import carve_into_case, parse_acquired

    case = tmp_path / "case"
    hosts = sorted({(h, z, a) for h, z, a, *_ in CARVED})
    for host, zone, _ in hosts:
        (tmp_path / "ev" / host / "etc").mkdir(parents=True)
        (tmp_path / "ev" / host / "etc" / "timezone").write_text(zone + "\n")
    ingest([tmp_path / "ev"], case)  # the hosts' zones, as a real investigation finds them
    for host, _, acquired in hosts:
        image = tmp_path / f"{host}.dd"
        with open(image, "wb") as fh:
            fh.write(b"\0" * 8192 + b"".join((line + "\n").encode() for h, _, _, line, *_ in CARVED if h == host))
            fh.truncate(1 << 20)
        carve_into_case([image], case, host=host, acquired=parse_acquired(acquired))
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    got = {raw: (t.isoformat(), basis) for raw, t, basis in
           con.execute("SELECT raw, ts_utc, time_basis FROM events WHERE kind = 'salvage'").fetchall()}
    for host, _, _, line, want, notes in CARVED:
        assert got[line][0] == want, (line, got[line])
        for note in notes:
            assert note in got[line][1], (line, note, got[line][1])
    assert "DST" not in got["Nov  5 00:30:00 n1 sshd[203]: carved e"][1]
