"""A LAMP server's database gets a verdict too: MariaDB's general query log, in the layout
mariadbd writes (tests/data/dblogs/mariadb-general.log: the time only when it changes, a
connection's client and user only on its Connect line), read by the same database detectors and
exfiltration assessment as PostgreSQL's log."""

from __future__ import annotations

from datetime import datetime, timedelta

from logsalvage.config import parse_config
from logsalvage.detect.run import run_detection
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore

BANNER = ("/usr/sbin/mariadbd, Version: 10.11.19-MariaDB-0+deb12u1-log (Debian 12). started with:\n"
          "Tcp port: 3306  Unix socket: /run/mysqld/mysqld.sock\nTime\t\t    Id Command\tArgument\n")
APP = ("shopapp", "192.168.10.11", "shop", "TCP/IP")
INTRUDER = "203.0.113.7"


def general_log(intruder: bool) -> str:
    records: list[tuple[datetime, int, str, str]] = []
    conn = [2]

    def session(t, who, statements, denied=False):
        conn[0] += 1
        user, host, db, via = who
        records.append((t, conn[0], "Connect", f"{user}@{host} on {db} using {via}"))
        if denied:
            records.append((t, conn[0], "Connect", f"Access denied for user '{user}'@'{host}' (using password: YES)"))
            return
        for i, s in enumerate(statements):
            records.append((t + timedelta(seconds=i + 1), conn[0], "Query", s))
        records.append((t + timedelta(seconds=len(statements) + 1), conn[0], "Quit", ""))

    start = datetime(2017, 12, 20)
    for day in range(6):
        d = start + timedelta(days=day)
        # the nightly mysqldump over the socket: the local maintenance dump
        session(d + timedelta(hours=3), ("root", "localhost", "", "Socket"),
                ["SELECT /*!40001 SQL_NO_CACHE */ * FROM `customers`", "SELECT /*!40001 SQL_NO_CACHE */ * FROM `stock`"])
        for k in range(10):
            n = day * 10 + k
            session(d + timedelta(hours=9, minutes=5 * k), APP,
                    [f"SELECT id, name FROM customers WHERE id = {n}", f"UPDATE stock SET n = n - 1 WHERE id = {n % 7}"])
    if intruder:
        t = datetime(2017, 12, 25, 15, 30)
        for i in range(3):
            session(t + timedelta(seconds=5 * i), ("root", INTRUDER, "", "TCP/IP"), [], denied=True)
        session(t + timedelta(minutes=2), ("shopapp", INTRUDER, "shop", "TCP/IP"),
                ["SELECT * FROM customers", "SELECT * FROM customers INTO OUTFILE '/tmp/c.csv'"])
    lines, last = [], None
    for ts, c, cmd, arg in sorted(records, key=lambda r: (r[0], r[1])):
        stamp = "\t" if ts == last else f"{ts:%y%m%d} {ts.hour:2d}:{ts:%M:%S}"
        last = ts
        lines.append(f"{stamp}\t{c:6d} {cmd}\t{arg}")
    return BANNER + "\n".join(lines) + "\n"


CONFIG = parse_config({"acquired": "2017-12-27T00:00:00+00:00", "hosts": {"db01": {"timezone": "UTC"}},
                       "exposure": {"start": "2017-12-25T15:00:00+00:00"},
                       "containment": "2017-12-26T00:00:00+00:00"}, "t")


def _detect(tmp_path, intruder: bool) -> dict:
    log = tmp_path / "ev/db01/var/log/mysql/mariadb.log"
    log.parent.mkdir(parents=True)
    log.write_text(general_log(intruder))
    result = ingest([tmp_path / "ev"], tmp_path / "case", config=CONFIG)
    assert [(s["format"], s["issues"]) for s in result.sources] == [("mysql-general", 0)]
    with CaseStore(tmp_path / "case") as store:
        return run_detection(store, CONFIG)


def _rules(result, host="db01") -> dict[str, list]:
    out: dict[str, list] = {}
    for f in result["findings"]:
        if f["host"] == host:
            out.setdefault(f["rule"], []).append(f)
    return out


def test_intruder_reading_customers_is_found(tmp_path):
    result = _detect(tmp_path, intruder=True)
    verdict, rules = result["verdict"], _rules(result)
    assert verdict["exfiltration"] == "found" and verdict["db_host"] == "db01"
    [read] = rules["db.full_table_read"]
    # the Query line carries only the connection id: client and user come from its Connect line
    assert (read["detail"]["client"], read["detail"]["user"], read["severity"]) == (INTRUDER, "shopapp", "high")
    outfile = [f for f in rules["db.copy_to"] if f["detail"]["target"] == "file"]
    assert [f["detail"]["tables"] for f in outfile] == [["customers"]]
    assert rules["db.auth_failed"][0]["count"] == 3
    # the nightly mysqldump is the local maintenance dump, set aside
    dump = [f for f in rules["db.copy_to"] if f["detail"]["target"] == "stdout"]
    assert [(f["severity"], f["detail"]["client"], f["detail"]["regular_schedule"]) for f in dump] == [
        ("info", "[local]", True)]
    assert "no periodic record (heartbeat) was found" in " ".join(verdict["reasons"])


def test_normal_traffic_is_not_high(tmp_path):
    result = _detect(tmp_path, intruder=False)
    assert result["verdict"]["exfiltration"] != "found"
    assert not [f for f in result["findings"] if f["severity"] in ("high", "critical")]
    # the application is inferred from its share of the statements
    assert "192.168.10.11, inferred" in " ".join(result["verdict"]["reasons"])


def test_real_mariadb_logs_count_each_execution_once(tmp_path):
    """mariadbd's own general, slow and error logs (tests/data/dblogs): the INTO OUTFILE is in the
    general and the slow log, each refused login in the general and the error log — one each."""
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "data/dblogs"
    ev = tmp_path / "ev/db01/var/log/mysql"
    ev.mkdir(parents=True)
    for name in ("mariadb-general.log", "mariadb-slow.log", "mariadb-error.log"):
        (ev / name).write_bytes((data / name).read_bytes())
    config = parse_config({"hosts": {"db01": {"timezone": "UTC"}}}, "t")
    ingest([tmp_path / "ev"], tmp_path / "case", config=config)
    with CaseStore(tmp_path / "case") as store:
        rules = _rules(run_detection(store, config))
    [outfile] = rules["db.copy_to"]
    assert (outfile["detail"]["target"], outfile["detail"]["tables"], outfile["count"]) == ("file", ["customers"], 1)
    assert "db.dump_session" not in rules
    assert [f["count"] for f in rules["db.auth_failed"]] == [2]
