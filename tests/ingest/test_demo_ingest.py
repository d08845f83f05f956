"""Ingesting the demo evidence yields exactly the records truth.json says were planted."""

from __future__ import annotations


import duckdb
import pytest

from logsalvage.config import load_config
from logsalvage.demo import generate
from logsalvage.ingest import ingest


@pytest.fixture(scope="module")
def demo_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    truth = generate(root / "demo", days=45, seed=7)
    case = root / "case"
    config_path = root / "demo" / "case.yaml"
    config = load_config(config_path) if config_path.exists() else None
    ingest([root / "demo" / "evidence"], case, config=config)
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    yield truth, con, root
    con.close()


def _source_counts(con) -> dict[str, tuple[int, int]]:
    rows = con.execute("SELECT path || coalesce('!' || member, ''), events, issues FROM sources").fetchall()
    return {p: (e, i) for p, e, i in rows}


def test_every_planted_file_yields_its_record_count(demo_case):
    truth, con, _ = demo_case
    counts = _source_counts(con)
    checked = 0
    for rel, info in truth["files"].items():
        if info.get("format") in (None, "config", "image", "listing", "inventory") or "records" not in info:
            continue
        assert rel in counts, f"{rel} was not ingested as a log source"
        events, issues = counts[rel]
        assert events == info["records"], f"{rel}: {events} events, truth planted {info['records']}"
        assert issues == info.get("malformed", 0), f"{rel}: {issues} issues, truth planted {info.get('malformed', 0)}"
        checked += 1
    assert checked >= 10


def test_times_match_truth(demo_case):
    truth, con, _ = demo_case
    for rel, info in truth["files"].items():
        if "first" not in info or info.get("format") in ("config", "image"):
            continue
        path, _, member = rel.partition("!")
        row = con.execute("SELECT first_ts, last_ts FROM sources WHERE path = ? AND member IS NOT DISTINCT FROM ?",
                          [path, member or None]).fetchone()
        if row is None or row[0] is None:
            continue
        from datetime import datetime

        assert row[0] == datetime.fromisoformat(info["first"]), f"{rel} first"
        assert row[1] == datetime.fromisoformat(info["last"]), f"{rel} last"


def test_time_zone_and_prefix_came_from_the_evidence(demo_case):
    _, con, _ = demo_case
    tz = {h: b for h, b in con.execute("SELECT DISTINCT host, tz || ' ' || tz_basis FROM sources").fetchall()}
    assert all("Asia/Tokyo" in b for b in tz.values()), tz
    detail = con.execute("SELECT detail FROM inputs WHERE path LIKE '%postgresql.conf'").fetchone()[0]
    assert "DATABASE=%d,USER=%u,CLIENT=%r," in detail


def test_image_is_listed_and_hashed_not_dropped(demo_case):
    _, con, _ = demo_case
    role, sha = con.execute("SELECT role, sha256 FROM inputs WHERE path LIKE '%.dd'").fetchone()
    assert role == "image" and len(sha) == 64
