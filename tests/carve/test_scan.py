"""The header scanner: both backends find the same headers, and never miss a planted one."""

from __future__ import annotations

import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logsalvage.carve.scan import SLACK, Scanner, hyperscan_available
from logsalvage.parsing.formats import log_formats

needs_hs = pytest.mark.skipif(not hyperscan_available(), reason="hyperscan not installed")

# one header of each carvable format, and where its signature starts in the line
LINES = {
    "syslog": ((b"Dec  3 03:45:20 db01 postgres[11324]: [3-1] DATABASE=[unknown],USER=[unknown],"
               b"CLIENT=127.0.0.1(46118),LOG:  incomplete startup packet"), 0),
    "vsftpd": ((b'Fri Oct 20 10:20:44 2017 [pid 11806] [kyushoferry] OK UPLOAD: Client "79.122.31.4", '
               b'"/htdocs/config.php", 330755 bytes, 122.12Kbyte/sec'), 0),
    "apache-access": ((b'79.122.31.4 - - [15/Jul/2017:08:58:21 +0900] "GET /wp-contacts.php?c=id HTTP/1.1" '
                      b'200 512 "-" "Mozilla/5.0 (Windows NT 6.1)"'), 16),
    "apache-error": ((b"[Mon Dec 25 15:27:05 2017] [error] [client 1.2.3.4] File does not exist: "
                     b"/var/www/html/favicon.ico"), 0),
    "postgresql-stderr": (b'2017-12-03 03:45:20 JST [1234] LOG:  duration: 3100.2 ms  statement: SELECT 1', 0),
    "nginx-error": ((b'2017/12/25 15:28:56 [error] 1234#1234: *5 open() "/var/www/html/a.php" failed '
                    b'(2: No such file or directory), client: 203.0.113.7, server: _, request: "GET /a.php HTTP/1.1"'), 0),
    "mysql-error": (b"2017-12-25 15:28:56 140234567 [Warning] Access denied for user 'root'@'203.0.113.7' "
                    b"(using password: YES)", 0),
}
VARIANTS = [  # other shapes the signatures allow
    (b"Jan 13 00:00:00 host kernel: x", "syslog", 0),
    (b"Feb 03 23:59:59 h su: y", "syslog", 0),
    (b"Mon Jun 8 12:08:53 2020 [pid 27244] [user] FAIL LOGIN: Client \"::ffff:93.24.101.89\"", "vsftpd", 0),
    (b"Mon Jan  1 10:00:00 2018 [pid 2] [ftp] OK LOGIN: Client \"192.0.2.1\"", "vsftpd", 0),
    (b"[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328636416] AH00037: x", "apache-error", 0),
    (b"www.example.com:80 203.0.113.7 - - [20/Jan/2017:05:39:01 +0900] \"GET / HTTP/1.1\" 404 209", "apache-access", 35),
    (b"2020-04-04 13:00:00.101 UTC [26] LOG:  database system is ready", "postgresql-stderr", 0),
    (b"2026/12/07 07:25:46 [crit] 9991#9991: *19 connect() failed", "nginx-error", 0),
    (b"2023-05-11  9:05:01 0 [Note] InnoDB: Buffer pool(s) load completed", "mysql-error", 0),
    (b"2017-12-25T06:28:56.123456Z 12 [Note] [MY-010931] [Server] ready for connections", "mysql-error", 0),
]


@pytest.fixture(scope="module")
def specs():
    return log_formats()


@pytest.fixture(scope="module")
def py(specs):
    return Scanner(specs, backend="python")


@pytest.fixture(scope="module")
def hs(specs):
    if not hyperscan_available():
        pytest.skip("hyperscan not installed")
    return Scanner(specs, backend="hyperscan")


def backends(specs):
    out = [Scanner(specs, backend="python")]
    if hyperscan_available():
        out.append(Scanner(specs, backend="hyperscan"))
    return out


def test_every_carvable_format_is_scanned(py):
    assert set(py.formats) >= set(LINES)
    for cf in py.formats.values():
        assert cf.anchor_offsets, f"{cf.id}: no literal-first plan, the fallback would search slowly"


@pytest.mark.parametrize("fid", sorted(LINES))
def test_each_format_found_where_it_begins(specs, fid):
    line, at = LINES[fid]
    buf = b"junk\x00\x01" + line + b"\n"
    for sc in backends(specs):
        assert _validated(sc, buf) == [(6 + at, fid)], sc.backend


def _validated(sc, buf: bytes) -> list[tuple[int, str]]:
    """The header starts found, each with the formats whose strict header holds there. The
    signatures are loose: PostgreSQL stderr's (its prefix varies) also finds a MySQL error-log stamp,
    which only MySQL's header then validates."""
    got = sc.find(buf)
    assert len({o for o, _ in got}) == 1, got
    return [(o, f) for o, f in got if sc.formats[f].header.match(buf, o)]


@pytest.mark.parametrize("line,fid,at", VARIANTS)
def test_variants(specs, line, fid, at):
    for sc in backends(specs):
        assert _validated(sc, b"\n" + line + b"\n") == [(1 + at, fid)], sc.backend


def test_nested_header_is_not_a_header(specs):
    # 'Oct 20 10:20:44 ' inside the vsftpd header and 'Dec 25 15:27:05 ' inside the Apache error
    # header match the syslog signature, but they begin in the middle of a longer header
    buf = LINES["vsftpd"][0] + b"\n" + LINES["apache-error"][0] + b"\n"
    for sc in backends(specs):
        got = sc.find(buf)
        assert got == [(0, "vsftpd"), (len(LINES["vsftpd"][0]) + 1, "apache-error")], sc.backend
        nested = [m for m in sc.matches(buf) if m[2] == "syslog"]
        assert len(nested) == 2          # they are matches, just not header starts


def test_start_and_end(specs):
    line = LINES["syslog"][0]
    buf = line + b"\n" + line + b"\n"
    second = len(line) + 1
    for sc in backends(specs):
        assert sc.find(buf, 1) == [(second, "syslog")]
        # a header that begins before end is found even though it runs past end
        assert sc.find(buf, 0, second + 1) == [(0, "syslog"), (second, "syslog")]
        assert sc.find(buf, 0, second) == [(0, "syslog")]
        assert sc.find(buf, second + 1) == []
        assert sc.find(b"") == [] and sc.find(buf, 5, 5) == []


def test_header_cut_by_the_buffer_end_is_not_found(specs):
    for sc in backends(specs):
        assert sc.find(b"xx Dec  3 03:45:2") == []
        assert sc.find(b"xx Dec  3 03:45:20 ") == [(3, "syslog")]


def _planted(seed: int, size: int = 1 << 18, soup: bool = False) -> tuple[bytes, list[tuple[int, str]]]:
    """Random bytes (or a soup of header-like tokens) with whole headers planted in them."""
    rng = random.Random(seed)
    if soup:
        buf = bytearray(b"".join(rng.choice(_TOKENS) for _ in range(size // 4)))
    else:
        buf = bytearray(rng.randbytes(size))
    planted = []
    pos = rng.randrange(0, 64)
    names = sorted(LINES)
    while pos < len(buf) - 400:
        fid = rng.choice(names)
        line, at = LINES[fid]
        # after a newline: no signature spans one, so nothing before can swallow the header
        buf[pos:pos + len(line) + 2] = b"\n" + line + b"\n"
        planted.append((pos + 1 + at, fid))
        pos += len(line) + 2 + rng.randrange(0, 900)
    return bytes(buf), planted


_TOKENS = [b"Dec", b"Jan", b"Mon", b"Fri", b" ", b"  ", b"0", b"3", b"12", b"31", b"99", b":", b":45",
           b":20", b":5", b"2017", b"-", b"-12-", b"[", b"]", b"/Jul/", b" [pid 7] ", b" +0900] \"",
           b"] [", b"\n", b"\x00", b"\xff", b".123", b"db01 postgres[1]: ", b"Dec  3 03:45:20 ",
           b"Fri Oct 20 10:20:44 2017 ", b"[15/Jul/2017:08:58:21 +0900] \"", b"2017-12-03 03:45:20"]


@pytest.mark.parametrize("seed", range(6))
def test_planted_headers_never_missed(specs, seed):
    buf, planted = _planted(seed, soup=seed % 2 == 1)
    for sc in backends(specs):
        got = set(sc.find(buf))
        missing = [p for p in planted if p not in got]
        assert not missing, (sc.backend, missing[:5])


@needs_hs
@pytest.mark.parametrize("seed", range(8))
def test_backends_agree_on_random_and_adversarial_bytes(py, hs, seed):
    buf, _ = _planted(100 + seed, soup=seed % 2 == 0)
    for start, end in ((0, None), (7, len(buf) - SLACK - 3), (1000, 5000)):
        assert py.find(buf, start, end) == hs.find(buf, start, end)
        assert py.matches(buf, start, end) == hs.matches(buf, start, end)


@needs_hs
@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=120), st.integers(0, 40))
def test_backends_agree_on_token_soup(py, hs, tokens, start):
    buf = b"".join(tokens)
    assert py.find(buf, start) == hs.find(buf, start)
    assert py.find_arrays(buf, start) == hs.find_arrays(buf, start)


def demo_dir(tmp_path_factory):
    """The days=40 demo, generated once per session (test_demo_recall.py uses the same one)."""
    from logsalvage.demo import generate
    out = tmp_path_factory.getbasetemp() / "carve-demo-d40-s3"
    if not (out / "truth.json").exists():
        generate(out, days=40, seed=3)
    return out


@needs_hs
def test_backends_agree_on_the_demo_image(py, hs, tmp_path_factory):
    img = (demo_dir(tmp_path_factory) / "evidence/db01/image/sdb1.dd").read_bytes()
    step = 4 << 20
    total = 0
    for base in range(0, len(img), step):
        buf = img[base:base + step + 4096]
        a = hs.find(buf, 0, step)
        assert a == py.find(buf, 0, step), base
        total += len(a)
    assert total > 10000


def test_scanner_pickles(specs):
    for sc in backends(specs):
        again = pickle.loads(pickle.dumps(sc))
        buf = LINES["syslog"][0] + b"\n"
        assert again.find(buf) == sc.find(buf) == [(0, "syslog")]
        assert again.backend == sc.backend


def test_unknown_backend(specs):
    with pytest.raises(ValueError):
        Scanner(specs, backend="grep")
