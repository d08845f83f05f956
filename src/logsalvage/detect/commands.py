"""Commands people ran on a host, whatever recorded them: shell histories (``shell.command``), auditd's
execve records (``audit.execve``), sudo (``auth.sudo``). Each is classified by what it does for an
intruder; one finding per host, user and class.

| class | what it looks like | severity |
|---|---|---|
| reverse_shell | ``/dev/tcp/``, ``nc -e``, ``bash -i >&``, ``mkfifo`` … , a socket from ``python -c``/``perl -e`` | high |
| miner | xmrig, minerd, ``stratum+tcp://`` | high |
| anti_forensics | ``history -c``, ``unset HISTFILE``, ``HISTSIZE=0``, ``shred``, removing or emptying /var/log files, ``touch -r`` | high |
| download_execute | a download piped to a shell, or saved to /tmp, /dev/shm, /var/tmp | medium |
| persistence | a crontab installed from a file or stdin, ``authorized_keys``, ``useradd``, ``systemctl enable``, rc.local | medium |
| credential_access | /etc/shadow, .pgpass, unshadow, john, hashcat | medium |
| data_staging | pg_dump, mysqldump, archives of web roots, home or SQL files | medium |
| recon | ``id``, ``whoami``, ``uname -a``, ``cat /etc/passwd``, ``find / -perm …`` | low |

Classification runs on RE2 (``parsing.dialect``); a command may fall in several classes.
"""

from __future__ import annotations

from logsalvage.continuity.timeline import one_copy_sql
from logsalvage.detect.context import Context
from logsalvage.detect.model import Finding
from logsalvage.parsing.dialect import compile_shared

CLASSES: tuple[tuple[str, str, str], ...] = (
    ("reverse_shell", "high",
     r"/dev/(?:tcp|udp)/|\bnc(?:at)?\b[^|;&]*\s-[a-z]*[ec]\s|\bsocat\b.*\bexec:|\bbash\s+-i\b.*>&|\bmkfifo\b"
     r"|\bpython[0-9.]*\s+-c\s.*\bsocket\b|\bperl\s+-e\s.*\bsocket\b|\bphp\s+-r\s.*\bfsockopen\b"),
    ("miner", "high", r"(?i)xmrig|minerd|cpuminer|stratum\+(?:tcp|ssl)://|cryptonight|nicehash|monero"),
    ("anti_forensics", "high",
     r"\bhistory\s+-c\b|\bunset\s+HISTFILE\b|HISTFILE=/dev/null|HISTSIZE=0\b|\bshred\b"
     r"|\brm\s+(?:-[a-zA-Z]+\s+)*\S*/var/log/|(?:^|[;&|]\s*)(?:cat\s+/dev/null\s*)?>\s*/var/log/|\btouch\s+-[a-z]*r\s"),
    ("download_execute", "medium",
     r"\b(?:wget|curl|fetch|lwp-download)\b[^|;&]*\|\s*(?:ba|da|z|k)?sh\b"
     r"|\b(?:wget|curl)\b[^|;&]*\s(?:-O\s*|-o\s*|-P\s*|--output-document=)?/(?:tmp|dev/shm|var/tmp)/"
     r"|\bcd\s+/(?:tmp|dev/shm|var/tmp)\b[^|]*[;&]+\s*(?:wget|curl)\b"),
    ("persistence", "medium",
     r"\|\s*crontab\s+(?:-u\s+\S+\s+)?-\s*$|\bcrontab\s+(?:-u\s+\S+\s+)?[^-\s]\S*\s*$|authorized_keys"
     r"|\b(?:useradd|adduser)\b|\busermod\b.*\s-[a-zA-Z]*[Gs]\s|\bsystemctl\s+enable\b|/etc/rc\.local|/etc/init\.d/"),
    ("credential_access", "medium", r"/etc/shadow\b|\.pgpass\b|\bunshadow\b|\bjohn\b|\bhashcat\b|\bmimipenguin\b"),
    ("data_staging", "medium",
     r"\bpg_dump(?:all)?\b|\bmysqldump\b|\b(?:tar|zip|7z|rar)\b[^|;&]*(?:/var/www|/home/|/srv/|\.sql\b)"),
    ("recon", "low",
     r"^\s*(?:id|whoami|w|uname\s+-a|hostname|last|ifconfig|ip\s+a(?:ddr)?|netstat\s+-\S+|ss\s+-\S+|ps\s+(?:aux|-ef))\s*$"
     r"|\bcat\s+/etc/(?:passwd|issue|\S*release)\b|\bfind\s+/\S*\s.*-perm\b"),
)
_PATTERNS = tuple((name, severity, compile_shared(rx)) for name, severity, rx in CLASSES)
_SOURCES = ("shell.command", "audit.execve", "auth.sudo")
SAMPLES = 20  # distinct commands kept in a finding's detail


def classify(command: str) -> list[tuple[str, str]]:
    """The (class, severity) pairs a command falls in."""
    return [(name, severity) for name, severity, rx in _PATTERNS if rx.search(command)]


def detect(ctx: Context) -> list:
    # a history without HISTTIMEFORMAT dates nothing: its commands ran before the file was last
    # written, and stand at that time, marked undated
    rows = ctx.query(f"""
        SELECT e.host, e.event_id, coalesce(e.ts_utc, s.mtime), e.event_type, coalesce(e.user_name, ''), e.command,
               e.ts_utc IS NULL
        FROM events e JOIN sources s USING (source_id)
        WHERE e.event_type IN ({", ".join(f"'{t}'" for t in _SOURCES)}) AND e.command IS NOT NULL
          AND (e.ts_utc IS NOT NULL OR s.mtime IS NOT NULL)
        {one_copy_sql('e')}
        ORDER BY e.host, 3, e.event_id""")
    groups: dict[tuple[str, str, str], list] = {}
    severity_of = {name: severity for name, severity, _ in CLASSES}
    for host, event_id, ts, etype, user, command, undated in rows:
        for name, _ in classify(command):
            groups.setdefault((host, user, name), []).append((ts, event_id, etype, command, undated))
    out = []
    for (host, user, name), hits in sorted(groups.items(), key=lambda kv: (kv[1][0][0], kv[0])):
        commands = list(dict.fromkeys(h[3] for h in hits))
        label = name.replace("_", " ")
        out.append(Finding(
            f"host.command.{name}", f"{label} command{'s' * (len(hits) > 1)} run by {user or 'an unknown user'}: "
            f"{commands[0][:120]}", severity_of[name], host, hits[0][0], hits[-1][0], len(hits), (),
            tuple(h[1] for h in hits),
            {"key": f"{user}/{name}", "user": user, "class": name, "commands": commands[:SAMPLES],
             "distinct_commands": len(commands), "recorded_by": sorted({h[2] for h in hits}),
             **({"undated": sum(h[4] for h in hits),
                 "time_basis": "undated commands stand at their history file's modification time: they ran "
                               "before it"} if any(h[4] for h in hits) else {})}))
    return out
