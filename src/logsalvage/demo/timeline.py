"""The incident timeline and the generation plan derived from the arguments.

Everything here is computed without writing anything, so the size of a run (``full=True``
included) can be inspected cheaply: ``make_plan(full=True).expected_db_records``.

Fixed facts (from the incident report) are module constants; what depends on ``days`` and the
seed (the DB period, the hole, rotation times, the volume of web traffic) lives in ``Plan``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from logsalvage.errors import UsageError

from .stamps import DAY, jst, local, local_midnight, ymd

# --- fixed incident facts (JST) -------------------------------------------------------------
FULL_START = jst(2017, 2, 24, 19, 59, 26)   # first db01 record at full scale
PERIOD_END = jst(2018, 1, 6, 14, 54, 19)    # last db01 record (live file "messages")
ACQUIRED = jst(2018, 1, 6, 15, 0, 0)
FULL_HOLE = (jst(2017, 4, 10, 20, 21, 20), jst(2017, 4, 26, 18, 5, 44))
BACKUP_START = jst(2017, 9, 17, 3, 19, 21)  # first record of messages-20170924
BACKUP_END = jst(2017, 11, 10, 23, 9, 50)   # forced rotation (logrotate -f) before the backup
LIVE_START = jst(2017, 12, 3, 3, 45, 20)    # first record of messages-20171210
BACKUP_TIMES = {"var-log-messages-20171015.tar.gz": jst(2017, 10, 15, 4, 40, 12),
                "var-log-messages-20171110.tar.gz": jst(2017, 11, 10, 23, 14, 5)}
LIVE_ROTATIONS_KEPT = 4

WEB_LOG_START = jst(2017, 1, 15)            # the day of the oldest kept httpd rotation
FIRST_PROBE = jst(2017, 1, 20, 5, 39, 1)
SQLI_START = jst(2017, 6, 20, 14, 12, 7)
FIRST_SHELL = jst(2017, 7, 15, 8, 58, 21)
BLOCK_C_START = jst(2017, 8, 30, 21, 14, 52)
CRON_LIST = (jst(2017, 11, 12, 21, 3, 44), jst(2017, 11, 13, 2, 51, 9))
CRON_DELETE = jst(2017, 11, 28, 16, 40, 31)
CRON_REPLACE_1 = jst(2017, 12, 12, 7, 23, 6)
FIND_START = jst(2017, 12, 25, 15, 27, 5)
WGET_VTGZ = (jst(2017, 12, 25, 15, 28, 56), jst(2017, 12, 25, 15, 29, 0))
UNPACKED = jst(2017, 12, 25, 15, 29, 1)
CRON_REPLACE_2 = jst(2017, 12, 25, 15, 29, 7)
SITE_SLOW = jst(2018, 1, 5, 17, 0, 0)
REBOOT = (jst(2018, 1, 5, 17, 26, 12), jst(2018, 1, 5, 17, 28, 3))  # shutdown begins, back up
CRONTAB_REMOVED = jst(2018, 1, 5, 18, 37, 45)
SERVER_STOP = jst(2018, 1, 5, 19, 50, 0)
EXPOSURE = (FIRST_SHELL, SERVER_STOP)
HIDDEN_DIR = "/usr/local/src/libssh2-0.18/nw/test/.dev"
CRON_KEPT_ROTATIONS = 8                     # web01 keeps 8 weekly cron files (see truth)

FULL_DAYS = (PERIOD_END - FULL_START) / DAY
MAX_DAYS = int((PERIOD_END - FULL_START) // DAY)
DEFAULT_DAYS = 120
HOLE_MIN = 3 * DAY
HOLE_MARGIN = 12 * 3600                     # salvage-only data kept on each side of the hole
MIN_FIRST_SALVAGE = HOLE_MIN + 2 * HOLE_MARGIN
MIN_DAYS = math.ceil((PERIOD_END - LIVE_START + MIN_FIRST_SALVAGE) / DAY)

HEARTBEAT_PERIOD = 30
# db01 density (records per day, every scale): app statements over 3 s and the system lines.
APP_RECORDS_PER_DAY = 4380
SYSTEM_RECORDS_PER_DAY = 14 * 24
# bytes per db01 record including chunk lines, measured on generated data (for image sizing)
BYTES_PER_DB_RECORD = 240

FULL_COUNTS = {
    "probes": 18900, "webshell": 1409, "downloads": 140, "curl_errors": 12, "perl_errors": 8,
    "normal_requests_per_day": 2400, "ftp_bruteforce_bursts": 60,
}
MIN_COUNTS = {
    "probes": 60, "webshell": 40, "downloads": 8, "curl_errors": 2, "perl_errors": 2,
    "normal_requests_per_day": 120, "ftp_bruteforce_bursts": 4,
}

FULL_IMAGE_MB = 4096
BLOCK = 4096


@dataclass(frozen=True)
class DbFile:
    """One weekly messages file of db01 as it existed on the log partition."""

    name: str          # messages-YYYYMMDD, or "messages" for the current file
    begin: int         # the rotation that started it (or the period start)
    rotation: int | None  # time of its last line ("rsyslogd was HUPed"); None: current file
    kind: str          # "live", "backup" or "salvage" (only in the image)
    archive: str | None = None


@dataclass(frozen=True)
class Plan:
    seed: int
    full: bool
    days: float
    volume: float                      # web01 volume factor (1.0 at full scale)
    period: tuple[int, int]
    hole: tuple[int, int]
    anchors: tuple[int, ...]           # heartbeat times forced exactly (record boundaries)
    db_files: tuple[DbFile, ...]
    archives: tuple[tuple[str, int, tuple[str, ...]], ...]   # (name, backup time, members)
    web_rotations: tuple[int, ...]     # Sunday rotations of web01 logs (httpd, cron, secure)
    counts: dict = field(default_factory=dict)
    image_bytes: int = 0
    image_min_mb: int = 0
    expected_db_records: int = 0
    expected_db_bytes: int = 0

    @property
    def scale(self) -> str:
        return "full" if self.full else "default"

    def heartbeats(self) -> "HeartbeatSchedule":
        return HeartbeatSchedule(self.period[0], self.period[1], self.anchors, self.seed)


class HeartbeatSchedule:
    """The health check's times: every 30 s from the period start with 0-1 s jitter.

    A few times are forced exactly (the period ends, the hole's edges, the first record of a
    preserved file); each replaces the nominal check nearest to it, so consecutive checks stay
    between 14 and 46 s apart and never look like a hole.
    """

    def __init__(self, start: int, end: int, anchors, seed: int):
        self.start = start
        self.last_index = round((end - start) / HEARTBEAT_PERIOD)
        self._mix = (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF
        self.forced: dict[int, int] = {}
        for a in list(anchors) + [start, end]:
            k = round((a - start) / HEARTBEAT_PERIOD)
            if k in self.forced and self.forced[k] != a:
                raise ValueError(f"two forced heartbeats share slot {k}")
            self.forced[k] = a

    def time(self, k: int) -> int:
        forced = self.forced.get(k)
        if forced is not None:
            return forced
        x = (k * 0xD6E8FEB86659FD93 + self._mix) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
        return self.start + HEARTBEAT_PERIOD * k + ((x >> 17) & 1)

    def first_after(self, t: int) -> int:
        """Index of the first check strictly after t."""
        k = max(0, (t - self.start) // HEARTBEAT_PERIOD - 1)
        while self.time(k) <= t:
            k += 1
        return k


def _sundays(first_day: int, last_day: int):
    """Local midnights of the Sundays in [first_day, last_day]."""
    d = local_midnight(first_day)
    while local(d).tm_wday != 6:
        d += DAY
    while d <= last_day:
        yield d
        d += 7 * DAY


def _scaled(name: str, volume: float) -> int:
    return max(MIN_COUNTS[name], round(FULL_COUNTS[name] * volume))


def make_plan(*, days: int | None = None, image_mb: int | None = None, seed: int = 2017,
              full: bool = False) -> Plan:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UsageError(f"seed must be an integer, not {seed!r}")
    if full and days is not None:
        raise UsageError("days cannot be combined with full=True (full is the whole period, "
                         f"{FULL_DAYS:.1f} days)")
    if full:
        start = FULL_START
        days_f = FULL_DAYS
    else:
        if days is None:
            days = DEFAULT_DAYS
        if not isinstance(days, int) or isinstance(days, bool):
            raise UsageError(f"days must be an integer, not {days!r}")
        if days < MIN_DAYS:
            raise UsageError(f"days={days} is too small: at least {MIN_DAYS} days are needed to hold "
                             "the live files (from 2017-12-03) and a salvage-only period with a "
                             f"{HOLE_MIN // DAY}-day hole before them")
        if days > MAX_DAYS:
            raise UsageError(f"days={days} is too large: db01's logs begin 2017-02-24 19:59:26, at most "
                             f"{MAX_DAYS} days fit (use full=True for the whole period)")
        start = PERIOD_END - days * DAY
        days_f = float(days)
    end = PERIOD_END
    volume = 1.0 if full else days_f / FULL_DAYS
    rng = random.Random(f"{seed}:plan")

    # db01 rotations: Sundays during cron.daily (anacron, 03:05-04:15), one forced rotation.
    # Rotations whose next file must start at a known instant are placed just before it.
    file_starts = {LIVE_START, BACKUP_START}
    anchors = set()
    rot_targets = []  # (approximate time, exact first record of next file or None, forced time)
    for sunday in _sundays(start, end):
        approx = sunday + 3 * 3600 + rng.randint(5 * 60, 75 * 60)
        exact = next((s for s in file_starts if local_midnight(s) == sunday), None)
        if exact is not None:
            approx = exact - 10
        if approx - 120 <= start or approx >= end - 120:
            continue
        rot_targets.append((approx, exact, None))
    if start < BACKUP_END - 2 * DAY:
        rot_targets.append((BACKUP_END, None, BACKUP_END))
    rot_targets.sort()
    for _, exact, forced in rot_targets:
        if exact is not None:
            anchors.add(exact)
        if forced is not None:
            anchors.add(forced + rng.randint(6, 16))   # first record of the next file

    # the hole: at full scale the incident's; otherwise scaled into the first salvage-only period
    hole = FULL_HOLE if full else None
    if hole is not None:
        anchors.update(hole)
    hb_pre = HeartbeatSchedule(start, end, sorted(anchors), seed)

    rotations = []
    for approx, exact, forced in rot_targets:
        if forced is not None:
            r = forced
        elif exact is not None:
            k = hb_pre.first_after(exact - 1)
            r = exact - rng.randint(3, min(18, exact - hb_pre.time(k - 1) - 1))
        else:
            k = hb_pre.first_after(approx)
            gap = hb_pre.time(k) - hb_pre.time(k - 1)
            r = hb_pre.time(k) - rng.randint(2, max(2, min(18, gap - 1)))
        rotations.append(r)

    # files, and which of them survive as live files or in the backup archives
    begins = [start] + rotations
    names = [f"messages-{ymd(r)}" for r in rotations] + ["messages"]
    rots = rotations + [None]
    live_names = set(names[-(LIVE_ROTATIONS_KEPT + 1):])
    archive_of = {}
    for arch_name, arch_time in BACKUP_TIMES.items():
        kept = [n for n, b, r in zip(names, begins, rots)
                if r is not None and r <= arch_time and b >= BACKUP_START - 60][-4:]
        for n, b in zip(names, begins):
            if n in kept and b >= start + MIN_FIRST_SALVAGE:
                archive_of[n] = arch_name
    db_files = []
    for n, b, r in zip(names, begins, rots):
        if n in live_names and b >= LIVE_START - 60:
            kind = "live"
        elif n in archive_of:
            kind = "backup"
        else:
            kind = "salvage"
        db_files.append(DbFile(n, b, r, kind, archive_of.get(n)))
    archives = []
    for arch_name, arch_time in BACKUP_TIMES.items():
        members = tuple(f.name for f in db_files if f.archive == arch_name)
        if members:
            archives.append((arch_name, arch_time, members))

    if hole is None:
        first_preserved = next((f.begin for f in db_files if f.kind != "salvage"), end)
        span = first_preserved - start
        if span < MIN_FIRST_SALVAGE:  # pragma: no cover - excluded by MIN_DAYS
            raise UsageError(f"days={days}: no room for the hole; at least {MIN_DAYS} days needed")
        length = int(FULL_HOLE[1] - FULL_HOLE[0]) * days_f / FULL_DAYS
        length = int(min(max(length, HOLE_MIN), span - 2 * HOLE_MARGIN))
        # the incident's hole sat 22 % into the first salvage-only period; keep that shape
        room = span - length - 2 * HOLE_MARGIN
        h0 = start + HOLE_MARGIN + int(room * 0.22)
        # keep the hole's edges away from rotations so every seam stays under 20 s
        while any(abs(edge - r) < 300 for r in rotations for edge in (h0, h0 + length)):
            h0 += 600
        hole = (h0, h0 + length)
        anchors.update(hole)
    hb = HeartbeatSchedule(start, end, sorted(anchors), seed)
    # rotations were placed with the schedule before the hole anchors existed; they must still
    # fall between two checks less than 20 s before the next one
    for f in db_files:
        if f.rotation is not None:
            k = hb.first_after(f.rotation)
            assert hb.time(k) - f.rotation <= 20, (f.name, hb.time(k) - f.rotation)

    counts = {name: _scaled(name, volume) for name in FULL_COUNTS}

    n_hb = hb.last_index + 1
    expected_records = int(n_hb + days_f * (APP_RECORDS_PER_DAY + SYSTEM_RECORDS_PER_DAY)
                           + len(rotations))
    expected_bytes = expected_records * BYTES_PER_DB_RECORD
    min_mb = image_min_mb(expected_bytes)
    if image_mb is None:
        image_mb = FULL_IMAGE_MB if full else max(64, 64 * math.ceil(min_mb * 1.25 / 64))
    if not isinstance(image_mb, int) or isinstance(image_mb, bool):
        raise UsageError(f"image_mb must be an integer, not {image_mb!r}")
    if image_mb < min_mb:
        raise UsageError(f"image_mb={image_mb} is too small: the image must hold about "
                         f"{expected_bytes / 2**20:.0f} MiB of planted log blocks; at least "
                         f"{min_mb} MB is needed for this scale")

    web_rng = random.Random(f"{seed}:web-rotations")
    web_rotations = tuple(s + 3 * 3600 + web_rng.randint(10 * 60, 80 * 60)
                          for s in _sundays(WEB_LOG_START, jst(2017, 12, 31)))

    return Plan(seed=seed, full=full, days=days_f, volume=volume, period=(start, end), hole=hole,
                anchors=tuple(sorted(anchors)), db_files=tuple(db_files), archives=tuple(archives),
                web_rotations=web_rotations, counts=counts, image_bytes=image_mb * 2**20,
                image_min_mb=min_mb, expected_db_records=expected_records,
                expected_db_bytes=expected_bytes)


def image_min_mb(planted_bytes: int) -> int:
    """Smallest image (MiB) that holds the planted blocks with room to scatter them.

    Planted data plus old duplicate copies (~10 %), a guard block between extents and some
    slack (~10 %), plus the XFS headers and the internal log. Near this size extents that find
    no free run are split further, as a nearly full file system does.
    """
    return max(16, math.ceil(planted_bytes * 1.2 / 2**20) + 16)
