"""Files of the system that are not logs — configuration, crontabs, scripts, package lists, read by
the readiness audit — are recorded as system files, hashed, never as "unknown input": that name is
kept for what may be a log the investigation cannot read."""

from __future__ import annotations

from logsalvage.config import parse_config
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore

FILES = {
    "web01/etc/passwd": "root:x:0:0:root:/root:/bin/bash\nnobody:x:99:99:Nobody:/:/sbin/nologin\n",
    "web01/etc/ssh/sshd_config": "PermitRootLogin yes\nPasswordAuthentication yes\n",
    "web01/var/spool/cron/nobody": "*/5 * * * * /tmp/.x/upd >/dev/null 2>&1\n",
    "web01/usr/local/bin/check": "#!/bin/sh\nexec 3<>/dev/tcp/127.0.0.1/5432\n",
    "web01/fs/rpm-qa-last.txt": "gd-2.0.35-26.el7.x86_64                       Thu 03 Mar 2016 01:01:11 PM JST\n"
                                "libxml2-2.9.1-6.el7_2.2.x86_64               Thu 03 Mar 2016 12:59:31 PM JST\n",
    "web01/home/alice/notes.txt": "call the hosting company about the backup\n",
}


def test_system_files_are_not_unknown_input(tmp_path):
    for rel, text in FILES.items():
        (tmp_path / "ev" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ev" / rel).write_text(text)
    result = ingest([tmp_path / "ev"], tmp_path / "case", config=parse_config({}, "t"))
    assert result.inputs == {"system": 5, "unknown": 1}
    with CaseStore(tmp_path / "case", read_only=True) as store:
        rows = dict(store.query("SELECT path, detail FROM inputs WHERE sha256 IS NOT NULL"))
        unknown = [r[0] for r in store.query("SELECT path FROM issues WHERE reason LIKE 'unknown input%'")]
    assert rows["web01/etc/passwd"] == "system configuration (read by logsalvage audit)"
    assert rows["web01/var/spool/cron/nobody"] == "crontab (read by logsalvage audit)"
    assert rows["web01/usr/local/bin/check"] == "script (program text, not a log)"
    assert rows["web01/fs/rpm-qa-last.txt"] == "package list (read by logsalvage audit)"
    assert unknown == ["web01/home/alice/notes.txt"]
