"""A carve interrupted between two formats is not finished: ``investigate`` carves the image again
(the formats already committed are kept) instead of reusing it with records missing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from logsalvage.carve.pipeline import carvable_formats, carve_into_case
from logsalvage.config import parse_config
from logsalvage.investigate import investigate
from logsalvage.store import CaseStore

JST = timezone(timedelta(hours=9))
CONFIG = parse_config({"acquired": "2017-12-31T00:00:00+09:00",
                       "hosts": {"db01": {"timezone": "Asia/Tokyo", "paths": ["db01/**"]}}}, "test")


def _image(path: Path) -> None:
    """Zeros with a block of syslog lines and a block of Apache access lines in it."""
    start = datetime(2017, 12, 1, tzinfo=JST)
    syslog = "".join(f"{start + timedelta(seconds=30 * i):%b %d %H:%M:%S} db01 crond[{100 + i}]: "
                     f"(root) CMD (run-parts /etc/cron.hourly)\n" for i in range(40)).encode()
    access = "".join(f'203.0.113.{i} - - [{start + timedelta(minutes=i):%d/%b/%Y:%H:%M:%S} +0900] '
                     f'"GET /index.php?id={i} HTTP/1.1" 200 900 "-" "M"\n' for i in range(40)).encode()
    image = bytearray(1 << 20)
    image[8 * 4096:8 * 4096 + len(syslog)] = syslog
    image[64 * 4096:64 * 4096 + len(access)] = access
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(image))


def _salvage(case: Path) -> dict[str, int]:
    with CaseStore(case, read_only=True) as store:
        return dict(store.query("SELECT format_id, count(*) FROM events WHERE kind = 'salvage' GROUP BY ALL"))


def test_a_partly_carved_image_is_carved_again_not_reused(tmp_path):
    ev = tmp_path / "evidence"
    _image(ev / "db01" / "image" / "sdb1.dd")
    case = tmp_path / "case"
    # what a run killed after the syslog source was committed leaves behind
    carve_into_case([ev / "db01" / "image" / "sdb1.dd"], case, host="db01", formats=["syslog"], config=CONFIG)
    assert set(_salvage(case)) == {"syslog"}
    with CaseStore(case, read_only=True) as store:
        sha = store.query("SELECT sha256 FROM inputs WHERE role = 'image'")[0][0]
        assert store.carved_formats(sha) == {"syslog"}  # carved for one format only
    result = investigate(ev, case, config=CONFIG, timeline=False)
    assert result.steps["carve"].startswith("done"), result.steps
    counts = _salvage(case)
    assert counts == {"syslog": 40, "apache-access": 40}
    with CaseStore(case, read_only=True) as store:
        assert store.carved_formats(sha) == set(carvable_formats())
        assert store.query("SELECT detail FROM inputs WHERE role = 'image'")[0][0] == "raw image, carved"
    # finished now: a further run reuses it and reads nothing twice
    again = investigate(ev, case, config=CONFIG, timeline=False)
    assert again.steps["carve"] == "reused"
    assert _salvage(case) == counts
