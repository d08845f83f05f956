"""The hostile corpus: evidence an intruder could have written or shaped, one file per trick.

``python -m tests.hostile.corpus DIR`` writes it; the tests build it in a temporary directory.
Every trick of issue 13 that lives in the evidence itself is here: lines that make backtracking
regex engines take minutes, CR-only line ends, NUL and invalid UTF-8, an over-long line, terminal
escapes and spreadsheet formulas in fields and names, archives whose members share a name or hide
behind links, a decompression bomb (kept small: its ratio trips the limit, not its size), a tar of
many members, symlinks out of the tree and a FIFO. ``MANIFEST`` says what each file is for.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import tarfile
import warnings
import zipfile
from pathlib import Path

MANIFEST: dict[str, str] = {}


def _write(root: Path, rel: str, data: bytes, why: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    MANIFEST[rel] = why


def _syslog(i: int, msg: str, host: str = "web01", prog: str = "sshd") -> str:
    return f"Jul 15 08:{i // 60 % 60:02d}:{i % 60:02d} {host} {prog}[{100 + i}]: {msg}"


def _access(i: int, request: str = "GET /index.php HTTP/1.1", ua: str = "Mozilla/5.0") -> str:
    return f'203.0.113.{i % 250} - - [15/Jul/2017:08:{i // 60 % 60:02d}:{i % 60:02d} +0900] "{request}" 200 512 "-" "{ua}"'


def build(root: Path) -> dict[str, str]:
    """Write the corpus under ``root`` (an evidence tree: HOST/var/log/...); returns the manifest."""
    MANIFEST.clear()
    web, db = "web01/var/log", "db01/var/log"
    # -- lines that cost a backtracking engine minutes ----------------------------------------------
    _write(root, f"{web}/httpd/access_log", "\n".join([
        _access(1),
        '1.2.3.4 - - [15/Jul/2017:08:58:21 +0900] "GET / HTTP/1.1" ' + " " * 2000 + "5502",
        "1.2.3.4 -" + " " * 60000,
        _access(2, ua="=HYPERLINK(\"http://x\")\r=1+1"),
        _access(3, request="GET /\x1b]0;pwned\x07 HTTP/1.1"),
        _access(4),
    ]).encode() + b"\n", "backtracking bait, formulas, terminal escapes")
    _write(root, f"{web}/secure", "\n".join([
        _syslog(1, "pam_unix(sshd:auth): authentication failure;" + " " * 2000 + "x"),
        _syslog(2, "pam_unix(su:auth): authentication failure;" + " rhost=" * 5000),
        _syslog(3, "Accepted password for root from 198.51.100.7 port 22 ssh2"),
    ]).encode() + b"\n", "backtracking bait in syslog")
    # -- line ends and bytes -------------------------------------------------------------------------
    _write(root, f"{web}/messages-cr", "\r".join(_syslog(i, f"session opened {i}", prog="su")
                                                 for i in range(1000)).encode() + b"\r",
           "CR-only line ends: 1000 records")
    _write(root, f"{web}/cron", b"\n".join([
        _syslog(1, "(root) CMD (run-parts /etc/cron.hourly)", prog="CROND").encode(),
        _syslog(2, "(root) CMD (/tmp/.x/\x00miner)", prog="CROND").encode(),
        _syslog(3, "(root) CMD (", prog="CROND").encode() + b"\xff\xfe bad utf8)",
        b"\x00" * 300,
        _syslog(4, "(root) CMD (" + "A" * (1 << 20) + ")", prog="CROND").encode(),
        _syslog(5, "(root) CMD (date)", prog="CROND").encode(),
    ]) + b"\n", "NUL, invalid UTF-8, binary run, a line over 1 MiB")
    # -- archives -------------------------------------------------------------------------------------
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        with zf.open("var/log/secure", "w") as fh:
            fh.write("".join(_syslog(i, f"Accepted publickey for admin from 192.0.2.{i} port 22") + "\n"
                             for i in range(100)).encode())
        with warnings.catch_warnings():  # zipfile warns about the duplicate name: that is the point
            warnings.simplefilter("ignore")
            with zf.open("var/log/secure", "w") as fh:
                fh.write((_syslog(0, "decoy") + "\n").encode())
    _write(root, "web01/backup/logs.zip", buf.getvalue(), "two members named var/log/secure: 100 lines, then 1")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = "".join(_syslog(i, f"session opened for user root by (uid=0) {i}", prog="su") + "\n"
                       for i in range(50)).encode()
        info = tarfile.TarInfo("var/log/messages")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("var/log/messages")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tf.addfile(link)
    _write(root, "web01/backup/shadowed.tar", buf.getvalue(), "a regular member, then a same-named symlink")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for i in range(1000):
            data = (_syslog(i, f"member {i}", prog="logger") + "\n").encode()
            info = tarfile.TarInfo(f"var/log/many/m{i:04d}.log")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    _write(root, "web01/backup/many.tar.gz", buf.getvalue(), "1000 members")
    bomb = io.BytesIO()
    with gzip.GzipFile(fileobj=bomb, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write((_syslog(1, "before the bomb") + "\n").encode())
        chunk = b"\0" * (1 << 20)
        for _ in range(256):  # 256 MiB of zeros in about 256 KB: a ratio of 1000:1
            gz.write(chunk)
    _write(root, f"{db}/messages-20170716.gz", bomb.getvalue(), "decompression bomb (ratio ~1000:1)")
    # -- names and links ------------------------------------------------------------------------------
    _write(root, f"{web}/httpd/\x1b]0;pwned\x07access_log", (_access(9) + "\n").encode(),
           "terminal escape in a file name")
    links = {f"{web}/link-etc": "/etc", f"{web}/link-shadow": "/etc/shadow", f"{web}/link-zero": "/dev/zero",
             f"{web}/loop-a": "loop-b", f"{web}/loop-b": "loop-a"}
    for rel, target in links.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
        MANIFEST[rel] = f"symlink to {target}"
    fifo = root / web / "fifo"
    os.mkfifo(fifo)
    MANIFEST[f"{web}/fifo"] = "a FIFO: opening it would block"
    return dict(MANIFEST)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    for rel, why in build(out).items():
        print(f"{rel!r}: {why}")
