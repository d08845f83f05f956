"""web01's legitimate document root (/var/www/html): the files, their sizes and contents.

Contents are deterministic filler; only their hashes (inventory.sha256) and sizes (static
responses in the access log, maintenance FTP transfers) appear in the evidence.
"""

from __future__ import annotations

import hashlib

DOCROOT = "/var/www/html"
FILES = (
    ("index.php", 9211), ("search.php", 14877), ("reserve.php", 18233), ("confirm.php", 11042),
    ("config.inc.php", 1310), ("lib/db.php", 4416), ("lib/session.php", 2203), ("lib/mail.php", 3321),
    ("css/style.css", 5123), ("js/jquery-1.11.3.min.js", 95786), ("js/app.js", 7310),
    ("img/logo.png", 12410), ("img/ferry.jpg", 84213), ("img/bg.jpg", 40122), ("robots.txt", 26),
)
STATIC = {f"/{p}": size for p, size in FILES if not p.endswith(".php")}


def content(path: str, size: int) -> bytes:
    out = bytearray()
    block = f"{DOCROOT}/{path}".encode()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def inventory() -> bytes:
    lines = [f"{hashlib.sha256(content(p, s)).hexdigest()}  {DOCROOT}/{p}" for p, s in FILES]
    return ("\n".join(lines) + "\n").encode()
