"""plaso's text-parser test data, parsed, and compared with what plaso's own unit tests assert.

Source: log2timeline/plaso @ 4ea03ef9a48dad5284c371ac9b537a184b3eea9c (Apache-2.0), files
test_data/apache_access.log, test_data/postgresql.log, test_data/vsftpd.log, test_data/syslog.gz,
test_data/syslog.bz2, test_data/syslog_copy and test_data/syslog/{syslog, syslog_chromeos,
syslog_cron.log, syslog_osx, syslog_rsyslog, syslog_rsyslog_ForwardFormat,
syslog_rsyslog_SysklogdFileFormat, syslog_rsyslog_SyslogProtocol23Format,
syslog_rsyslog_TraditionalForwardFormat, syslog_rsyslog_traditional, syslog_ssh.log}; expected
values are corpus/plaso/EXPECTED_plaso_tests.md, a transcription of the asserts in plaso's
tests/parsers/text_plugins/{apache_access,vsftpd,postgresql,syslog}.py. test_data/selinux.log (an
audit log) is compared with plaso's tests/parsers/text_plugins/selinux.py @
28d65115d9e0c19d84a98fcdbcd41eea0a0e6622, which that transcription does not hold.
"""

from __future__ import annotations

import pytest

from corpus_support import assert_coverage, by_raw, offset, parse, read_bytes, wall

# (file, format, issues): issues None = at least 99 % of lines in events; a number = exactly that
# many issues, for files that hold deliberately broken lines
FILES = [
    # 'MMM 22 07:54:32 …' (no such month) is the one line plaso warns about too
    ("plaso/syslog", "syslog", 1),
    # syslog_copy and its compressed twins: the 'MMM' line and 'Mar 23 Wrong line that should not be
    # able to get through' (a header with no time)
    ("plaso/syslog_copy", "syslog", 2),
    ("plaso/syslog.gz", "syslog", 2),
    ("plaso/syslog.bz2", "syslog", 2),
    ("plaso/syslog_chromeos", "syslog", None),
    ("plaso/syslog_cron.log", "syslog", None),
    ("plaso/syslog_osx", "syslog", None),
    ("plaso/syslog_rsyslog", "syslog", None),
    ("plaso/syslog_rsyslog_SysklogdFileFormat", "syslog", None),
    ("plaso/syslog_rsyslog_SyslogProtocol23Format", "syslog", None),
    ("plaso/syslog_rsyslog_traditional", "syslog", None),
    ("plaso/syslog_ssh.log", "syslog", None),
    # rsyslog's forwarding templates written to a file: records run together with no line end
    # between them. A line-based reader cannot split them; each physical line is one issue, so
    # no byte is lost (and plaso's tests do not expect events from these either)
    ("plaso/syslog_rsyslog_ForwardFormat", "syslog", 2),
    ("plaso/syslog_rsyslog_TraditionalForwardFormat", "syslog", 2),
    ("plaso/vsftpd.log", "vsftpd", 0),
    ("plaso/apache_access.log", "apache-access", 1),
    ("plaso/postgresql.log", "postgresql-stderr", 0),
    # the four lines plaso warns about (no fraction in the time, an empty time, no type, no type key)
    # and a blank line
    ("plaso/selinux.log", "auditd", 5),
]


@pytest.mark.parametrize("rel,fmt,issues", FILES, ids=[f[0] for f in FILES])
def test_file_parses(corpus, rel, fmt, issues):
    result = parse(fmt, read_bytes(rel))
    if issues is None:
        assert_coverage(result, rel)
    else:
        assert len(result.issues) == issues, f"{rel}: {len(result.issues)} issues:\n{result.describe()}"


def test_syslog_matches_plaso(corpus):
    result = parse("syslog", read_bytes("plaso/syslog"))
    # plaso: 16 events + 1 warning out of 18 lines, one continuation line folded in
    assert len(result.events) == 16
    (issue,) = result.issues
    assert issue[4].startswith("MMM 22 07:54:32")
    first = result.events[0]
    assert (first["log_host"], first["program"], first["process_pid"]) == ("myhostname.myhost.com", "client", 30840)
    assert first["message"] == "INFO No new content in ímynd.dd."
    assert wall(first)[1:4] == (1, 22, "07:52:33")
    assert first["_stamp"].year is None  # no year in the text: left to year inference
    fractional = next(r for r in result.events if r["message"].endswith("fractional value for seconds."))
    assert fractional["program"] == "somrandomexe"
    assert wall(fractional)[1:] == (3, 23, "23:01:18", 123000)
    multi = next(r for r in result.events if r.get("process_pid") == 10100)
    assert multi["message"] == "This is a multi-line message that screws up\n\tmany syslog parsers."
    assert multi["_line_count"] == 2
    kernel = next(r for r in result.events if r["raw"].startswith("Nov 18 08:30:20"))
    assert (kernel["program"], kernel.get("log_host")) == ("kernel", None)  # written without a host name
    repeated = next(r for r in result.events if r["event_type"] == "syslog.repeated")
    assert repeated["message"] == "last message repeated 5 times"
    leap = next(r for r in result.events if r["raw"].startswith("Feb 29"))
    assert leap["event_type"] == "syslog.marker" and wall(leap)[1:3] == (2, 29)


def test_syslog_cron_matches_plaso(corpus):
    result = parse("syslog", read_bytes("plaso/syslog_cron.log"))
    assert len(result.events) == 9 and not result.issues
    rec = result.events[1]
    assert rec["event_type"] == "cron.cmd"
    assert rec["user_name"] == "root"
    assert rec["command"] == "sleep $(( 1 * 60 )); touch /tmp/afile.txt"
    assert wall(rec)[1:4] == (3, 11, "19:26:39")


def test_syslog_ssh_matches_plaso(corpus):
    result = parse("syslog", read_bytes("plaso/syslog_ssh.log"))
    assert len(result.events) == 9 and not result.issues
    login = result.events[1]
    assert login["event_type"] == "auth.ssh.accepted"
    assert login["source_ip"] == "192.168.0.1"
    assert login["ssh_key"] == "RSA 00:aa:bb:cc:dd:ee:ff:11:22:33:44:55:66:77:88:99"
    failed = result.events[3]
    assert failed["event_type"] == "auth.ssh.failed"
    assert (failed["source_ip"], failed["source_port"]) == ("001:db8:a0b:12f0::1", 8759)
    opened = result.events[4]
    assert opened["event_type"] == "auth.ssh.connection" and opened["source_ip"] == "188.124.3.41"


@pytest.mark.parametrize("rel,count,host,program,parts", [
    ("plaso/syslog_osx", 2, "osx-machine", "kernel", (3, 11, "19:26:39")),
    ("plaso/syslog_rsyslog_SysklogdFileFormat", 9, "hostname", "log_tag", (3, 6, "04:07:28")),
    ("plaso/syslog_rsyslog_traditional", 8, "myhostname.myhost.com", "Job", (1, 22, "07:54:32")),
])
def test_traditional_variants_match_plaso(corpus, rel, count, host, program, parts):
    result = parse("syslog", read_bytes(rel))
    assert len(result.events) == count, result.describe()
    first = result.events[0]
    assert (first["log_host"], first["program"]) == (host, program)
    assert wall(first)[1:4] == parts


def test_osx_level_token(corpus):
    result = parse("syslog", read_bytes("plaso/syslog_osx"))
    second = result.events[1]
    assert (second["program"], second["process_pid"], second["log_level"]) == ("sockerfilterfw", 1985, "Info")
    assert second["message"] == "launchd Allow TCP LISTEN (in:0 out:2)"


def test_chromeos_matches_plaso(corpus):
    result = parse("syslog", read_bytes("plaso/syslog_chromeos"))
    assert len(result.events) == 8  # the last record has a continuation line
    first = result.events[0]
    assert (first["log_level"], first["program"], first["process_pid"]) == ("INFO", "periodic_scheduler", 13707)
    assert first["message"] == "cleanup_logs: job completed"
    assert wall(first) == (2016, 10, 25, "12:37:23", 297265) and offset(first) == -7 * 3600


def test_rsyslog_rfc3339_matches_plaso(corpus):
    result = parse("syslog", read_bytes("plaso/syslog_rsyslog"))
    assert len(result.events) == 5
    first = result.events[0]
    assert (first["log_host"], first["program"]) == ("localhost", "rsyslogd")
    assert wall(first) == (2020, 5, 31, "00:00:45", 698463) and offset(first) == 0


def test_rfc5424_matches_plaso(corpus):
    result = parse("syslog", read_bytes("plaso/syslog_rsyslog_SyslogProtocol23Format"))
    assert len(result.events) == 9
    first = result.events[0]
    assert (first["pri"], first["log_host"], first["program"], first["msgid"]) == ("15", "hostname", "log_tag", "123")
    assert wall(first) == (2021, 3, 6, "04:07:38", 251122) and offset(first) == 0
    # 'with another line' continues the second record (rsyslog wrote the message's newline as it came)
    assert result.events[1]["message"].endswith("this is info\nwith another line")


def test_vsftpd_matches_plaso(corpus):
    result = parse("vsftpd", read_bytes("plaso/vsftpd.log"))
    assert len(result.events) == 25 and not result.issues
    rec = result.events[12]
    assert rec["raw"].endswith('[pid 3] [jean] OK DOWNLOAD: Client "192.168.1.7", '
                               '"/home/jean/trains/how-thomas-the-tank-engine-works-1.jpg", 49283 bytes, 931.38Kbyte/sec')
    assert wall(rec)[:4] == (2016, 6, 10, "14:24:19")
    assert (rec["event_type"], rec["user_name"], rec["source_ip"], rec["bytes"]) == (
        "ftp.download", "jean", "192.168.1.7", 49283)


def test_apache_access_matches_plaso(corpus):
    result = parse("apache-access", read_bytes("plaso/apache_access.log"))
    # plaso: 14 events and a warning for line 8, whose user-agent lost its closing quote: the same here
    assert len(result.events) == 14
    assert [(i[2], i[3]) for i in result.issues] == [(8, "no pattern of format apache-access matched")]
    common = result.events[0]
    assert (common["source_ip"], common["http_status"], common["bytes"]) == ("10.0.0.1", 200, 494)
    assert common["url_full"] == "/wp-content/themes/darkmode/header.php?install2"
    assert common.get("user_name") is None and common.get("ident") is None
    assert wall(common)[:4] == (2016, 1, 13, "19:31:16") and offset(common) == 0
    combined = result.events[4]
    assert combined["url_full"] == "/wp-content/themes/darkmode/evil.php?cmd=uname+-a"
    assert combined["referrer"] == "http://localhost/"
    assert combined["user_agent"] == "Mozilla/5.0 (X11; Linux i686; rv:2.0b12pre) Gecko/20100101 Firefox/4"
    assert (combined["http_status"], combined["bytes"], offset(combined)) == (200, 694, 7200)
    vhost = result.events[7]
    assert (vhost["vhost"], vhost["server_port"], vhost["source_ip"]) == ("plaso.log2timeline.net", "443", "10.1.1.2")
    assert wall(vhost)[:4] == (2018, 1, 13, "19:31:17")
    kerberos = result.events[13]
    assert (kerberos["source_ip"], kerberos["user_name"], kerberos["bytes"]) == (
        "192.168.0.64", "pyllyukko@EXAMPLE.COM", 8264)
    assert wall(kerberos)[:4] == (2019, 11, 16, "09:46:42") and offset(kerberos) == 7200
    # lines 13 and 14 carry unescaped quotes inside the request
    xss = result.events[11]
    assert xss["url_full"] == '/aaaa.xxxx/SomeText?action=edit&template=<script>alert("text")</script>'


def test_postgresql_matches_plaso(corpus):
    result = parse("postgresql-stderr", read_bytes("plaso/postgresql.log"), pg_log_line_prefix="%m [%p] %q%u@%d ")
    # plaso: 20 events, DETAIL lines as events of their own. Here a DETAIL belongs to the message
    # before it, so the two DETAIL lines (and their continuation lines) are inside two FATAL records
    assert len(result.events) == 18 and not result.issues
    first = result.events[0]
    assert (first["pg_level"], first["process_pid"]) == ("LOG", 7755)
    assert first["pg_message"].startswith("starting PostgreSQL 12.9 (Ubuntu 12.9-0ubuntu0.20.04.1) on x86_64")
    assert wall(first) == (2022, 4, 12, "00:16:05", 526000) and offset(first) == 0
    fatal = result.events[15]
    assert (fatal["pg_level"], fatal["process_pid"], fatal["db_user"], fatal["db_name"]) == (
        "FATAL", 9158, "postgres", "postgres")
    assert fatal["pg_message"] == 'password authentication failed for user "postgres"'
    assert fatal["pg_detail"] == ('User "postgres" has no password assigned.\n        Connection matched pg_hba.conf '
                                  'line 96: "host    all             all             127.0.0.1/32            md5"')
    assert wall(fatal)[:4] == (2022, 4, 12, "00:24:24")
    last = result.events[17]
    # '[203851-1]' is not '%p' of this prefix: the line is still read, by the generic prefix
    assert last["pg_level"] == "LOG"
    assert last["pg_message"] == "could not receive data from client: Connection reset by peer"
    assert wall(last)[:4] == (2022, 7, 15, "23:04:27") and offset(last) == 10 * 3600


def test_compressed_copies_match_the_plain_file(corpus):
    plain = parse("syslog", read_bytes("plaso/syslog_copy"))
    for rel in ("plaso/syslog.gz", "plaso/syslog.bz2"):
        packed = parse("syslog", read_bytes(rel))
        assert [r["raw"] for r in packed.events] == [r["raw"] for r in plain.events]
        assert by_raw(packed).keys() == by_raw(plain).keys()


def test_selinux_matches_plaso(corpus):
    """plaso: 7 records and 4 warnings; the LOGIN, SHORTDATE, NOMSG and UNDER_SCORE records' type,
    body, time (UTC: the seconds since 1970 in msg=audit(…)) and pid."""
    result = parse("auditd", read_bytes("plaso/selinux.log"))
    assert len(result.events) == 7
    warned = [i[4].split(" ", 1)[0] for i in result.problems()]
    assert warned == ["type=WRONGDATE", "type=EMPTYDATE", "type=", "msg=audit(1337845201.174:94984):"]
    expected = [
        ("LOGIN", "pid=25443 uid=0 old auid=4294967295 new auid=0 old ses=4294967295 new ses=1165",
         (2012, 5, 24, "07:40:01", 174000), 25443),
        ("SHORTDATE", "check rounding", (2012, 5, 24, "07:40:01", 0), None),
        ("NOMSG", "", (2012, 5, 24, "07:40:22", 174000), None),
        ("UNDER_SCORE", "pid=25444 uid=0 old auid=4294967295 new auid=54321 old ses=4294967295 new ses=1166",
         (2012, 5, 24, "07:47:46", 174000), 25444),
    ]
    for rec, (kind, body, when, pid) in zip(result.events, expected):
        assert (rec["audit_type"], rec["message"], wall(rec), offset(rec), rec.get("process_pid")) == (
            kind, body, when, 0, pid)
    assert [r["event_type"] for r in result.events[4:]] == ["audit.unknown", "audit.avc", "audit.syscall"]
