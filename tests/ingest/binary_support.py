"""What the binary-log tests share: the real programs (utmpdump, last, lastb, lastlog,
journalctl), run in UTC, and the events of a case as dicts."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb

from prerequisites import unavailable

DATA = Path(__file__).resolve().parents[1] / "data"
UTC_ENV = {**os.environ, "TZ": "UTC", "LC_ALL": "C.UTF-8"}
# a row of last/lastb: user, tty ('system boot', '(to lvl 5)'), address, login time, the rest
_LAST_ROW = re.compile(r"^(\S+)\s+(system boot|system down|\(to lvl \S+\)|\S+)\s+(\S+)\s+(\d{4}-\d\d-\d\dT\S+)\s*(.*)$")


def tool(name: str) -> str:
    path = shutil.which(name) or (name if os.path.exists(name) else None)
    if path is None:
        unavailable(f"{name} is not installed", ".ci/install-log-tools.sh")
    return path


def undump(text: Path, out: Path) -> Path:
    """A binary utmp file written by ``utmpdump -r`` (glibc's own struct utmp) from its text form."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(text, "rb") as src, open(out, "wb") as dst:
        subprocess.run([tool("utmpdump"), "-r"], stdin=src, stdout=dst, stderr=subprocess.DEVNULL, check=True)
    return out


def utmpdump(path: Path) -> list[str]:
    out = subprocess.run([tool("utmpdump"), str(path)], capture_output=True, env=UTC_ENV, check=True).stdout
    return out.decode().splitlines()


def last_rows(program: str, path: Path, *extra: str) -> list[tuple[str, ...]]:
    """What ``last``/``lastb -f path --time-format iso -i -w`` prints, row by row."""
    out = subprocess.run([tool(program), "-f", str(path), "--time-format", "iso", "-i", "-w", *extra],
                         capture_output=True, env=UTC_ENV, check=True).stdout.decode()
    return [m.groups() for m in map(_LAST_ROW.match, out.splitlines()) if m]


def case_events(case: Path, format_id: str) -> list[dict]:
    """The events of one format, in source and offset order, ``extra`` decoded into the dict."""
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    try:
        cur = con.execute("""SELECT e.*, s.path AS source_path FROM events e JOIN sources s USING (source_id)
                             WHERE e.format_id = ? ORDER BY s.path, e."offset" """, [format_id])
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()
    for r in rows:
        r.update(json.loads(r.pop("extra") or "{}"))
    return rows


def case_rows(case: Path, sql: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def iso(ts) -> str:
    return ts.isoformat(timespec="seconds")


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` with its size, mtime and content digest (holes fed as zeros are
    not read: a sparse file's digest is of its stat and data blocks)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        if p.is_file() and not p.is_symlink():
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                pos = 0
                while pos < st.st_size:
                    try:
                        pos = os.lseek(fh.fileno(), pos, os.SEEK_DATA)
                        end = os.lseek(fh.fileno(), pos, os.SEEK_HOLE)
                    except OSError:
                        break
                    h.update(pos.to_bytes(8, "little") + os.pread(fh.fileno(), end - pos, pos))
                    pos = end
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, st.st_mode, h.hexdigest())
        else:
            out[str(p.relative_to(root))] = (st.st_mode, st.st_mtime_ns)
    return out
