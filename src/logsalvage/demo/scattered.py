"""Scattered images: deleted logs laid out the way a busy file system leaves them, with a truth file.

``build_scattered_image(path, size)`` writes a raw image of ``size`` bytes whose free space holds
the blocks of deleted log files, and ``<path>.truth.parquet``: one row per planted line (format,
file, bytes, whether all its bytes are in the image, whether they are split over non-adjacent
blocks). What a carver has to cope with:

- one log or several interleaved: PostgreSQL through syslog (``db01``: a 30 s health check,
  sessions of one to four messages, long statements cut into ``[seq-chunk]`` lines), Apache
  access and error logs and vsftpd (``web01``), each rotated daily into files;
- every file cut into 4 KiB blocks laid out as extents of 1 to ``max_extent`` blocks at random
  places, never next to another used block, so a line crossing an extent boundary has its head
  at the end of one block and its tail at the start of another, far away;
- binary and text noise between them, a few planted blocks overwritten (zeros, binary, text);
- an optional second generation: an older, shorter copy of some files (logrotate's copies);
- an optional hole: the records of a stretch of days not in the image at all.

Deterministic: the same arguments give byte-identical files. The log density (``records_per_mib``
of image) is the same at every size, so images of several sizes measure how cost grows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from logsalvage.errors import UsageError

from . import actors, stamps
from .image import BLOCK, ImageWriter, binary_junk, locate
from .pgsyslog import chunks
from .stamps import jst, local

FORMATS = ("syslog", "apache-access", "apache-error", "vsftpd")
RECORDS_PER_MIB = 730            # the measured density: 750 k records in a 1 GiB image
SHARE = {"syslog": 0.70, "apache-access": 0.22, "apache-error": 0.04, "vsftpd": 0.04}
START = jst(2017, 2, 24, 19, 59, 26)
ROTATION = 86400                # logrotate daily: many files, many file ends
HEARTBEAT = 30
TRUTH_SCHEMA = pa.schema([("format_id", pa.string()), ("file", pa.string()), ("line", pa.int64()),
                          ("data", pa.binary()), ("present", pa.bool_()), ("split", pa.bool_()),
                          ("image_offset", pa.int64())])
_WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at which "
          "but have an they you were her she there been one all we their has would when if so no "
          "config value error option default server path user group allow deny include").split()


@dataclass
class LogFile:
    name: str
    format_id: str
    lines: list[bytes] = field(default_factory=list)
    times: list[int] = field(default_factory=list)


_QUERIES = (
    "SELECT r.reservation_id, r.voyage_id, r.seat_class, r.fare FROM reservations r WHERE r.customer_id = {n}",
    "UPDATE voyages SET seats_left = seats_left - 1 WHERE voyage_id = {n}",
    "SELECT customer_id, name, name_kana, phone FROM customers WHERE name_kana LIKE 'スズキ%' ORDER BY name_kana",
    "INSERT INTO audit_log (customer_id, action, at) VALUES ({n}, 'login', now())",
)


def _pg_session(t: int, pid: int, rng: random.Random) -> list[tuple[int, bytes]]:
    """One client session of the reservation application: its syslog lines."""
    head = f"{stamps.syslog(t)} db01 postgres[{pid}]: "
    port = rng.randint(1024, 65535)
    prefix = f"DATABASE=ferry,USER=webapp,CLIENT=192.168.10.11({port}),"
    messages = [f"{prefix}LOG:  connection authorized: user=webapp database=ferry".encode()]
    for _ in range(rng.randint(0, 2)):
        q = rng.choice(_QUERIES).format(n=rng.randint(1, 99999))
        if rng.random() < 0.15:      # a long statement: PostgreSQL cuts it into chunks
            ids = ", ".join(str(rng.randint(100000, 999999)) for _ in range(rng.randint(100, 260)))
            q = f"SELECT r.reservation_id FROM reservations r WHERE r.voyage_id IN ({ids})"
        messages.append(f"{prefix}LOG:  duration: {rng.randint(3000, 9000)}.{rng.randint(0, 999):03d} ms  "
                        f"statement: {q}".encode())
    messages.append(f"{prefix}LOG:  disconnection: session time: 0:00:0{rng.randint(1, 9)}.{rng.randint(100, 999)} "
                    f"user=webapp database=ferry host=192.168.10.11 port={port}".encode())
    out = []
    for seq, msg in enumerate(messages, start=1):
        for c, text in enumerate(chunks(msg), start=1):
            out.append((t, head.encode() + f"[{seq}-{c}] ".encode() + text))
    return out


def _pg_lines(n: int, rng: random.Random) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    t, pid = START, 11000
    next_hb = t
    while len(out) < n:
        t += rng.randint(0, 24)
        while next_hb <= t:
            pid += 1
            out.append((next_hb, f"{stamps.syslog(next_hb)} db01 postgres[{pid}]: [3-1] DATABASE=[unknown],"
                                 f"USER=[unknown],CLIENT=127.0.0.1({rng.randint(32768, 60999)}),LOG:  "
                                 f"incomplete startup packet".encode()))
            next_hb += HEARTBEAT
        pid += 1
        if rng.random() < 0.9:
            out.extend(_pg_session(t, pid, rng))
        else:
            out.append((t, f"{stamps.syslog(t)} db01 systemd: Started Session {pid} of user root.".encode()))
    return out[:n]


def _access_lines(n: int, rng: random.Random) -> list[tuple[int, bytes]]:
    out = []
    t = START
    pages = ("", "search.php", "reserve.php?voyage=", "css/style.css", "img/logo.png", "timetable.php?route=")
    while len(out) < n:
        t += rng.randint(0, 90)
        ip = actors.jp_client(rng)
        page = rng.choice(pages)
        if page.endswith("="):
            page += str(rng.randint(1, 999))
        status = rng.choice((200, 200, 200, 200, 304, 404))
        out.append((t, f'{ip} - - [{stamps.apache_access(t)}] "GET /{page} HTTP/1.1" {status} {rng.randint(200, 30000)} '
                       f'"-" "{rng.choice(actors.BROWSERS)}"'.encode()))
    return out


def _error_lines(n: int, rng: random.Random) -> list[tuple[int, bytes]]:
    out = []
    t = START
    while len(out) < n:
        t += rng.randint(0, 900)
        ip = actors.jp_client(rng)
        what = rng.choice(("File does not exist: /var/www/html/favicon.ico",
                           "File does not exist: /var/www/html/wp-login.php",
                           "script '/var/www/html/xmlrpc.php' not found or unable to stat",
                           "client denied by server configuration: /var/www/html/.htaccess"))
        out.append((t, f"[{stamps.apache_error(t)}] [error] [client {ip}] {what}".encode()))
    return out


def _vsftpd_lines(n: int, rng: random.Random) -> list[tuple[int, bytes]]:
    out = []
    t = START
    pid = 3000
    while len(out) < n:
        t += rng.randint(60, 2400)
        pid += 1
        ip = rng.choice((actors.MAINTENANCE, *actors.A_ADDRESSES))
        out.append((t, f'{stamps.ctime(t)} [pid {pid}] CONNECT: Client "{ip}"'.encode()))
        t += rng.randint(0, 3)
        out.append((t, f'{stamps.ctime(t)} [pid {pid + 1}] [{actors.FTP_USER}] OK LOGIN: Client "{ip}"'.encode()))
        for _ in range(rng.randint(0, 3)):
            t += rng.randint(0, 20)
            size = rng.randint(1000, 400000)
            out.append((t, f'{stamps.ctime(t)} [pid {pid + 2}] [{actors.FTP_USER}] OK UPLOAD: Client "{ip}", '
                           f'"/htdocs/{rng.choice(("index.php", "config.php", "img/banner.jpg"))}", {size} bytes, '
                           f'{rng.uniform(50, 900):.2f}Kbyte/sec'.encode()))
        pid += 2
    return out[:n]


_MAKERS = {"syslog": ("messages", _pg_lines), "apache-access": ("access_log", _access_lines),
           "apache-error": ("error_log", _error_lines), "vsftpd": ("vsftpd.log", _vsftpd_lines)}


def _weekly(format_id: str, lines: list[tuple[int, bytes]]) -> list[LogFile]:
    """Cut a log into the daily files logrotate leaves (named by their rotation day)."""
    base, _ = _MAKERS[format_id]
    files: list[LogFile] = []
    cur = None
    for t, line in lines:
        week = (t - START) // ROTATION
        if cur is None or week != cur[0]:
            lt = local(START + (week + 1) * ROTATION)
            cur = (week, LogFile(f"{base}-{lt.tm_year:04d}{lt.tm_mon:02d}{lt.tm_mday:02d}", format_id))
            files.append(cur[1])
        cur[1].lines.append(line)
        cur[1].times.append(t)
    return files


def _noise(kind: str, rng: random.Random) -> bytes:
    """A block of another deleted file: zeros, binary (with NUL runs) or prose-like text."""
    if kind == "zeros":
        return bytes(BLOCK)
    if kind == "binary":
        return binary_junk(rng)
    words = []
    size = 0
    while size < BLOCK:
        w = rng.choice(_WORDS)
        words.append(w + ("\n" if rng.random() < 0.08 else " "))
        size += len(words[-1])
    return "".join(words).encode()[:BLOCK]


def build_scattered_image(path: Path, size: int, *, formats: tuple[str, ...] = FORMATS, seed: int = 1,
                          records_per_mib: int = RECORDS_PER_MIB, max_extent: int = 4,
                          second_generation: bool = True, overwritten_per_10k: float = 5.0,
                          noise_per_100: float = 3.0, hole_days: float = 0.0) -> dict:
    """Write the image and its truth file; return a summary (records, present, split, files)."""
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise UsageError(f"unknown format(s) for a scattered image: {', '.join(sorted(unknown)) or 'none given'}; "
                         f"choose from {', '.join(FORMATS)}")
    if size < (4 << 20):
        raise UsageError("a scattered image needs at least 4 MiB")
    path = Path(path)
    rng = random.Random(f"scattered:{seed}")
    total = max(100, int(size / (1 << 20) * records_per_mib))
    share = sum(SHARE[f] for f in formats)
    img = ImageWriter(path, size, random.Random(f"scattered:{seed}:image"), min_mb_hint=size >> 20)
    truth = pq.ParquetWriter(str(path) + ".truth.parquet", TRUTH_SCHEMA, compression="zstd")
    summary = {"image_bytes": size, "records": 0, "present": 0, "split": 0, "files": 0, "copies": 0,
               "formats": list(formats), "hole": None}
    hole = None
    try:
        for format_id in formats:
            n = max(20, int(total * SHARE[format_id] / share))
            lines = _MAKERS[format_id][1](n, random.Random(f"scattered:{seed}:{format_id}"))
            if hole_days and hole is None:
                t0, t1 = lines[0][0], lines[-1][0]
                hs = t0 + (t1 - t0) // 4
                hole = (hs, hs + int(hole_days * 86400))
                summary["hole"] = [hole[0], hole[1]]
            for k, f in enumerate(_weekly(format_id, lines)):
                summary["files"] += 1
                _plant(img, f, rng, hole, summary, truth, max_extent, overwritten_per_10k,
                       copy=second_generation and k % 3 == 1)
        planted = int(img.used.count(1))
        img.scatter_junk(int(planted * noise_per_100 / 100), _noise)
    finally:
        truth.close()
        img.close()
    return summary


def _plant(img: ImageWriter, f: LogFile, rng: random.Random, hole, summary: dict, truth, max_extent: int,
           overwritten_per_10k: float, *, copy: bool) -> None:
    data = b"".join(line + b"\n" for line in f.lines)
    starts, ends = [], []
    pos = 0
    for line in f.lines:
        starts.append(pos)
        ends.append(pos + len(line))
        pos += len(line) + 1
    keep = [(0, len(data))]
    if hole is not None:
        inside = [i for i, t in enumerate(f.times) if hole[0] <= t < hole[1]]
        if inside:
            keep = [(a, z) for a, z in ((0, starts[inside[0]]), (ends[inside[-1]] + 1, len(data))) if z > a]
    nblocks = -(-len(data) // BLOCK)
    quota = int(nblocks * overwritten_per_10k / 10_000 + rng.random())
    segs = img.place(f.name, data, keep, quota, _noise, max_extent=max_extent) if keep else []
    off, split = locate(segs, starts, ends)
    if copy and len(f.lines) > 20:
        cut = starts[rng.randrange(len(f.lines) // 5, len(f.lines) * 4 // 5)]
        c_off, c_split = locate(img.place_copy(f.name, data, cut, max_extent=max_extent), starts, ends)
        summary["copies"] += 1
        for i, o in enumerate(c_off):
            if off[i] < 0 and o >= 0:
                off[i], split[i] = o, c_split[i]
    present = [o >= 0 for o in off]
    summary["records"] += len(f.lines)
    summary["present"] += sum(present)
    summary["split"] += sum(s and p for s, p in zip(split, present))
    truth.write_table(pa.Table.from_pydict({
        "format_id": [f.format_id] * len(f.lines), "file": [f.name] * len(f.lines),
        "line": list(range(1, len(f.lines) + 1)), "data": f.lines, "present": present,
        "split": [s and p for s, p in zip(split, present)], "image_offset": off}, schema=TRUTH_SCHEMA))
