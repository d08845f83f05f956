"""Every cron job of a host: the system crontab and ``/etc/cron.d`` (a user column), and the users'
crontabs in the spool (``/var/spool/cron/USER`` on Red Hat, ``/var/spool/cron/crontabs/USER`` on
Debian), with how often each runs."""

from __future__ import annotations

from dataclasses import dataclass

from logsalvage.audit.conf import split_words
from logsalvage.audit.host import Host
from logsalvage.audit.tree import ConfigFile

SYSTEM_CRONTABS = ("etc/crontab", "etc/cron.d/*")
SPOOLS = ("var/spool/cron", "var/spool/cron/crontabs", "var/spool/cron/tabs")  # (tabs: SUSE)
SPECIAL = {"@reboot": None, "@yearly": 365 * 86400, "@annually": 365 * 86400, "@monthly": 28 * 86400,
           "@weekly": 7 * 86400, "@daily": 86400, "@midnight": 86400, "@hourly": 3600}


@dataclass(frozen=True)
class CronJob:
    file: ConfigFile
    line: int
    user: str | None  # who runs it
    schedule: tuple[str, ...]  # the five time fields, or one @keyword
    command: str
    spool: bool  # a user's own crontab (installed with the crontab command)

    @property
    def period_s(self) -> int | None:
        """Seconds between runs when the job runs every N minutes or hours; None otherwise."""
        if len(self.schedule) == 1:
            return SPECIAL.get(self.schedule[0])
        minute, hour, dom, month, dow = self.schedule
        if (dom, month, dow) != ("*", "*", "*"):
            return None
        m = _step(minute, 60)
        h = _step(hour, 24)
        if m is not None and hour == "*":
            return m * 60
        if minute.isdigit() and h is not None:
            return h * 3600
        return None

    @property
    def delay_s(self) -> int:
        """A leading ``sleep N;`` (how jobs run more often than once a minute)."""
        words = self.command.replace(";", " ; ").replace("&&", " && ").split()
        if len(words) >= 2 and words[0] in ("sleep", "/bin/sleep", "/usr/bin/sleep") and words[1].isdigit():
            return int(words[1])
        return 0


def _step(field: str, size: int) -> int | None:
    """Step of a cron field that repeats evenly (``*``, ``*/N``, ``0-59/N``, an even list), else None."""
    if field == "*":
        return 1
    if field.startswith("*/") and field[2:].isdigit() and int(field[2:]) > 0:
        return int(field[2:])
    base, _, step = field.partition("/")
    if step.isdigit() and int(step) > 0 and base in (f"0-{size - 1}",):
        return int(step)
    values = field.split(",")
    if len(values) > 1 and all(v.isdigit() for v in values):
        nums = sorted(int(v) for v in values)
        gaps = {b - a for a, b in zip(nums, nums[1:])} | {nums[0] + size - nums[-1]}
        if len(gaps) == 1:
            return gaps.pop()
    return None


def parse_crontab(cf: ConfigFile, *, user: str | None, spool: bool) -> list[CronJob]:
    """Jobs of one crontab; ``user`` None: the system format, whose sixth field is the user."""
    jobs = []
    for no, raw in cf.numbered():
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        words = text.split()
        if not text.startswith("@") and "=" in words[0]:
            continue  # VAR=value
        if words[0].startswith("@"):
            n_time = 1
        elif len(words) >= 5:
            n_time = 5
        else:
            continue
        rest = words[n_time:]
        who = user
        if user is None:
            if not rest:
                continue
            who, rest = rest[0], rest[1:]
        if not rest:
            continue
        # the command as written (its own spacing), after the fields before it
        command = _after_words(text, n_time + (0 if user is not None else 1))
        jobs.append(CronJob(cf, no, who, tuple(words[:n_time]), command, spool))
    return jobs


def _after_words(text: str, n: int) -> str:
    rest = text
    for _ in range(n):
        rest = rest.lstrip()
        cut = len(rest)
        for i, c in enumerate(rest):
            if c.isspace():
                cut = i
                break
        rest = rest[cut:]
    return rest.strip()


def _jobs(host: Host) -> list[CronJob]:
    tree = host.tree
    out: list[CronJob] = []
    for pattern in SYSTEM_CRONTABS:
        for rel in tree.files(pattern):
            name = rel.rsplit("/", 1)[-1]
            if name.startswith(".") or name.endswith(("~", ".rpmsave", ".rpmnew", ".dpkg-old", ".dpkg-dist")):
                continue
            cf = tree.read(rel)
            if cf:
                out.extend(parse_crontab(cf, user=None, spool=False))
    for spool in SPOOLS:
        for name in tree.listdir(spool):
            rel = f"{spool}/{name}"
            if name.startswith(".") or not tree.is_file(rel):
                continue
            cf = tree.read(rel)
            if cf:
                out.extend(parse_crontab(cf, user=name, spool=True))
    return out


def cron_jobs(host: Host) -> list[CronJob]:
    return host.fact("cron_jobs", _jobs)


def spool_crontabs(host: Host) -> list[tuple[str, str]]:
    """(user, path) of every crontab in the spool, jobs or not."""
    out = []
    for spool in SPOOLS:
        for name in host.tree.listdir(spool):
            rel = f"{spool}/{name}"
            if not name.startswith(".") and host.tree.is_file(rel):
                out.append((name, rel))
    return out


def command_words(job: CronJob) -> list[str]:
    return split_words(job.command)
