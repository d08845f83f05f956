"""Package changes in the exposure window, from dpkg.log and yum.log as the package managers write
them: an intruder's tools installed or a watcher removed is high; routine upgrades are not."""

from __future__ import annotations

from logsalvage.config import parse_config
from logsalvage.detect.run import run_detection
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore

DPKG = """\
2017-12-20 03:00:00 startup archives unpack
2017-12-20 03:00:01 upgrade libssl1.1:amd64 1.1.0f-3 1.1.0f-3+deb9u1
2017-12-20 03:00:02 status installed libssl1.1:amd64 1.1.0f-3+deb9u1
2017-12-25 15:28:56 install nmap:amd64 <none> 7.40-1
2017-12-25 15:28:57 status installed nmap:amd64 7.40-1
2017-12-25 15:30:00 remove auditd:amd64 1:2.6.7-2 <none>
2018-01-10 10:00:00 install gcc:amd64 <none> 4:6.3.0-4
"""
YUM = """\
Dec 20 03:10:00 Updated: openssl-libs-1:1.0.2k-8.el7.x86_64
Dec 26 09:00:00 Installed: 2:nmap-ncat-6.40-7.el7.x86_64
"""


def _case(tmp_path, window: dict) -> dict:
    ev = tmp_path / "ev"
    (ev / "db01/var/log").mkdir(parents=True)
    (ev / "web01/var/log").mkdir(parents=True)
    (ev / "db01/var/log/dpkg.log").write_text(DPKG)
    (ev / "web01/var/log/yum.log").write_text(YUM)
    config = parse_config({"acquired": "2018-01-20T00:00:00+00:00",
                           "hosts": {"db01": {"timezone": "UTC"}, "web01": {"timezone": "UTC"}}, **window}, "t")
    ingest([ev], tmp_path / "case", config=config)
    with CaseStore(tmp_path / "case") as store:
        result = run_detection(store, config)
    return {f["host"]: f for f in result["findings"] if f["rule"] == "host.package_changes"}


def test_changes_in_the_window_only(tmp_path):
    found = _case(tmp_path, {"exposure": {"start": "2017-12-25T00:00:00+00:00"},
                             "containment": "2018-01-05T00:00:00+00:00"})
    db, web = found["db01"], found["web01"]
    assert db["severity"] == "high"
    assert db["detail"]["installed"] == ["nmap"]  # gcc came after containment, the upgrade before the window
    assert db["detail"]["removed"] == ["auditd"] and db["detail"]["watchers_removed"] == ["auditd"]
    assert db["detail"]["upgraded"] == []
    assert web["detail"]["intruder_tools"] == ["nmap-ncat"] and web["severity"] == "high"


def test_upgrades_only_are_information(tmp_path):
    found = _case(tmp_path, {"exposure": {"start": "2017-12-19T00:00:00+00:00"},
                             "containment": "2017-12-21T00:00:00+00:00"})
    assert {h: (f["severity"], f["detail"]["upgraded"]) for h, f in found.items()} == {
        "db01": ("info", ["libssl1.1"]), "web01": ("info", ["openssl-libs"])}
