"""Each PostgreSQL log read with the log_line_prefix its own records were written with.

The configured prefix (postgresql.conf, the case config) is a candidate, preferred on a tie; a file
it does not explain is read with the prefix that does (a copy from before a change of setting),
and a file written under two settings with both. Real data: plaso's ``postgresql.log`` (two
prefixes) and crowdsec's ``pgsql-logs.log`` (two prefix styles), checked against what their own
tests assert.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from logsalvage.ingest import ingest
from logsalvage.parsing.pg_prefix_choice import SAMPLE_WINDOW, choose, choose_by_trial, renderings

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
DEBIAN = "%m [%p] %q%u@%d "
INCIDENT = "DATABASE=%d,USER=%u,CLIENT=%r,"


def _rows(case: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _stderr(n: int, start: int = 0, prefix: str = "debian") -> str:
    out = []
    for i in range(start, start + n):
        stamp = f"2022-04-12 00:{i // 60 % 60:02d}:{i % 60:02d}"
        if prefix == "debian":
            out.append(f"{stamp}.123 UTC [{9000 + i}] app@shop LOG:  statement: SELECT {i}\n")
        else:  # '%t [%p-%l] %q%u@%d '
            out.append(f"{stamp} UTC [{9000 + i}-1] app@shop LOG:  statement: SELECT {i}\n")
    return "".join(out)


def test_configured_prefix_kept_when_it_explains_every_line():
    texts = renderings(_stderr(30).splitlines(), through_syslog=False)
    choice = choose(texts, (DEBIAN,))
    assert choice.prefixes == (DEBIAN,) and not choice.changed


def test_configured_prefix_wins_a_tie_with_a_well_known_one():
    # '%m [%p] ' explains lines without a session as well as the Debian prefix (its %q part is optional)
    lines = [f"2022-04-12 00:00:0{i}.123 UTC [{9000 + i}] LOG:  checkpoint starting: time" for i in range(5)]
    choice = choose(renderings(lines, through_syslog=False), (DEBIAN,))
    assert choice.prefixes == (DEBIAN,) and not choice.changed


def test_a_wrong_configured_prefix_gives_way_and_says_so():
    texts = renderings(_stderr(30).splitlines(), through_syslog=False)
    choice = choose(texts, (INCIDENT,))
    assert choice.changed and choice.prefixes == (DEBIAN,)
    assert "fits none of them" in choice.basis and "30 of 30" in choice.basis


@pytest.mark.parametrize("configured", [(DEBIAN,), (INCIDENT,), ("%m [%p] ",), ("%m [%p] ", DEBIAN),
                                        (DEBIAN, "%m [%p] "), (INCIDENT, DEBIAN), ("%q%u@%d",), ()])
@pytest.mark.parametrize("sample", ["debian", "both", "bare", "incident"])
def test_the_shortcut_for_a_configured_prefix_that_explains_every_line_is_the_trial(configured, sample):
    bare = [f"2022-04-12 00:00:0{i}.123 UTC [{9000 + i}] LOG:  checkpoint starting: time" for i in range(5)]
    incident = [f"Dec  3 03:45:2{i} db01 postgres[1988{i}]: [3-1] DATABASE=[unknown],USER=[unknown],"
                f"CLIENT=127.0.0.1(3356{i}),LOG:  incomplete startup packet" for i in range(5)]
    lines = {"debian": _stderr(30).splitlines(), "both": _stderr(20).splitlines() + _stderr(5, prefix="9x").splitlines(),
             "bare": bare, "incident": incident}[sample]
    texts = renderings(lines, through_syslog=sample == "incident")
    assert texts
    assert choose(texts, configured) == choose_by_trial(texts, configured)


def test_nothing_sampled_keeps_the_configured_prefix():
    assert choose([], (INCIDENT,)).prefixes == (INCIDENT,)
    assert choose([], ()).prefixes == (None,)
    assert not choose(["???"], (INCIDENT,)).changed


def test_syslog_renderings_only_from_postgresql_lines():
    lines = ["Dec  3 03:45:20 db01 postgres[4242]: [3-1] DATABASE=ferry,USER=webapp,CLIENT=192.168.10.11(40000),"
             "LOG:  duration: 1.0 ms",
             "Dec  3 03:45:21 db01 sshd[77]: LOG:  not PostgreSQL",
             "Dec  3 03:45:22 db01 postgres[4243]: LOG:  no sequence numbers"]
    assert renderings(lines, through_syslog=True) == ["DATABASE=ferry,USER=webapp,CLIENT=192.168.10.11(40000),", ""]


def test_plaso_postgresql_log_read_with_both_of_its_prefixes(tmp_path):
    case = tmp_path / "case"
    result = ingest([CORPUS / "plaso" / "postgresql.log"], case, host="db")
    (src,) = result.sources
    assert "'%m [%p] %q%u@%d '" in src["parser"] and "'%t [%p-%l] %q%u@%d '" in src["parser"]
    rows = _rows(case, 'SELECT process_pid, db_user, db_name, log_level, pg_message FROM events ORDER BY "offset"')
    # plaso's 20 events, its two DETAIL events being the pg_detail of the FATAL they follow here
    assert len(rows) == 18
    assert _rows(case, "SELECT count(*) FROM events WHERE extra LIKE '%pg_detail%has no password%'") == [(2,)]
    # plaso's [15]: pid 9158, postgres@postgres; [19]: '[203851-1] user@databasename' under the second prefix
    assert (9158, "postgres", "postgres", "FATAL") in [r[:4] for r in rows]
    assert rows[-1][:4] == (203851, "user", "databasename", "LOG")
    assert rows[-1][4] == "could not receive data from client: Connection reset by peer"


def test_crowdsec_log_with_two_prefix_styles(tmp_path):
    case = tmp_path / "case"
    ingest([CORPUS / "crowdsec-hub" / "pgsql-logs" / "pgsql-logs.log"], case, host="db")
    rows = _rows(case, "SELECT source_ip, db_user, db_name FROM events WHERE pg_message LIKE "
                       "'password authentication failed%' ORDER BY \"offset\"")
    # every failed login has its client address and user, whichever of the two styles wrote it
    assert rows and all(ip and user for ip, user, _ in rows)


def _evidence(tmp_path: Path, conf_prefixes: list[str], logs: dict[str, str]) -> Path:
    ev = tmp_path / "evidence"
    for i, prefix in enumerate(conf_prefixes):
        conf = ev / "db01" / f"etc-{i}" / "postgresql.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(f"log_line_prefix = '{prefix}'\n")
    for name, text in logs.items():
        path = ev / "db01" / "var/log/postgresql" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ev


@pytest.mark.parametrize("engine", ["auto", "reference"])
def test_each_file_of_a_host_with_its_own_configured_prefix(tmp_path, engine):
    """Two postgresql.conf copies (before and after a change): each log is read with the one it fits."""
    old = "%t [%p-%l] %q%u@%d "
    ev = _evidence(tmp_path, [DEBIAN, old], {
        "postgresql-12-main.log": _stderr(2000),  # over the small-source size: columnar where it can
        "postgresql-9.6-main.log": _stderr(2000, prefix="old")})
    case = tmp_path / "case"
    result = ingest([ev], case, engine=engine)
    parsers = {Path(s["path"]).name: s["parser"] for s in result.sources}
    # the host's prefix is the conf read last; the file it does not fit says which one it was read with
    noted = {name: p for name, p in parsers.items() if "log_line_prefix" in p}
    assert len(noted) == 1
    ((name, note),) = noted.items()
    assert f"{DEBIAN if '12' in name else old!r} (configured)" in note
    missing = _rows(case, "SELECT count(*) FROM events WHERE process_pid IS NULL OR db_user <> 'app' "
                          "OR db_name <> 'shop'")
    assert missing == [(0,)]
    assert _rows(case, "SELECT count(*) FROM events") == [(4000,)]


def _syslog(n: int, start: int, prefix: str) -> str:
    out = []
    for i in range(start, start + n):
        head = f"Dec  3 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} db01 postgres[{9000 + i % 5000}]: [1-1] "
        who = ("DATABASE=shop,USER=app,CLIENT=10.0.0.5(4000)," if prefix == INCIDENT
               else "user=app,db=shop,client=10.0.0.5 ")
        out.append(f"{head}{who}LOG:  statement: SELECT {i}\n")
    return "".join(out)


def test_a_change_of_prefix_late_in_a_large_file_is_found(tmp_path):
    """The sample's middle and end windows see what the start does not; a source of several
    prefixes is read by the reference engine (the columnar one reads one), and says so."""
    later = "user=%u,db=%d,client=%h "
    text, n = "", 0
    while len(text) < 4 * SAMPLE_WINDOW:
        text += _syslog(3000, n, INCIDENT)
        n += 3000
    text += _syslog(2000, n, later)
    ev = tmp_path / "evidence"
    (ev / "db01/var/log").mkdir(parents=True)
    (ev / "db01/var/log/messages").write_text(text)
    for i, prefix in enumerate([later, INCIDENT]):  # the conf read last is the host's prefix
        (ev / f"db01/etc{i}").mkdir()
        (ev / f"db01/etc{i}/postgresql.conf").write_text(f"log_line_prefix = '{prefix}'\n")
    case = tmp_path / "case"
    result = ingest([ev], case)
    (src,) = [s for s in result.sources if s["path"].endswith("messages")]
    assert f"{INCIDENT!r} (configured), then {later!r} (configured)" in src["parser"]
    assert src["parser"].startswith("reference: a PostgreSQL log written with several log_line_prefixes")
    assert _rows(case, "SELECT count(*), count(db_user), count(source_ip) FROM events") == [(n + 2000,) * 3]


def test_evidence_left_untouched(tmp_path):
    ev = _evidence(tmp_path, [INCIDENT], {"postgresql.log": _stderr(50)})
    before = {p: p.read_bytes() for p in ev.rglob("*") if p.is_file()}
    ingest([ev], tmp_path / "case")
    assert {p: p.read_bytes() for p in ev.rglob("*") if p.is_file()} == before
    shutil.rmtree(tmp_path / "case")
