"""The response size of an access log is ``bytes`` whichever directive wrote it: ``%b``/``%B``, or
``%O`` (bytes sent, headers included) in a format that has no ``%b`` — Debian's and Ubuntu's
``combined`` and ``vhost_combined`` — so size-based detection sees it."""

from __future__ import annotations

import re

import duckdb
import pytest

from logsalvage.config import parse_config
from logsalvage.ingest import ingest
from logsalvage.parsing.apache_logformat import compile_logformat
from logsalvage.parsing.dialect import to_python

DEBIAN_COMBINED = '%h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"'
LINE = '203.0.113.9 - - [15/Jul/2017:08:58:21 +0900] "GET /item.php?id=1 HTTP/1.1" 200 7590 "-" "sqlmap/1.8"\n'


@pytest.mark.parametrize("fmt, fields", [
    (DEBIAN_COMBINED, {"bytes": "7590"}),
    ("vhost_combined", {"bytes": "7590"}),
    ('%h %l %u %t "%r" %>s %b %O', {"bytes": "7590", "bytes_out": "7800"}),  # both: %b is the size, %O kept
])
def test_the_size_is_bytes(fmt, fields):
    line = LINE.rstrip("\n")
    if fmt == "vhost_combined":
        line = "shop.example:80 " + line
    if "%b %O" in fmt:
        line = line.split(' "-"')[0] + " 7800"
    m = re.match(to_python(compile_logformat(fmt)), line)
    assert m is not None
    assert {k: m.group(k) for k in fields} == fields


def test_an_access_log_written_with_debians_combined_has_sizes_in_the_case(tmp_path):
    config = parse_config({"hosts": {"web01": {"timezone": "Asia/Tokyo"}},
                           "apache": {"logformats": [DEBIAN_COMBINED]}}, "test")
    log = tmp_path / "ev/web01/var/log/apache2/access.log"
    log.parent.mkdir(parents=True)
    log.write_text(LINE)
    ingest([tmp_path / "ev"], tmp_path / "case", config=config)
    con = duckdb.connect(str(tmp_path / "case/case.duckdb"), read_only=True)
    assert con.execute("SELECT bytes, extra FROM events").fetchall() == [(7590, None)]
    con.close()


def test_an_access_log_in_a_format_only_the_servers_own_configuration_declares(tmp_path):
    """Debian's layout: the LogFormat in apache2.conf, the CustomLog naming it in a site's file. The
    log's lines look like no format the tool knows; read with the declared one, every field lands."""
    root = tmp_path / "ev/web01"
    (root / "etc/apache2/sites-enabled").mkdir(parents=True)
    (root / "etc/apache2/apache2.conf").write_text(
        'LogFormat "%v:%p %h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" vhost_combined\n'
        'LogFormat "%t %h \\"%r\\" %>s %O %D" timefirst\n')
    (root / "etc/apache2/sites-enabled/000-default.conf").write_text(
        "<VirtualHost *:80>\n\tCustomLog ${APACHE_LOG_DIR}/access.log timefirst\n</VirtualHost>\n")
    log = root / "var/log/apache2/access.log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(f'[15/Jul/2017:08:58:{s:02d} +0900] 203.0.113.9 "GET /item.php?id={s} HTTP/1.1" '
                           f'200 {7000 + s} {1200 + s}\n' for s in range(10)))
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    assert [(s["path"], s["format"], s["events"], s["issues"]) for s in result.sources] == [
        ("web01/var/log/apache2/access.log", "apache-access", 10, 0)]
    con = duckdb.connect(str(tmp_path / "case/case.duckdb"), read_only=True)
    rows = con.execute("""SELECT source_ip, url_path, http_status, bytes, json_extract_string(extra, '$.duration_us')
                          FROM events ORDER BY line_no LIMIT 1""").fetchall()
    detail = con.execute("SELECT detail FROM inputs WHERE path LIKE '%access.log'").fetchone()[0]
    con.close()
    assert rows == [("203.0.113.9", "/item.php", 200, 7000, "1200")]
    assert "LogFormat declared for host web01" in detail
