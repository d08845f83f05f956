"""dpkg.log and the MySQL/MariaDB error log — most of what real servers' logs left unread — are
recognised by their content and read whole, in the host's zone where they carry none."""

from __future__ import annotations

import duckdb

from logsalvage.config import parse_config
from logsalvage.ingest import ingest

DPKG = """\
2017-12-25 15:28:56 startup archives unpack
2017-12-25 15:28:56 install nmap:amd64 <none> 7.40-1
2017-12-25 15:28:56 status half-installed nmap:amd64 7.40-1
2017-12-25 15:28:57 status unpacked nmap:amd64 7.40-1
2017-12-25 15:28:57 startup packages configure
2017-12-25 15:28:57 configure nmap:amd64 7.40-1 <none>
2017-12-25 15:28:57 status installed nmap:amd64 7.40-1
2017-12-25 15:29:02 conffile /etc/default/nmap keep
"""
MARIADB = """\
2017-12-25 15:20:00 0 [Note] /usr/sbin/mysqld (mysqld 10.1.26-MariaDB-0+deb9u1) starting as process 812 ...
2017-12-25 15:20:01 0 [Note] /usr/sbin/mysqld: ready for connections.
2017-12-25 15:31:40 140234567 [Warning] Access denied for user 'root'@'203.0.113.7' (using password: YES)
2017-12-25 15:31:41 140234568 [Warning] Access denied for user 'root'@'203.0.113.7' (using password: YES)
2017-12-25 15:40:00 140234590 [Warning] Aborted connection 140234590 to db: 'shop' user: 'shopapp' host: 'localhost' (Got timeout reading communication packets)
"""


def test_dpkg_and_mariadb_logs_are_read(tmp_path):
    ev = tmp_path / "ev/web01/var/log"
    (ev / "mysql").mkdir(parents=True)
    (ev / "dpkg.log").write_text(DPKG)
    (ev / "mysql/error.log").write_text(MARIADB)
    config = parse_config({"hosts": {"web01": {"timezone": "Asia/Tokyo"}}}, "t")
    result = ingest([tmp_path / "ev"], tmp_path / "case", config=config)
    got = {s["path"].rsplit("/", 1)[-1]: (s["format"], s["events"], s["issues"]) for s in result.sources}
    assert got == {"dpkg.log": ("dpkg", 8, 0), "error.log": ("mysql-error", 5, 0)}
    con = duckdb.connect(str(tmp_path / "case/case.duckdb"), read_only=True)
    installs = con.execute("""SELECT json_extract_string(extra, '$.package'), ts_utc
                              FROM events WHERE event_type = 'dpkg.install'""").fetchall()
    denied = con.execute("""SELECT user_name, source_ip, count(*) FROM events
                            WHERE event_type = 'mysql.auth_failed' GROUP BY ALL""").fetchall()
    con.close()
    [(package, when)] = installs
    assert package == "nmap:amd64" and when.isoformat().startswith("2017-12-25T06:28:56")  # JST read as JST
    assert denied == [("root", "203.0.113.7", 2)]
