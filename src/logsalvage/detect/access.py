"""Access through accounts: password guessing, a guessing burst followed by a successful login from
the same address (initial access), and interactive logins from networks the host had not seen.

What counts, whatever log says it:

* **failed logins**: sshd (``Failed …``, ``Invalid user``, ``not allowed``) from auth.log/secure or
  the journal, btmp records, PAM ``authentication failure`` of other services, FTP (vsftpd, xferlog's
  companions), MySQL/MariaDB (``Access denied``), PostgreSQL (``password authentication failed``,
  ``no pg_hba.conf entry``), pgBouncer;
* **successful logins**: sshd ``Accepted …``, wtmp sessions with a remote address, FTP logins,
  MySQL/MariaDB connects that were not refused.

One attempt leaves several records (sshd's ``Invalid user`` and ``Failed password`` two seconds
apart, PAM's ``authentication failure``, a btmp record): an sshd attempt is its ``Failed …`` line
(``Invalid user`` and ``not allowed`` count only for a connection — an sshd process — without one;
PAM's line of sshd never), and the records left are counted once per service, second and account. A burst is one address's
run of at least ``BURST_MIN`` attempts with no pause over ``BURST_GAP``. FTP bursts on their own
are reported by ``detect.ftp`` (``ftp.login_guessing``); every burst, FTP's too, is followed up here.

A new network is a /24 (IPv4) or /48 (IPv6) that none of the host's interactive logins (ssh, wtmp)
came from in the first ``BASELINE`` of its login history, and that holds no maintenance address
(``detect.maintenance_addresses``). Without more than ``BASELINE`` of history there is no baseline,
and no login is called new.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from logsalvage.continuity.timeline import one_copy_sql
from logsalvage.detect.context import Context
from logsalvage.detect.model import Finding, Milestone
from logsalvage.detect.web import network_of

BURST_GAP = timedelta(minutes=10)
BURST_MIN = 5
FOLLOW = timedelta(hours=24)  # a success this long after a burst's last attempt still follows it
BASELINE = timedelta(days=7)

_FAILURES = {
    "auth.ssh.failed": "ssh", "auth.ssh.invalid_user": "ssh", "auth.ssh.not_allowed": "ssh",
    "auth.failure": None,  # the service is the program's
    "login.failed": None,  # btmp: ssh when the terminal says so
    "ftp.login": "ftp", "mysql.auth_failed": "mysql", "mysql.connect": "mysql",
    "postgresql.auth_failed": "postgresql", "postgresql.hba_reject": "postgresql",
    "pgbouncer.auth_failed": "pgbouncer",
}
# (pgBouncer's 'login attempt' is written before the password is checked, and nothing after a good
# one: it is no success)
_SUCCESSES = {"auth.ssh.accepted": "ssh", "login.session": None, "ftp.login": "ftp", "mysql.connect": "mysql"}
_INTERACTIVE = ("auth.ssh.accepted", "login.session")
_PROGRAM_SERVICE = {"sshd": "ssh", "sshd-session": "ssh", "vsftpd": "ftp", "proftpd": "ftp", "pure-ftpd": "ftp"}


@dataclass(frozen=True)
class Attempt:
    event_id: str
    time: datetime
    address: str
    account: str
    service: str
    success: bool
    event_type: str
    pid: int | None = None


def _quoted(names) -> str:
    return ", ".join(f"'{n}'" for n in sorted(names))


def _attempts(ctx: Context, host: str) -> list[Attempt]:
    """The host's login attempts from network addresses, each record once (its copies in live,
    backup and salvaged sources are one), in time order."""
    rows = ctx.query(f"""
        SELECT event_id, ts_utc, source_ip, coalesce(user_name, ''), event_type, coalesce(outcome, ''),
               coalesce(program, ''), coalesce(json_extract_string(extra, '$.terminal'), ''), process_pid
        FROM events
        WHERE host = ? AND ts_utc IS NOT NULL AND source_ip IS NOT NULL
          AND event_type IN ({_quoted(set(_FAILURES) | set(_SUCCESSES))})
        {one_copy_sql()}
        ORDER BY ts_utc, event_id""", [host])
    out = []
    # (pid, address) of sshd connections with a 'Failed …' line (pids are reused: the address too)
    failed_pids = {(r[8], r[2]) for r in rows if r[4] == "auth.ssh.failed" and r[8] is not None}
    for event_id, ts, raw_address, account, etype, outcome, program, terminal, pid in rows:
        address = _address(raw_address)
        if address is None:
            continue
        if etype == "auth.failure" and program.split("(")[0] in ("sshd", "sshd-session"):
            continue  # PAM's line beside sshd's own 'Failed password'
        if etype in ("auth.ssh.invalid_user", "auth.ssh.not_allowed") and (pid, raw_address) in failed_pids:
            continue  # the connection's 'Failed …' lines are its attempts
        if etype in ("ftp.login", "mysql.connect"):
            if outcome not in ("success", "failure"):
                continue
            success = outcome == "success"
        else:
            success = etype in _SUCCESSES
        service = (_SUCCESSES if success else _FAILURES)[etype]
        if service is None:
            if etype == "auth.failure":
                service = _PROGRAM_SERVICE.get(program.split("(")[0], program.split("(")[0] or "pam")
            else:  # wtmp/btmp: 'ssh:notty', 'pts/0' (ssh sessions), 'tty1' (console)
                service = "ssh" if terminal.startswith(("ssh", "pts/")) else "login"
        out.append(Attempt(event_id, ts, address, account, service, success, etype, pid))
    return out


def _address(value: str) -> str | None:
    text = value.strip().strip("[]")
    if text.startswith("::ffff:"):
        text = text[7:]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global


def _known(ctx: Context, address: str) -> bool:
    ip = ipaddress.ip_address(address)
    for entry in ctx.settings.maintenance_addresses:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def detect(ctx: Context) -> list:
    hosts = [r[0] for r in ctx.query(f"""
        SELECT DISTINCT host FROM events
        WHERE event_type IN ({_quoted(set(_FAILURES) | set(_SUCCESSES))}) ORDER BY 1""")]
    out: list = []
    for host in hosts:
        attempts = _attempts(ctx, host)
        out += _guessing(ctx, host, attempts)
        out += _new_networks(ctx, host, [a for a in attempts if a.success and a.event_type in _INTERACTIVE])
    return out


def _bursts(failures: list[Attempt]) -> list[list[Attempt]]:
    """Runs of one address's attempts (one per service, second and account) with no long pause."""
    by_address: dict[str, list[Attempt]] = {}
    seen = set()
    for a in failures:
        key = (a.address, a.service, a.time, a.account)
        if key not in seen:
            seen.add(key)
            by_address.setdefault(a.address, []).append(a)
    bursts = []
    for runs in by_address.values():
        run = [runs[0]]
        for a in runs[1:]:
            if a.time - run[-1].time <= BURST_GAP:
                run.append(a)
                continue
            if len(run) >= BURST_MIN:
                bursts.append(run)
            run = [a]
        if len(run) >= BURST_MIN:
            bursts.append(run)
    return sorted(bursts, key=lambda b: (b[0].time, b[0].address))


def _guessing(ctx: Context, host: str, attempts: list[Attempt]) -> list:
    out: list = []
    successes: dict[str, list[Attempt]] = {}
    for a in attempts:
        if a.success:
            successes.setdefault(a.address, []).append(a)
    for burst in _bursts([a for a in attempts if not a.success]):
        address = burst[0].address
        services = sorted({a.service for a in burst})
        accounts = sorted({a.account for a in burst if a.account})
        key = f"{address}@{burst[0].time.isoformat()}"
        if services != ["ftp"]:  # FTP-only bursts are detect.ftp's
            out.append(Finding(
                "access.password_guessing",
                f"{len(burst)} failed {'/'.join(services)} logins from {address}", "medium", host,
                burst[0].time, burst[-1].time, len(burst), (address,), tuple(a.event_id for a in burst),
                {"key": key, "services": services, "accounts": accounts[:50], "accounts_tried": len(accounts)}))
        if _known(ctx, address):
            continue
        follow = [s for s in successes.get(address, ())
                  if burst[0].time <= s.time <= burst[-1].time + FOLLOW]
        if not follow:
            continue
        first = follow[0]
        detail = {"source": address, "account": first.account, "service": first.service,
                  "attempts": len(burst), "first_failure": burst[0].time.isoformat(),
                  "accounts_tried": len(accounts)}
        out.append(Finding(
            "access.guessing_then_login",
            f"{first.service} login as {first.account or '?'} from {address} after {len(burst)} failed attempts",
            "critical", host, burst[0].time, first.time, len(burst) + len(follow), (address,),
            tuple(a.event_id for a in burst) + tuple(s.event_id for s in follow),
            {"key": key, **detail, "logins": len(follow)}))
        out.append(Milestone("initial_access", first.time, host, detail, (first.event_id,)))
    return out


def _new_networks(ctx: Context, host: str, logins: list[Attempt]) -> list:
    if not logins or logins[-1].time - logins[0].time <= BASELINE:
        return []
    end = logins[0].time + BASELINE
    known = {network_of(a.address) for a in logins if a.time <= end}
    groups: dict[tuple[str, str], list[Attempt]] = {}
    for a in logins:
        if a.time <= end or _known(ctx, a.address):
            continue
        net = network_of(a.address)
        if net in known and (net, a.account) not in groups:
            continue
        groups.setdefault((net, a.account), []).append(a)
        known.add(net)
    out = []
    for (net, account), hits in sorted(groups.items(), key=lambda kv: kv[1][0].time):
        addresses = sorted({a.address for a in hits})
        public = any(_public(a) for a in addresses)
        out.append(Finding(
            "access.login_new_network",
            f"{hits[0].service} login as {account or '?'} from {net}, a network not seen in the first "
            f"{BASELINE.days} days of logins", "high" if public else "medium", host, hits[0].time, hits[-1].time,
            len(hits), tuple(addresses), tuple(a.event_id for a in hits),
            {"key": f"{net}/{account}", "network": net, "account": account,
             "baseline_until": end.isoformat()}))
    return out
