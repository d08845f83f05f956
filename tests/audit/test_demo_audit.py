"""The demo's evidence audits to what the incident had — FTP open to the internet with an account
named after the domain, nobody's crontab, a web root the FTP account can write, logs kept four
weeks — and to what made it answerable: every record naming client, user and database, the
30-second health check, slow-statement logging. The same configuration hardened audits clean."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from logsalvage import cli
from logsalvage.audit.host import AuditOptions
from logsalvage.audit.run import run_audit

from audit_support import by_id, serious, tree_digest

ACQUIRED = AuditOptions(acquired=datetime(2018, 1, 6, 6, 0, tzinfo=timezone.utc))


def _one(result: dict, check: str, host: str) -> list[dict]:
    return [f for f in by_id(result, check) if f["host"] == host]


def test_the_incidents_weaknesses(demo_dir):
    result = run_audit([demo_dir / "evidence"], ACQUIRED)
    ftp = _one(result, "vsftpd.open", "web01")
    assert ftp and ftp[0]["severity"] == "high" and ftp[0]["file"] == "web01/etc/vsftpd/vsftpd.conf"
    assert ftp[0]["evidence"] == "listen=YES" and ftp[0]["category"] == "ftp"
    account = _one(result, "vsftpd.domain_account", "web01")
    assert account and account[0]["severity"] == "high" and "'kyushoferry'" in account[0]["title"]
    assert account[0]["file"] == "web01/etc/passwd" and account[0]["evidence"].startswith("kyushoferry:")
    cron = _one(result, "cron.service_account_crontab", "web01")
    assert cron and cron[0]["severity"] == "high" and cron[0]["file"] == "web01/var/spool/cron/nobody"
    assert _one(result, "cron.job_in_writable_place", "web01")  # the hidden directory's upd
    webroot = _one(result, "webroot.ftp_writable", "web01")
    assert webroot and webroot[0]["severity"] == "high"
    assert "'kyushoferry' can write the web root" in webroot[0]["title"]
    assert webroot[0]["file"] == "web01/fs/ls-docroot.txt" and webroot[0]["line"]
    kept = [f for f in _one(result, "logrotate.retention", "db01") if "/var/log/messages" in f["title"]]
    assert kept and kept[0]["severity"] == "high" and "4 weeks (28 days)" in kept[0]["title"]
    assert kept[0]["file"] == "db01/etc/logrotate.conf" and kept[0]["evidence"] == "rotate 4"
    strangers = _one(result, "webroot.unknown_scripts", "web01")
    assert strangers and all(name in strangers[0]["title"] for name in ("/config.php", "/wp-session.php",
                                                                        "/wp-contacts.php"))
    assert _one(result, "packages.age", "web01")[0]["severity"] == "high"


def test_the_incidents_strengths(demo_dir):
    result = run_audit([demo_dir / "evidence"], ACQUIRED)
    strengths = {f["id"]: f for f in result["findings"] if f["severity"] == "strength" and f["host"] == "db01"}
    attribution = strengths["pg.connection_attribution"]
    assert "DATABASE=%d,USER=%u,CLIENT=%r," in attribution["evidence"]
    assert attribution["file"] == "db01/var/lib/pgsql/data/postgresql.conf"
    beat = strengths["pg.heartbeat"]
    assert "every 30 s" in beat["title"] and beat["file"] == "db01/etc/cron.d/pg-healthcheck"
    slow = strengths["pg.log_min_duration_statement"]
    assert slow["evidence"].startswith("log_min_duration_statement = 3000")
    assert "time.sync" in strengths
    web = {f["id"] for f in result["findings"] if f["severity"] == "strength" and f["host"] == "web01"}
    assert {"vsftpd.log", "time.sync"} <= web


def _edit(path: Path, *pairs: tuple[str, str]) -> None:
    text = path.read_text()
    for old, new in pairs:
        assert old in text, (path, old)
        text = text.replace(old, new)
    path.write_text(text)


def _harden(ev: Path) -> None:
    web, db = ev / "web01", ev / "db01"
    shutil.rmtree(web / "etc/vsftpd")  # no FTP
    _edit(web / "etc/passwd", ("kyushoferry:x:1001:1001:web site maintenance (FTP):/var/www:/bin/bash",
                               "mnt7q2x:x:1001:1001:site deploy:/home/mnt7q2x:/sbin/nologin"))
    (web / "var/spool/cron/nobody").unlink()
    (web / "etc/cron.allow").write_text("root\n")
    _edit(web / "etc/ssh/sshd_config", ("\nPasswordAuthentication yes", "\nPasswordAuthentication no"),
          ("#PermitRootLogin yes", "PermitRootLogin no"))
    _edit(web / "etc/php.ini", ("disable_functions =\n", "disable_functions = exec,system,passthru,shell_exec,"
                                                         "proc_open,popen\n"),
          ("expose_php = On", "expose_php = Off"), ("allow_url_fopen = On", "allow_url_fopen = Off"))
    _edit(web / "etc/httpd/conf/httpd.conf", ("Options Indexes FollowSymLinks", "Options -Indexes +FollowSymLinks"),
          ('\\"%{User-Agent}i\\"" combined', '\\"%{User-Agent}i\\" %D" combined'),
          ("ServerTokens OS", "ServerTokens Prod"), ("ServerSignature On", "ServerSignature Off"),
          ("User nobody\nGroup nobody", "User apache\nGroup apache"),
          ('ScriptAlias /cgi-bin/ "/var/www/cgi-bin/"\n', ""))
    listing = web / "fs/ls-docroot.txt"
    keep = [line for line in listing.read_text().splitlines()
            if not re.search(r" (config|cron|wp-[a-z]+|drupal)\.(php|sh)$|cron-curl\.sh$| tmp$", line)]
    listing.write_text("\n".join(keep).replace("kyushoferry kyushoferry", "root root") + "\n")
    rpm = web / "fs/rpm-qa-last.txt"
    rpm.write_text("kernel-3.10.0-693.11.6.el7.x86_64            Tue 02 Jan 2018 03:10:11 AM JST\n" + rpm.read_text())
    for host in (web, db):
        _edit(host / "etc/logrotate.conf", ("rotate 4\n", "rotate 27\n"), ("    rotate 1\n}", "    rotate 7\n}"))
        _edit(host / "etc/rsyslog.conf", ("#*.* @@remote-host:514", "*.* @@loghost.example:514"))
        (host / "etc/audit/rules.d").mkdir(parents=True)
        (host / "etc/audit/rules.d/exec.rules").write_text("-a always,exit -F arch=b64 -S execve -k exec\n")
    _edit(web / "etc/logrotate.d/syslog", ("rotate 8", "rotate 27"))
    with (db / "var/lib/pgsql/data/postgresql.conf").open("a") as f:
        f.write("log_connections = on\nlog_disconnections = on\nlog_statement = 'ddl'\n")


def test_a_hardened_variant_audits_clean(demo_copy):
    _harden(demo_copy)
    result = run_audit([demo_copy], ACQUIRED)
    assert serious(result) == [], [(f["host"], f["id"], f["title"]) for f in serious(result)]
    # and what made the incident answerable is still there
    assert {"pg.connection_attribution", "pg.heartbeat", "pg.log_min_duration_statement", "pg.log_connections",
            "syslog.remote_copy", "auditd.execve"} <= {f["id"] for f in result["findings"]
                                                        if f["severity"] == "strength"}


def test_the_demo_tree_is_read_only(demo_dir):
    before = tree_digest(demo_dir / "evidence")
    run_audit([demo_dir / "evidence"], ACQUIRED)
    assert tree_digest(demo_dir / "evidence") == before


def test_cli_json_is_only_json_and_the_case_keeps_the_findings(demo_copy, tmp_path, capsys):
    case = tmp_path / "case"
    code = cli.main(["audit", str(demo_copy), "--json", "--case", str(case)])
    out, err = capsys.readouterr()
    assert code == 0
    result = json.loads(out)
    assert result["summary"]["by_severity"]["high"] >= 5 and "stored" in err
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    rows = con.execute("SELECT finding_id, severity, file, line FROM audit_findings ORDER BY ALL").fetchall()
    con.close()
    assert len(rows) == len(result["findings"])
    assert any(r[:3] == ("vsftpd.open", "high", "web01/etc/vsftpd/vsftpd.conf") and r[3] for r in rows)
    assert json.loads((case / "audit.json").read_text())["findings"] == result["findings"]
    # a second audit replaces the findings, it does not add to them
    assert cli.main(["audit", str(demo_copy), "--case", str(case)]) == 0
    text = capsys.readouterr().out
    assert "(1) No FTP, or FTP only from fixed addresses" in text and "HIGH" in text
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM audit_findings").fetchone()[0] == len(result["findings"])
    con.close()
    # detect on that case carries the stored audit's summary into findings.json
    assert cli.main(["detect", "--case", str(case), "--json"]) == 0
    detected = json.loads(capsys.readouterr().out)
    assert detected["audit"]["by_severity"] == result["summary"]["by_severity"]
    assert json.loads((case / "findings.json").read_text())["audit"]["weaknesses"] == result["summary"]["weaknesses"]


def test_cli_refuses_what_it_cannot_do(demo_copy, tmp_path, capsys):
    assert cli.main(["audit", str(tmp_path / "missing")]) == 2
    assert cli.main(["audit", str(demo_copy), "--case", str(demo_copy / "web01" / "case")]) == 2
    bad = tmp_path / "case.yaml"
    bad.write_text("audit: {dwell_days: -3}\n")
    assert cli.main(["audit", str(demo_copy), "--config", str(bad)]) == 2
    bad.write_text("audit: {dwel_days: 30}\n")
    assert cli.main(["audit", str(demo_copy), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("logsalvage: error:") == 4 and "Traceback" not in err
    assert not (demo_copy / "web01" / "case").exists()


def test_dwell_time_comes_from_the_case_config(demo_copy, tmp_path, capsys):
    config = tmp_path / "case.yaml"
    config.write_text("audit: {dwell_days: 20}\n")
    assert cli.main(["audit", str(demo_copy), "--config", str(config), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    kept = [f for f in by_id(result, "logrotate.retention") if f["host"] == "db01" and "messages" in f["title"]]
    assert result["dwell_days"] == 20 and kept[0]["severity"] == "strength"
