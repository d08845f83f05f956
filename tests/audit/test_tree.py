"""The audited tree is read as the system would see it and never left, never written, and nothing
but regular files is opened."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from logsalvage.audit.run import run_audit
from logsalvage.audit.tree import SystemTree, find_systems
from logsalvage.errors import UsageError

from audit_support import by_id, tree_digest, worst, write_tree


def test_links_never_lead_out_of_the_tree(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "vsftpd.conf").write_text("anonymous_enable=YES\nlisten=YES\n")  # would be a high finding
    (outside / "php.ini").write_text("[PHP]\nallow_url_include = On\n")
    ev = write_tree(tmp_path, {})
    etc = ev / "h1/etc"
    os.symlink(outside / "vsftpd.conf", etc / "vsftpd.conf")  # absolute: means the system's own /tmp/...
    os.symlink("../../../../outside/php.ini", etc / "php.ini")  # relative, climbing: stops at the tree's root
    os.symlink(str(outside), ev / "h1/var")  # a directory link out
    found = run_audit([ev])
    assert not by_id(found, "vsftpd.anonymous_enable") and not by_id(found, "php.allow_url_include")
    assert all(not f.startswith(str(outside)) for h in found["hosts"] for f in h["files_read"])


def test_links_inside_the_tree_are_followed_as_the_system_would(tmp_path):
    ev = write_tree(tmp_path, {"etc/alternatives/php.ini": "[PHP]\nallow_url_include = On\n"})
    os.symlink("/etc/alternatives/php.ini", ev / "h1/etc/php.ini")
    found = run_audit([ev])
    assert worst(found, "php.allow_url_include") == "high"


def test_link_loops_end(tmp_path):
    ev = write_tree(tmp_path, {})
    os.symlink("b", ev / "h1/etc/a")
    os.symlink("a", ev / "h1/etc/b")
    tree = SystemTree(ev / "h1", "h1", "h1/", live=False)
    assert tree.read("etc/a") is None and any("loop" in n for n in tree.notes)


def test_a_fifo_is_never_opened(tmp_path):
    ev = write_tree(tmp_path, {})
    os.mkfifo(ev / "h1/etc/vsftpd.conf")  # opening it would block until a writer came
    done = []

    def audit():
        done.append(run_audit([ev]))
    worker = threading.Thread(target=audit, daemon=True)
    worker.start()
    worker.join(10)
    assert done, "the audit blocked on a FIFO"
    assert any("FIFO" in n for n in done[0]["hosts"][0]["notes"])


def test_the_tree_is_not_changed(tmp_path):
    ev = write_tree(tmp_path, {"etc/vsftpd.conf": "listen=YES\n", "etc/passwd": "root:x:0:0::/root:/bin/bash\n",
                               "var/spool/cron/nobody": "* * * * * /tmp/x\n", "var/log/dpkg.log": ""})
    os.symlink("/etc/passwd", ev / "h1/etc/passwd-link")
    before = tree_digest(ev)
    run_audit([ev])
    assert tree_digest(ev) == before


def test_paths_that_cannot_be_audited(tmp_path):
    with pytest.raises(UsageError, match="cannot be examined"):
        find_systems([tmp_path / "missing"])
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="not a file"):
        find_systems([tmp_path / "f"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no system tree"):
        find_systems([tmp_path / "empty"])
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UsageError):
        find_systems([tmp_path / "fifo"])


def test_hosts_are_named_as_ingest_names_them(tmp_path):
    ev = write_tree(tmp_path, {}, host="web01")
    write_tree(tmp_path, {}, host="db01")
    assert [t.host for t in find_systems([ev])] == ["db01", "web01"]
    assert [t.host for t in find_systems([ev], host_for=lambda rel: "www" if rel.startswith("web01/") else None)] \
        == ["db01", "www"]
    one = find_systems([ev / "web01"])[0]  # a system given directly: its own paths
    assert one.host == "web01" and one.shown("etc/passwd") == "/etc/passwd"


def test_a_live_tree_takes_owners_and_modes_from_the_file_system(tmp_path):
    """On a live or mounted system (no listing needed) the web root's own mode is the evidence."""
    from logsalvage.audit.host import AuditOptions, Host
    from logsalvage.audit import webroot

    write_tree(tmp_path, {"etc/httpd/conf/httpd.conf": 'DocumentRoot "/var/www/html"\n',
                          "var/www/html/index.php": "<?php ?>\n"}, host="sys")
    docroot = tmp_path / "evidence/sys/var/www/html"
    docroot.chmod(0o777)
    tree = SystemTree(tmp_path / "evidence/sys", "sys", "/", live=True)
    found = webroot.check(Host(tree, AuditOptions()))
    assert [(f.id, f.severity, f.file) for f in found] == [("webroot.world_writable", "high", "/var/www/html")]
    docroot.chmod(0o755)
    assert webroot.check(Host(SystemTree(tmp_path / "evidence/sys", "sys", "/", live=True), AuditOptions())) == []


def test_the_live_system_itself(tmp_path):
    """``/`` is one host named by its own paths; auditing it changes nothing it reads."""
    from logsalvage.audit.run import check_case_location

    found = run_audit(["/"])
    assert len(found["hosts"]) == 1 and found["hosts"][0]["root"] == "/" and found["hosts"][0]["live"]
    assert all(f["file"] is None or f["file"].startswith("/") for f in found["findings"])
    with pytest.raises(UsageError, match="/etc"):
        check_case_location(Path("/etc/case"), ["/"])
    check_case_location(tmp_path / "case", ["/"])  # anywhere else is fine


CONFIG_PATHS = ("etc/postgresql/15/main/postgresql.conf", "etc/mysql/my.cnf", "etc/httpd/conf/httpd.conf",
                "etc/nginx/nginx.conf", "etc/vsftpd.conf", "etc/ssh/sshd_config", "etc/passwd", "etc/shadow",
                "etc/group", "etc/crontab", "var/spool/cron/nobody", "etc/logrotate.conf", "etc/rsyslog.conf",
                "etc/systemd/journald.conf", "etc/chrony.conf", "etc/audit/audit.rules", "etc/php.ini",
                "var/log/dpkg.log", "fs/ls.txt", "fs/dump.sql", "etc/hostname")


@pytest.mark.parametrize("seed", range(4))
def test_hostile_configuration_never_stops_a_check(tmp_path, seed):
    """Binary junk, unbalanced quotes and sections, self-including files, endless lines: every family
    still runs (a check that raised would leave a note saying it stopped)."""
    import random

    rng = random.Random(seed)
    pieces = ['"', "'", "{", "}", "<", ">", "</Directory>", "<VirtualHost", "\\", "include ", "Include /etc/*",
              "include 'postgresql.conf'", "=", ":", "%", "%{", "\x00", "\xff", "é", "\t", "* * * * *", "[", "]",
              "CREATE TABLE (", "password text", "-a always", "rotate", "{\n", "\n"]
    files = {}
    for rel in CONFIG_PATHS:
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(50, 400)))
        files[rel] = text.encode("utf-8", "surrogateescape") + rng.randbytes(64) + b"x" * rng.choice((0, 200_000))
    ev = write_tree(tmp_path, files)
    found = run_audit([ev])
    assert not [n for h in found["hosts"] for n in h["notes"] if "stopped" in n]
