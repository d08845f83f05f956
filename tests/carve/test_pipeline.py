"""Carving the demo image into a case and to a file: recall against truth, worker-count
independence, resume after an interruption, and clear errors for things that are not images."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import logsalvage.carve.pipeline as pipeline
from logsalvage.carve.pipeline import carve_into_case, carve_to_file, parse_acquired
from logsalvage.demo import generate

ROOT = Path(__file__).resolve().parents[2]
ACQUIRED = parse_acquired("2018-01-06T15:00:00+09:00")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("carve-demo") / "demo"
    truth = generate(out, days=40, seed=11)
    return out, truth


def _planted(out: Path) -> tuple[set[str], int]:
    """Texts of planted lines whose bytes are all in the image, and how many such lines there are."""
    present, n = set(), 0
    with gzip.open(out / "truth-db-records.tsv.gz", "rt", encoding="utf-8", newline="\n") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        col = {name: i for i, name in enumerate(header)}
        for line in fh:
            row = line.rstrip("\n").split("\t", len(header) - 1)
            if row[col["present_in_image"]] == "1":
                present.add(row[col["text"]])
                n += 1
    return present, n


def test_carve_into_case_recovers_what_the_image_holds(demo, tmp_path):
    out, truth = demo
    image = out / "evidence" / "db01" / "image" / "sdb1.dd"
    result = carve_into_case([image], tmp_path / "case", host="db01", acquired=ACQUIRED)
    con = duckdb.connect(str(tmp_path / "case" / "case.duckdb"), read_only=True)
    # truth lists db01's syslog lines; junk blocks also hold access-log text, carved as apache-access
    lines = [r[0] for r in con.execute("SELECT raw FROM events WHERE format_id = 'syslog'").fetchall()]
    recovered = {ln for raw in lines for ln in raw.split("\n")}
    planted, n_planted = _planted(out)
    recall = len(planted & recovered) / len(planted)
    exact = sum(1 for ln in recovered if ln in planted) / len(recovered)
    assert recall >= 0.999, f"recall {recall:.5f}"
    assert exact >= 0.9999, f"byte-identical share {exact:.5f}"
    assert result.joined > 0  # records cut across non-contiguous blocks were rejoined
    rejoined = con.execute("SELECT count(*) FROM events WHERE extra LIKE '%\"rejoined\": \"yes\"%'").fetchone()[0]
    assert rejoined == result.joined or rejoined > 0
    dup = con.execute("SELECT count(*) FROM events WHERE copies IS NOT NULL").fetchone()[0]
    assert dup > 0  # the planted second copies became one event each, listing their offsets
    kinds = dict(con.execute("SELECT kind, count(*) FROM sources GROUP BY 1").fetchall())
    assert kinds == {"salvage": len(result.sources)}
    basis = con.execute("SELECT DISTINCT time_basis FROM events WHERE format_id = 'syslog' LIMIT 3").fetchall()
    assert all("2018-01-06" in b[0] for b in basis)
    assert con.execute("SELECT count(*) FROM events WHERE format_id = 'syslog' AND ts_utc IS NULL").fetchone()[0] == 0


def test_output_file_is_time_ordered_and_worker_count_independent(demo, tmp_path):
    out, _ = demo
    image = out / "evidence" / "db01" / "image" / "sdb1.dd"
    one = carve_to_file([image], tmp_path / "one.txt", host="db01", acquired=ACQUIRED, workers=1)
    two = carve_to_file([image], tmp_path / "two.txt", host="db01", acquired=ACQUIRED, workers=2)
    assert (tmp_path / "one.txt").read_bytes() == (tmp_path / "two.txt").read_bytes()
    assert one.events == two.events > 0
    assert not (tmp_path / "one.txt.carve-case").exists()


def test_interrupted_carve_resumes_with_the_same_events(demo, tmp_path, monkeypatch, interrupt_nth_call):
    out, _ = demo
    image = out / "evidence" / "db01" / "image" / "sdb1.dd"
    monkeypatch.setattr(pipeline, "CHUNK", 8 << 20)  # more chunks, so the interruption falls mid-way
    carve_into_case([image], tmp_path / "whole", host="db01", acquired=ACQUIRED)
    restore = interrupt_nth_call(pipeline, "carve_chunk_task", 3)
    with pytest.raises(KeyboardInterrupt):
        carve_into_case([image], tmp_path / "resumed", host="db01", acquired=ACQUIRED)
    restore()
    resumed = carve_into_case([image], tmp_path / "resumed", host="db01", acquired=ACQUIRED)
    assert resumed.chunks_reused == 2

    def dump(case):
        con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
        return con.execute("SELECT event_id, ts_utc, raw, copies FROM events ORDER BY event_id").fetchall()

    assert dump(tmp_path / "resumed") == dump(tmp_path / "whole")


def test_not_an_image_is_one_clear_error(tmp_path):
    text = tmp_path / "messages.log"
    text.write_text("Dec  3 03:45:20 db01 kernel: hello\n" * 100)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run([sys.executable, "-m", "logsalvage", "carve", str(text), "--case", str(tmp_path / "c")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "logsalvage", "carve", str(text)], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "exactly one of --case" in r.stderr


def test_cli_json_reports_the_carve(demo, tmp_path):
    out, _ = demo
    image = out / "evidence" / "db01" / "image" / "sdb1.dd"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run([sys.executable, "-m", "logsalvage", "carve", str(image), "--case", str(tmp_path / "c"),
                        "--host", "db01", "--acquired", "2018-01-06", "--json"], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["events"] > 0 and data["sha256"] and data["chunks"] >= 1


def test_carve_reads_records_as_ingest_decided_for_the_host(tmp_path):
    """The time zone and log_line_prefix found at ingest (etc/localtime, postgresql.conf) are used
    for the host's carved records."""
    import shutil as _shutil
    from importlib import resources

    from logsalvage.ingest import ingest

    ev = tmp_path / "ev" / "db01"
    (ev / "etc").mkdir(parents=True)
    (ev / "var" / "lib" / "pgsql").mkdir(parents=True)
    with resources.files("tzdata.zoneinfo").joinpath("Asia/Tokyo").open("rb") as src, \
            open(ev / "etc" / "localtime", "wb") as dst:
        _shutil.copyfileobj(src, dst)
    (ev / "var" / "lib" / "pgsql" / "postgresql.conf").write_text("log_line_prefix = 'DATABASE=%d,USER=%u,CLIENT=%r,'\n")
    case = tmp_path / "case"
    ingest([tmp_path / "ev"], case)
    line = (b"Dec  3 03:45:20 db01 postgres[11324]: [3-1] DATABASE=ferry,USER=webapp,"
            b"CLIENT=192.168.10.11(46118),LOG:  duration: 3120.5 ms  statement: SELECT 1\n")
    image = tmp_path / "disk.dd"
    with open(image, "wb") as fh:
        fh.write(b"\0" * 8192 + line * 20)
        fh.truncate(1 << 20)
    carve_into_case([image], case, host="db01", acquired=ACQUIRED)
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    row = con.execute("SELECT db_name, db_user, duration_ms, ts_utc, copies FROM events WHERE kind = 'salvage'").fetchall()
    assert len(row) == 1  # twenty identical lines are one record with nineteen copies
    db_name, db_user, duration, ts, copies = row[0]
    assert (db_name, db_user, duration) == ("ferry", "webapp", 3120.5)
    assert ts.isoformat() == "2017-12-02T18:45:20+00:00"  # 03:45:20 JST
    assert len(copies.split(",")) == 19


def test_nginx_and_mysql_error_logs_salvaged_from_scattered_blocks(tmp_path):
    """A LAMP server's deleted error logs (nginx, MariaDB): their 4 KiB blocks scattered with free
    space between, records split across non-contiguous blocks rejoined, every field read."""
    from test_pieces import scatter

    mysql = "".join(f"2017-12-25 {i // 3600 % 24:2d}:{i // 60 % 60:02d}:{i % 60:02d} {1000 + i} [Warning] Access denied "
                    f"for user 'root'@'203.0.113.{i % 250}' (using password: YES)\n" for i in range(1500))
    nginx = "".join(f'2017/12/26 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} [error] 1234#1234: *{i} open() '
                    f'"/var/www/html/x{i}.php" failed (2: No such file or directory), client: 203.0.113.7, server: _, '
                    f'request: "GET /x{i}.php HTTP/1.1", host: "web01"\n' for i in range(1500))
    image, _ = scatter((mysql + nginx).encode(), 4096, seed=11)
    path = tmp_path / "disk.img"
    path.write_bytes(os.urandom(1 << 16) + image + os.urandom(1 << 16))
    case = tmp_path / "case"
    carve_into_case([path], case, host="web01", formats=["mysql-error", "nginx-error"])
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    try:
        rows = dict(((f, t), n) for f, t, n in con.execute(
            "SELECT format_id, event_type, count(DISTINCT raw) FROM events GROUP BY ALL").fetchall())
        joined = con.execute("SELECT count(*) FROM events WHERE spans IS NOT NULL").fetchall()[0][0]
        fields = con.execute("SELECT count(*) FROM events WHERE source_ip IS NULL OR ts_utc IS NULL").fetchall()[0][0]
    finally:
        con.close()
    assert rows == {("mysql-error", "mysql.auth_failed"): 1500, ("nginx-error", "web.error.file_missing"): 1500}
    assert joined > 0 and fields == 0
