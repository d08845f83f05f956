"""File-system evidence that is not a log: checksum inventories, ``ls -l`` listings, bodyfiles.

Pure parsers: text lines in, entries and problems out (a problem is a line that could not be read,
with its number and the reason; it never raises). They are fed one line at a time so a listing of
a whole file system never has to be held in memory.

- Checksum inventories: ``sha256sum``/``md5sum``/``sha1sum``/… output (``<hex>  <path>``, binary
  mode ``<hex> *<path>``, ``\\``-escaped names, and the ``--tag`` form ``SHA256 (<path>) = <hex>``).
  The hash type follows from the length of the hex digest.
- ``ls -l`` listings in the default (``Dec 25 15:29`` / ``Dec 25  2016``), ``iso``, ``long-iso``
  and ``full-iso`` time styles, with ``ls -R`` directory headers (``/path:``) and the command lines
  an analyst or a shell transcript leaves above a block (``# ls -lac --time-style=full-iso DIR``):
  these say which directory the block lists and which time it shows (``-c`` ctime, ``-u`` atime,
  ``--time=birth`` crtime, else mtime).
- Bodyfiles (TSK 3.x ``fls -m``/``ils -m``): ``MD5|name|inode|mode|UID|GID|size|atime|mtime|ctime|crtime``.

Times without a UTC offset are read in the host's time zone; ``ls`` shows hours and minutes instead
of the year for times in the six months before it ran, so their year is inferred from an anchor (a
date the listing was not made before) and the entry says so.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Iterable

from logsalvage.parsing.years import Anchor, year_not_after

HASH_TYPES = {32: "md5", 40: "sha1", 56: "sha224", 64: "sha256", 96: "sha384", 128: "sha512"}
TIME_KINDS = ("mtime", "ctime", "atime", "crtime")
TYPE_NAMES = {"-": "file", "r": "file", "d": "dir", "l": "symlink", "c": "char", "b": "block", "p": "fifo",
              "s": "socket", "D": "door", "h": "shadow", "w": "whiteout", "v": "virtual", "n": "network",
              "C": "contiguous", "M": "migrated", "?": "unknown"}
MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                      "Nov", "Dec"), 1)}


@dataclass(frozen=True)
class Problem:
    line_no: int
    reason: str
    text: str


@dataclass(frozen=True)
class InventoryEntry:
    line_no: int
    hash_type: str
    hash: str  # lower-case hex
    path: str


@dataclass(frozen=True)
class FileTime:
    kind: str  # mtime | ctime | atime | crtime
    time: datetime | None  # timezone-aware; None when it cannot be decided
    raw: str
    basis: str  # how the zone, year and precision were decided
    precision: str  # "ns", "s", "min" or "day": what the listing shows


@dataclass(frozen=True)
class ListingEntry:
    line_no: int
    directory: str | None  # the directory listed (None: not known from the listing)
    name: str
    path: str
    type: str  # file, dir, symlink, char, block, fifo, socket, …
    mode: str  # ls-style permission string, e.g. "-rwxr-xr-x"
    links: int | None
    owner: str | None
    grp: str | None
    size: int | None  # None for devices (major, minor) or when not shown
    times: tuple[FileTime, ...]
    target: str | None = None  # symlink target

    @property
    def executable(self) -> bool:
        return is_executable(self.mode)


def is_executable(mode: str | None) -> bool:
    """Any execute bit (owner, group or other) in an ls-style permission string."""
    if not mode or len(mode) < 10:
        return False
    return mode[3] in "xs" or mode[6] in "xs" or mode[9] in "xt"


def hash_type_of(hexdigest: str) -> str | None:
    return HASH_TYPES.get(len(hexdigest))


# -- checksum inventories ------------------------------------------------------------------------
_SUM_LINE = re.compile(r"^(\\?)([0-9a-fA-F]{32,128}) ([ *])(.+)$")
_TAG_LINE = re.compile(r"^(\\?)(MD5|SHA1|SHA224|SHA256|SHA384|SHA512|BLAKE2b(?:-\d+)?) ?\((.+)\) ?= ?([0-9a-fA-F]+)$")


def _unescape_sum_name(name: str) -> str:
    """coreutils escapes '\\' and newline in names and marks such lines with a leading '\\'."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", "r": "\r"}.get(m.group(1), m.group(0)), name)


def parse_inventory_line(line_no: int, text: str) -> InventoryEntry | Problem | None:
    """One line of checksum-tool output; None for blank lines and comments."""
    text = text.rstrip("\r")
    if not text.strip() or text.lstrip().startswith("#"):
        return None
    m = _SUM_LINE.match(text)
    if m:
        escaped, digest, _mode, name = m.groups()
        kind = hash_type_of(digest)
        if kind is None:
            return Problem(line_no, f"checksum of {len(digest)} hex digits matches no known hash type", text)
        return InventoryEntry(line_no, kind, digest.lower(), _unescape_sum_name(name) if escaped else name)
    m = _TAG_LINE.match(text)
    if m:
        escaped, algo, name, digest = m.groups()
        kind = hash_type_of(digest)
        if kind is None or not kind.startswith(algo.lower()[:3]) and not algo.startswith("BLAKE2"):
            return Problem(line_no, f"{algo} tag with a digest of {len(digest)} hex digits", text)
        if algo.startswith("BLAKE2"):
            kind = "blake2b"
        return InventoryEntry(line_no, kind, digest.lower(), _unescape_sum_name(name) if escaped else name)
    if re.match(r"^\S+sum: ", text):
        return Problem(line_no, "checksum tool error message (a file was not hashed)", text)
    return Problem(line_no, "not a checksum line ('<hex>  <path>')", text)


def parse_inventory(text: str) -> tuple[list[InventoryEntry], list[Problem]]:
    entries, problems = [], []
    for no, line in enumerate(text.split("\n"), 1):
        out = parse_inventory_line(no, line)
        if isinstance(out, InventoryEntry):
            entries.append(out)
        elif isinstance(out, Problem):
            problems.append(out)
    return entries, problems


# -- ls -l ---------------------------------------------------------------------------------------
_PERM = r"(?P<perm>[-dlcbpsDnCM?][-rwxsStTlL]{9})(?P<attr>[.+@]?)"
_ENTRY = re.compile(r"^\s*(?:\d+\s+){0,2}" + _PERM + r"\s+(?P<links>\d+)\s+(?P<rest>.*)$")
_FULL_ISO = r"(?P<fi>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? [+-]\d{4})"
_LONG_ISO = r"(?P<li>\d{4}-\d\d-\d\d \d\d:\d\d)"
_ISO_RECENT = r"(?P<ir>\d\d-\d\d \d\d:\d\d)"
_ISO_OLD = r"(?P<io>\d{4}-\d\d-\d\d)"
_DEFAULT = r"(?P<df>(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) +(?:(?P<hm>\d{1,2}:\d\d)|(?P<yr>\d{4})))"
_REST = re.compile(r"^(?P<owner>\S+)\s+(?:(?P<grp>\S+)\s+)?(?P<size>\d+|\d+,\s*\d+)\s+"
                   rf"(?:{_FULL_ISO}|{_LONG_ISO}|{_ISO_RECENT}|{_ISO_OLD}|{_DEFAULT}) (?P<name>.+)$")
_TOTAL = re.compile(r"^total \d+(?:[.,]\d+)?[KMGTP]?$")
_PROMPT_LS = re.compile(r"^\s*(?:#|\$|\[[^\]]*\][#$]|\S+[#$%>])\s*ls(?:\s+(?P<args>.*))?$")
_LS_ERROR = re.compile(r"^(?:/\S*/)?ls: ")
_LONG_WITH_VALUE = {"--time-style", "--time", "--sort", "--format", "--block-size", "--hide", "--ignore",
                    "--quoting-style", "--indicator-style", "--color", "--width", "--tabsize"}
_SHORT_WITH_VALUE = set("ITw")


@dataclass(frozen=True)
class _Block:
    """What the command line above a block (or an ``ls -R`` header) says about its lines."""

    directory: str | None = None
    time_kind: str = "mtime"
    owner_shown: bool = True
    group_shown: bool = True
    classify: bool = False  # -F / -p: an indicator character follows names


def _norm_dir(path: str) -> str:
    p = posixpath.normpath(path)
    return "/" if p in ("/", "//") else p


def _block_from_command(args: str) -> _Block:
    # the analyst's note after the arguments: "(status change (ctime) times)"
    note = ""
    m = re.search(r"\s\(", args)
    if m:
        args, note = args[:m.start()], args[m.start():]
    try:
        tokens = shlex.split(args)
    except ValueError:
        tokens = args.split()
    shorts, longs, paths = set(), {}, []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--":
            paths.extend(tokens[i + 1:])
            break
        if tok.startswith("--"):
            key, eq, value = tok.partition("=")
            if not eq and key in _LONG_WITH_VALUE and i + 1 < len(tokens):
                value = tokens[i + 1]
                i += 1
            longs[key] = value
        elif tok.startswith("-") and len(tok) > 1:
            for j, ch in enumerate(tok[1:], 1):
                shorts.add(ch)
                if ch in _SHORT_WITH_VALUE:
                    if j == len(tok) - 1:
                        i += 1  # the value is the next token
                    break
        elif tok not in ("|", ">", "2>&1") and not tok.startswith((">", "|")):
            paths.append(tok)
        else:
            break  # a pipe or redirection ends the ls arguments
        i += 1
    kind = "mtime"
    time_opt = longs.get("--time", "")
    if time_opt in ("ctime", "status"):
        kind = "ctime"
    elif time_opt in ("atime", "access", "use"):
        kind = "atime"
    elif time_opt in ("birth", "creation"):
        kind = "crtime"
    elif time_opt in ("mtime", "modification"):
        kind = "mtime"
    elif "c" in shorts:
        kind = "ctime"
    elif "u" in shorts:
        kind = "atime"
    elif re.search(r"\bctime\b|status change", note, re.I):
        kind = "ctime"
    elif re.search(r"\batime\b|access time", note, re.I):
        kind = "atime"
    elif re.search(r"\bcrtime\b|\bbirth", note, re.I):
        kind = "crtime"
    # one directory operand: the block lists it; with -d, or several operands, names are the operands
    # themselves (ls prints "dir:" headers for the directories among several)
    directory = None
    if len(paths) == 1 and "d" not in shorts and "--directory" not in longs:
        directory = _norm_dir(paths[0])
    return _Block(directory=directory, time_kind=kind, owner_shown="g" not in shorts,
                  group_shown="o" not in shorts and "G" not in shorts and "--no-group" not in longs,
                  classify=bool({"F", "p"} & shorts) or "--classify" in longs or "--indicator-style" in longs)


class _ZoneReader:
    """Local wall-clock times of one host, with how they were decided."""

    def __init__(self, zone: tzinfo, zone_name: str, anchor: Anchor | None):
        self.zone = zone
        self.zone_name = zone_name
        self.anchor = anchor

    def local(self, y: int, mo: int, d: int, hh: int, mm: int, ss: int = 0, us: int = 0) -> tuple[datetime | None, str]:
        try:
            naive = datetime(y, mo, d, hh, mm, ss, us)
        except ValueError:
            return None, f"no such date {y:04d}-{mo:02d}-{d:02d}"
        t0, t1 = naive.replace(tzinfo=self.zone), naive.replace(tzinfo=self.zone, fold=1)
        basis = f"time zone {self.zone_name}"
        if t0.utcoffset() != t1.utcoffset():
            basis += "; DST transition: ambiguous or skipped local time, first offset used"
        return t0, basis

    def recent_year(self, mo: int, d: int) -> tuple[int | None, str]:
        if self.anchor is None:
            return None, "year not shown (recent file) and no date the listing was made by"
        y = year_not_after(mo, d, self.anchor)
        return y, (f"year inferred: ls shows the time instead of the year for the 6 months before it ran; "
                   f"not after {self.anchor.latest} ({self.anchor.basis})")


def _parse_time(m: re.Match, zr: _ZoneReader) -> tuple[datetime | None, str, str, str]:
    """(time, raw text, basis, precision) of the date part of an ls line."""
    if m.group("fi"):
        raw = m.group("fi")
        dt, frac_tz = raw[:19], raw[19:]
        frac, _, off = frac_tz.strip().rpartition(" ")
        frac = frac.lstrip(".")
        us = int((frac + "000000")[:6]) if frac else 0  # truncated, never rounded into the next second
        sign = -1 if off[0] == "-" else 1
        offset = timedelta(hours=int(off[1:3]), minutes=int(off[3:5])) * sign
        try:
            t = datetime.strptime(dt, "%Y-%m-%d %H:%M:%S").replace(microsecond=us, tzinfo=timezone(offset))
        except ValueError:
            return None, raw, f"no such time {dt}", "ns"
        return t, raw, "UTC offset in listing", "ns" if frac else "s"
    if m.group("li"):
        raw = m.group("li")
        try:
            naive = datetime.strptime(raw, "%Y-%m-%d %H:%M")
        except ValueError:
            return None, raw, f"no such time {raw}", "min"
        t, basis = zr.local(naive.year, naive.month, naive.day, naive.hour, naive.minute)
        return t, raw, basis + "; year in listing", "min"
    if m.group("ir"):
        raw = m.group("ir")
        mo, d, hh, mm = int(raw[0:2]), int(raw[3:5]), int(raw[6:8]), int(raw[9:11])
        y, ybasis = zr.recent_year(mo, d)
        if y is None:
            return None, raw, ybasis, "min"
        t, basis = zr.local(y, mo, d, hh, mm)
        return t, raw, f"{basis}; {ybasis}", "min"
    if m.group("io"):
        raw = m.group("io")
        y, mo, d = int(raw[0:4]), int(raw[5:7]), int(raw[8:10])
        t, basis = zr.local(y, mo, d, 0, 0)
        return t, raw, basis + "; date only (time of day not shown)", "day"
    raw = m.group("df")
    mo = MONTHS.get(m.group("mon"))
    d = int(m.group("day"))
    if mo is None:
        return None, raw, f"unknown month name {m.group('mon')!r}", "min"
    if m.group("yr"):
        t, basis = zr.local(int(m.group("yr")), mo, d, 0, 0)
        return t, raw, basis + "; year in listing, time of day not shown (older than 6 months)", "day"
    hh, mm = (int(x) for x in m.group("hm").split(":"))
    y, ybasis = zr.recent_year(mo, d)
    if y is None:
        return None, raw, ybasis, "min"
    t, basis = zr.local(y, mo, d, hh, mm)
    return t, raw, f"{basis}; {ybasis}", "min"


def _place(directory: str | None, name: str) -> tuple[str | None, str, str]:
    """(directory, name, path) of a name shown in the listing of ``directory``."""
    if name == ".":
        return directory, name, directory or "."
    if name == "..":
        return directory, name, posixpath.dirname(directory) if directory and directory != "/" else (directory or "..")
    if "/" in name.rstrip("/"):
        base = name if directory is None or name.startswith("/") else posixpath.join(directory, name)
        path = _norm_dir(base)
        return posixpath.dirname(path), posixpath.basename(path), path
    if directory is None:
        return None, name, name
    return directory, name, (directory.rstrip("/") + "/" + name) if directory != "/" else "/" + name


def _mode_type(perm: str) -> tuple[str, str]:
    return TYPE_NAMES.get(perm[0], "unknown"), perm


# -- bodyfile ------------------------------------------------------------------------------------
_BODY_MODE = re.compile(r"^(?:(?P<ntype>[-a-zA-Z?])/)?(?P<meta>[-a-zA-Z?][-rwxsStT]{9})$")


def _bodyfile_entry(line_no: int, text: str) -> ListingEntry | Problem:
    f = text.split("|")
    if len(f) < 11:
        return Problem(line_no, f"bodyfile line with {len(f)} fields (TSK 3.x bodyfiles have 11)", text)
    name = "|".join(f[1:len(f) - 9])  # a name may itself contain '|'
    _inode, mode_s, uid, gid, size_s = f[-9:-4]
    m = _BODY_MODE.match(mode_s)
    if m:
        # TSK: "<type from the directory entry>/<type from the inode><permissions>", 'r' = regular
        # file, '-' = unknown; other tools write a plain ls mode string
        ntype, meta = m.group("ntype"), m.group("meta")
        letter = meta[0] if meta[0] != "-" else (ntype if ntype not in (None, "-") else "-")
        kind = "file" if letter == "-" and ntype is None else TYPE_NAMES.get(letter, "unknown")
        if letter == "-" and ntype == "-":
            kind = "unknown"
        mode = ("-" if kind in ("file", "unknown") else letter) + meta[1:]
    elif re.fullmatch(r"[0-7]{3,7}", mode_s):
        mode = stat.filemode(int(mode_s, 8))
        kind = TYPE_NAMES.get(mode[0], "unknown")
    else:
        return Problem(line_no, f"bodyfile mode {mode_s!r} not understood", text)
    try:
        size = int(size_s) if size_s.strip() else None
    except ValueError:
        return Problem(line_no, f"bodyfile size {size_s!r} is not a number", text)
    times = []
    for kind_t, raw in zip(("atime", "mtime", "ctime", "crtime"), f[-4:]):
        raw = raw.strip()
        try:
            value = float(raw) if raw else 0.0
        except ValueError:
            return Problem(line_no, f"bodyfile {kind_t} {raw!r} is not a number of seconds", text)
        if value <= 0:
            continue  # 0: the file system does not record it (crtime on ext3) or the entry lost it
        try:
            t = datetime.fromtimestamp(value, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return Problem(line_no, f"bodyfile {kind_t} {raw!r} is out of range", text)
        times.append(FileTime(kind_t, t, raw, "seconds since the epoch in bodyfile (UTC)", "s" if "." not in raw else "ns"))
    if not times:
        times.append(FileTime("mtime", None, f[-3].strip(), "no time recorded (0) in bodyfile", "s"))
    target = None
    if kind == "symlink" and " -> " in name:
        name, target = name.split(" -> ", 1)
    path = name
    directory = posixpath.dirname(path) if "/" in path else None
    base = posixpath.basename(path.rstrip("/")) if path not in ("/",) else "/"
    return ListingEntry(line_no, directory, base, path, kind, mode, None, uid or None, gid or None, size,
                        tuple(times), target)


_BODYFILE_LINE = re.compile(r"^[0-9a-fA-F]*\|.*\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|[^|]*$")


# -- the listing parser --------------------------------------------------------------------------
class ListingParser:
    """Reads an ``ls -l`` listing or a bodyfile line by line (decided by its first entry line)."""

    def __init__(self, zone: tzinfo = timezone.utc, zone_name: str = "UTC (default)", anchor: Anchor | None = None):
        self.zr = _ZoneReader(zone, zone_name, anchor)
        self.block = _Block()
        self.base: str | None = None  # the directory named on the command line (for relative -R headers)
        self.style: str | None = None  # "ls" or "bodyfile"

    def feed(self, line_no: int, text: str) -> ListingEntry | Problem | None:
        text = text.rstrip("\r")
        if not text.strip():
            return None
        if self.style is None and not text.lstrip().startswith("#"):
            self.style = "bodyfile" if text.count("|") >= 10 and _BODYFILE_LINE.match(text) else "ls"
        if self.style == "bodyfile":
            if text.lstrip().startswith("#"):
                return None
            return _bodyfile_entry(line_no, text)
        return self._ls_line(line_no, text)

    def _ls_line(self, line_no: int, text: str) -> ListingEntry | Problem | None:
        m = _ENTRY.match(text)
        if m:
            return self._entry(line_no, text, m)
        if _TOTAL.match(text.strip()):
            return None
        cmd = _PROMPT_LS.match(text)
        if cmd:
            self.block = _block_from_command(cmd.group("args") or "")
            self.base = self.block.directory
            return None
        if text.lstrip().startswith("#"):
            return None  # an analyst's comment
        if _LS_ERROR.match(text):
            return Problem(line_no, "ls reported an error: the listing is incomplete here", text)
        if text.endswith(":") and ": " not in text and not text.startswith(" "):
            header = text[:-1]
            if self.base and not header.startswith("/"):
                header = posixpath.join(self.base, header)
            self.block = _Block(directory=_norm_dir(header), time_kind=self.block.time_kind,
                                owner_shown=self.block.owner_shown, group_shown=self.block.group_shown,
                                classify=self.block.classify)
            return None
        return Problem(line_no, "not an ls -l entry, directory header or ls command line", text)

    def _entry(self, line_no: int, text: str, m: re.Match) -> ListingEntry | Problem:
        perm = m.group("perm")
        r = _REST.match(m.group("rest"))
        if not r:
            return Problem(line_no, "ls -l entry with an unrecognised owner/size/time part "
                                    "(a time style or locale not supported?)", text)
        owner, grp = r.group("owner"), r.group("grp")
        if grp is None:  # one name column: -o (no group) or -g (no owner)
            if not self.block.owner_shown:
                owner, grp = None, owner
        size_s = r.group("size")
        size = int(size_s) if "," not in size_s else None
        t, raw, basis, precision = _parse_time(r, self.zr)
        name = r.group("name")
        kind, mode = _mode_type(perm)
        target = None
        if kind == "symlink" and " -> " in name:
            name, target = name.split(" -> ", 1)
        if self.block.classify and name[-1:] in "*/=>@|" and len(name) > 1:
            name = name[:-1]
        directory, base, path = _place(self.block.directory, name)
        return ListingEntry(line_no, directory, base, path, kind, mode, int(m.group("links")), owner, grp, size,
                            (FileTime(self.block.time_kind, t, raw, basis, precision),), target)


def parse_listing(text: str, *, zone: tzinfo = timezone.utc, zone_name: str = "UTC (default)",
                  anchor: Anchor | None = None) -> tuple[list[ListingEntry], list[Problem]]:
    return parse_listing_lines(enumerate(text.split("\n"), 1), zone=zone, zone_name=zone_name, anchor=anchor)


def parse_listing_lines(lines: Iterable[tuple[int, str]], *, zone: tzinfo = timezone.utc,
                        zone_name: str = "UTC (default)",
                        anchor: Anchor | None = None) -> tuple[list[ListingEntry], list[Problem]]:
    parser = ListingParser(zone, zone_name, anchor)
    entries, problems = [], []
    for no, line in lines:
        out = parser.feed(no, line)
        if isinstance(out, ListingEntry):
            entries.append(out)
        elif isinstance(out, Problem):
            problems.append(out)
    return entries, problems
