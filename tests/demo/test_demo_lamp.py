"""``logsalvage demo DIR --stack lamp``: nginx on web01, MariaDB's general query log on db01.

Issue 14's acceptance: the variant investigates end to end, every log is read, db01's records
are MariaDB's general log, the health check is found as db01's heartbeat, and the verdict is
qualified by that log's coverage (with --exfil: found, the customers table).
"""

from __future__ import annotations

import gzip
import json
import re

import duckdb
import pytest

from logsalvage import cli
from logsalvage.demo import generate
from logsalvage.errors import UsageError

DAYS, SEED = 40, 2017
STAMP = re.compile(r"^\d{6} [ \d]\d:\d\d:\d\d$")


@pytest.fixture(scope="module")
def lamp(tmp_path_factory):
    out = tmp_path_factory.mktemp("lamp")
    assert cli.main(["demo", str(out), "--days", str(DAYS), "--seed", str(SEED), "--exfil", "--stack", "lamp"]) == 0
    return out, json.loads((out / "truth.json").read_text())


@pytest.fixture(scope="module")
def investigated(lamp, tmp_path_factory):
    out, truth = lamp
    case = tmp_path_factory.mktemp("lamp-case") / "case"
    code = cli.main(["investigate", str(out / "evidence"), "--case", str(case), "--config", str(out / "case.yaml"),
                     "--no-timeline", "--json"])
    assert code == 0
    return truth, case


def test_lamp_evidence_layout(lamp):
    out, truth = lamp
    ev = out / "evidence"
    assert truth["stack"]["name"] == "lamp" and truth["image"]["skipped"] is True
    assert truth["expected_verdict"]["exfiltration"] == "found"
    assert (ev / "web01/etc/nginx/nginx.conf").exists() and not (ev / "web01/etc/httpd").exists()
    assert (ev / "web01/var/log/nginx/access.log").exists() and (ev / "web01/var/log/nginx/error.log").exists()
    assert not (ev / "web01/var/log/httpd").exists() and not (ev / "db01/image").exists()
    mysql = sorted(p.name for p in (ev / "db01/var/log/mysql").iterdir())
    assert mysql[:3] == ["mariadb.log", "mariadb.log.1", "mariadb.log.2.gz"]
    assert not (ev / "db01/var/log/messages").exists()
    # mariadbd's layout: banner, the time only when it changes, tab-indented records otherwise
    text = gzip.decompress((ev / "db01/var/log/mysql/mariadb.log.2.gz").read_bytes()).decode()
    lines = text.splitlines()
    assert lines[2] == "Time\t\t    Id Command\tArgument"
    stamp, rest = lines[3].split("\t", 1)
    assert STAMP.match(stamp) and rest.endswith("Connect\thealthcheck@localhost on  using Socket")
    assert lines[4].startswith("\t\t") and lines[4].endswith(" Quit\t")
    # the theft from the web server's address by the application's user
    live = "".join(gzip.decompress(p.read_bytes()).decode() if p.suffix == ".gz" else p.read_text()
                   for p in (ev / "db01/var/log/mysql").iterdir())
    assert re.search(r"\t *(\d+) Connect\twebapp@192\.168\.10\.11 on ferry using TCP/IP\n"
                     r"\t\t *\1 Query\tselect @@version_comment limit 1\n\t\t *\1 Query\tSELECT \* FROM customers\n",
                     live)


def test_unknown_stack_is_refused(tmp_path):
    with pytest.raises(UsageError, match="unknown stack"):
        generate(tmp_path, days=DAYS, seed=SEED, stack="nope")


@pytest.mark.slow
def test_lamp_investigates_end_to_end(investigated):
    truth, case = investigated
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    try:
        roles = dict(con.execute("SELECT role, count(*) FROM inputs GROUP BY ALL").fetchall())
        assert "unknown" not in roles and "unread" not in roles
        formats = dict(con.execute("SELECT format_id, count(*) FROM sources WHERE host = 'db01' "
                                   "GROUP BY ALL").fetchall())
        assert set(formats) == {"mysql-general"}
        web = {f for (f,) in con.execute("SELECT DISTINCT format_id FROM sources WHERE host = 'web01'").fetchall()}
        assert {"apache-access", "nginx-error"} <= web
        assert con.execute("SELECT sum(issues) FROM sources WHERE host = 'db01'").fetchone()[0] == 0
    finally:
        con.close()
    continuity = json.loads((case / "continuity.json").read_text())
    db01 = next(h for h in continuity["hosts"] if h["name"] == "db01")
    assert db01["heartbeat"]["period_s"] == 30 and "healthcheck" in db01["heartbeat"]["pattern"]
    assert db01["heartbeat"]["formats"] == ["mysql-general"]
    findings = json.loads((case / "findings.json").read_text())
    verdict = findings["verdict"]
    # qualified by the general log's coverage of the exposure window (the files' weeks only)
    coverage = verdict["coverage_of_exposure_window"]
    assert isinstance(coverage, float)
    assert coverage == pytest.approx(truth["db"]["coverage"]["exposure_window"], abs=0.002)
    assert any("covers" in r and "exposure window" in r for r in verdict["reasons"])
    assert verdict["exfiltration"] == truth["expected_verdict"]["exfiltration"] == "found"
    assert verdict["confidence"] == truth["expected_verdict"]["confidence"]
    assert verdict["db_host"] == "db01"
    assert "customers" in " ".join(verdict["reasons"])
