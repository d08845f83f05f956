"""Access through accounts, from sshd's log as OpenSSH and PAM write it: password guessing, the
login that follows a guessing burst from the same address (initial access, which opens the exposure
window), and logins from networks the host had not seen."""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta, timezone

import pytest

from logsalvage.config import parse_config
from logsalvage.detect import access
from logsalvage.detect.context import Context, settings_from
from logsalvage.detect.model import Finding, Milestone
from logsalvage.detect.run import run_detection
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore

START = datetime(2017, 12, 1, 9, 0, 0, tzinfo=timezone.utc)


def _stamp(t: datetime) -> str:
    return f"{t:%b} {t.day:2d} {t:%H:%M:%S}"


def _secure() -> str:
    lines: list[tuple[datetime, str]] = []
    pid = [4000]

    def add(t, msg, new_connection=True):
        pid[0] += new_connection
        lines.append((t, f"{_stamp(t)} web01 sshd[{pid[0]}]: {msg}"))

    # the administrator, every day for 12 days, from the office network
    for day in range(12):
        add(START + timedelta(days=day), "Accepted publickey for admin from 10.0.0.5 port 50022 ssh2")
    add(START + timedelta(days=10, hours=2), "Accepted publickey for admin from 10.0.0.9 port 50023 ssh2")

    def guess(t, address, n, users=("root", "oracle")):
        for i in range(n):
            user = users[i % len(users)]
            at = t + timedelta(seconds=20 * i)
            if user == "root":
                add(at, f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
                        f"rhost={address}  user=root")
                add(at + timedelta(seconds=2), new_connection=False,
                    msg=f"Failed password for root from {address} port {41000 + i} ssh2")
            else:
                add(at, f"Invalid user {user} from {address} port {41000 + i}")
                add(at + timedelta(seconds=2), new_connection=False,
                    msg=f"Failed password for invalid user {user} from {address} port {41000 + i} ssh2")

    # a burst of 6 attempts, then the guessed password works five minutes later
    guess(START + timedelta(days=3, hours=4), "185.220.101.4", 6)
    add(START + timedelta(days=3, hours=4, minutes=7), "Accepted password for oracle from 185.220.101.4 port 41999 ssh2")
    # too few attempts to be a burst, and a success from there (a user who mistyped)
    guess(START + timedelta(days=4), "198.51.100.3", 3)
    add(START + timedelta(days=4, minutes=2), "Accepted password for oracle from 198.51.100.3 port 42000 ssh2")
    # a burst without success
    guess(START + timedelta(days=5), "91.200.49.29", 7, users=("test", "ubuntu"))
    # the maintenance address guessing its own password: known good
    guess(START + timedelta(days=6), "153.156.83.40", 5, users=("root",))
    add(START + timedelta(days=6, minutes=3), "Accepted password for root from 153.156.83.40 port 42001 ssh2")
    # after the first week: a login from a network the host had not seen
    add(START + timedelta(days=9, hours=3), "Accepted password for admin from 46.166.148.58 port 43000 ssh2")
    add(START + timedelta(days=9, hours=5), "Accepted password for admin from 46.166.148.77 port 43001 ssh2")
    return "".join(text + "\n" for _, text in sorted(lines, key=lambda x: x[0]))


CONFIG = parse_config({"acquired": "2017-12-20T00:00:00+00:00", "hosts": {"web01": {"timezone": "UTC"}},
                       "detect": {"maintenance_addresses": ["153.156.83.40"]}}, "test")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("access")
    ev = root / "ev/web01/var/log"
    ev.mkdir(parents=True)
    text = _secure()
    (ev / "secure").write_text(text)
    # the same records kept again in a compressed rotation: one record, however many copies
    (ev / "secure-20171213.gz").write_bytes(gzip.compress(text.encode(), mtime=1513123200))
    ingest([root / "ev"], root / "case", config=CONFIG)
    return root / "case"


@pytest.fixture(scope="module")
def items(case):
    with CaseStore(case) as store:
        return access.detect(Context(store, settings_from(CONFIG)))


def _findings(items, rule):
    return [f for f in items if isinstance(f, Finding) and f.rule == rule]


def test_guessing_then_login_is_initial_access(items):
    [hit] = _findings(items, "access.guessing_then_login")
    assert hit.sources == ("185.220.101.4",) and hit.severity == "critical"
    assert hit.detail["attempts"] == 6 and hit.detail["account"] == "oracle" and hit.detail["service"] == "ssh"
    assert hit.last_seen == START + timedelta(days=3, hours=4, minutes=7)
    [m] = [m for m in items if isinstance(m, Milestone)]
    assert m.kind == "initial_access" and m.time == hit.last_seen and m.detail["source"] == "185.220.101.4"


def test_bursts_count_each_attempt_once(items):
    """sshd's 'Invalid user' and 'Failed password' (two seconds apart, one sshd process), PAM's line,
    and the rotated copy are one attempt."""
    bursts = {f.sources[0]: f for f in _findings(items, "access.password_guessing")}
    assert set(bursts) == {"185.220.101.4", "91.200.49.29", "153.156.83.40"}  # not 198.51.100.3 (3 attempts)
    assert bursts["185.220.101.4"].count == 6 and bursts["91.200.49.29"].count == 7
    assert bursts["91.200.49.29"].detail["accounts"] == ["test", "ubuntu"]


def test_logins_from_new_networks(items):
    new = _findings(items, "access.login_new_network")
    # the office's /24 (10.0.0.9 too) is the baseline; 185.220.101.4's login fell in the first week
    assert [(f.detail["network"], f.detail["account"], f.count) for f in new] == [("46.166.148.0/24", "admin", 2)]
    assert new[0].severity == "high" and new[0].sources == ("46.166.148.58", "46.166.148.77")


def test_no_baseline_no_new_network(tmp_path):
    ev = tmp_path / "ev/web01/var/log"
    ev.mkdir(parents=True)
    (ev / "secure").write_text(
        "Dec  1 09:00:00 web01 sshd[1]: Accepted publickey for admin from 10.0.0.5 port 1 ssh2\n"
        "Dec  3 09:00:00 web01 sshd[2]: Accepted password for admin from 46.166.148.58 port 2 ssh2\n")
    ingest([tmp_path / "ev"], tmp_path / "case", config=CONFIG)
    with CaseStore(tmp_path / "case") as store:
        assert not _findings(access.detect(Context(store, settings_from(CONFIG))), "access.login_new_network")


def test_initial_access_opens_the_exposure_window(case):
    with CaseStore(case) as store:
        result = run_detection(store, CONFIG)
    kinds = [m["kind"] for m in result["milestones"]]
    assert "initial_access" in kinds
    assert result["exposure_window"]["start"].startswith("2017-12-04T13:07:00")
