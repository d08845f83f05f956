"""The scoped timeline export: the events behind the findings, milestones and verdict, each tagged
with what it supports (an info finding's first events only), the exposure window's database
records on request, and every event with ``full`` — streamed like the full export, in the same
total order, byte-identical run after run; ``investigate``'s timeline by default; on the default
demo a small fraction of the full one."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from small_case import CONFIG, JST

from logsalvage import export as export_module
from logsalvage.detect.run import run_detection, write_findings
from logsalvage.export import INFO_FINDING_EVENTS, export
from logsalvage.ingest import ingest
from logsalvage.investigate import investigate
from logsalvage.store import CaseStore

START = datetime(2017, 12, 1, tzinfo=JST)


def _evidence(root: Path) -> Path:
    """web01's access log (site traffic, then web-shell requests five hours in) and db01's
    PostgreSQL records (the health check every 30 s, the application's slow statements)."""
    ev = root / "evidence"
    access = []
    for i in range(200):
        t = START + timedelta(minutes=7 * i)
        access.append((t, f'203.0.113.{i % 50} - - [{t:%d/%b/%Y:%H:%M:%S} +0900] "GET /index.php HTTP/1.1" 200 900 "-" "M"'))
    for k, cmd in enumerate(("id", "uname%20-a", "ls%20-la", "cat%20%2Fetc%2Fpasswd")):
        t = START + timedelta(hours=5, seconds=9 * k)
        access.append((t, f'79.172.212.37 - - [{t:%d/%b/%Y:%H:%M:%S} +0900] "GET /x.php?c={cmd} HTTP/1.1" 200 99 "-" '
                          '"Wget/1.17.1"'))
    (ev / "web01/var/log/httpd").mkdir(parents=True)
    (ev / "web01/var/log/httpd/access_log").write_text("\n".join(line for _, line in sorted(access)) + "\n")
    lines = []
    for i in range(24 * 60):
        t = START + timedelta(seconds=30 * i)
        lines.append(f"{t:%b} {t.day:2d} {t:%H:%M:%S} db01 postgres[{3000 + i}]: [3-1] DATABASE=[unknown],"
                     f"USER=[unknown],CLIENT=127.0.0.1({40000 + i}),LOG:  incomplete startup packet")
        if i % 20 == 7:
            lines.append(f"{t:%b} {t.day:2d} {t:%H:%M:%S} db01 postgres[{9000 + i}]: [4-1] DATABASE=ferry,USER=webapp,"
                         f"CLIENT=192.168.10.11({50000 + i}),LOG:  duration: 3{i % 10}00.5 ms  statement: "
                         f"SELECT name FROM voyages WHERE voyage_id = {i}")
    (ev / "db01/var/log").mkdir(parents=True)
    (ev / "db01/var/log/messages").write_text("\n".join(lines) + "\n")
    return ev


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scoped")
    ingest([_evidence(root)], root / "case", config=CONFIG)
    return root / "case"


def _ids(store: CaseStore, where: str) -> list[str]:
    return [r[0] for r in store.query(f"""SELECT event_id FROM events e WHERE {where}
                                          ORDER BY ts_utc, source_id, "offset" """)]


@pytest.fixture(scope="module")
def findings(case) -> dict:
    """Findings written by hand over events of the case: what each scoped row must carry is known."""
    with CaseStore(case, read_only=True) as store:
        shell = _ids(store, "url_path = '/x.php'")
        site = _ids(store, "url_path = '/index.php'")
        statements = _ids(store, "event_type = 'postgresql.duration'")
    assert len(shell) == 4 and len(statements) > INFO_FINDING_EVENTS + 10
    return {
        "verdict": {"exfiltration": "suspected", "event_ids": [statements[5]]},
        "exposure_window": {"start": "2017-12-01T05:00:00+09:00", "end": "2017-12-01T08:00:00+09:00"},
        "findings": [
            {"id": "F-shell", "rule": "web.webshell_execution", "severity": "critical", "event_ids": shell},
            {"id": "F-first", "rule": "web.command_parameter", "severity": "high", "event_ids": shell[:1]},
            # routine activity with many examples, in an order that is not the time order
            {"id": "F-slow", "rule": "db.slow_statement", "severity": "info", "event_ids": statements[::-1]},
            {"id": "F-gone", "rule": "web.scanner_probe", "severity": "low", "event_ids": ["0000:not-in-case"]},
        ],
        "milestones": [{"kind": "first_webshell_execution", "event_ids": shell[:1]},
                       {"kind": "first_probe", "event_ids": site[:2]},
                       {"kind": "sqli_db_errors", "event_ids": [statements[0]]}],
    }


def _every_tag(findings: dict) -> tuple[dict[str, list[str]], set[str]]:
    """Event id -> its tags for every event the findings name, and the ids the findings' scope
    holds (computed here from the findings themselves)."""
    tags: dict[str, set] = {}
    in_scope: set[str] = set()
    for f in findings["findings"]:
        for i, event_id in enumerate(f["event_ids"]):
            tags.setdefault(event_id, set()).update((f["id"], f["rule"]))
            if f["severity"] != "info" or i < INFO_FINDING_EVENTS:
                in_scope.add(event_id)
    for m in findings["milestones"]:
        for event_id in m["event_ids"]:
            tags.setdefault(event_id, set()).add(m["kind"])
            in_scope.add(event_id)
    for event_id in findings["verdict"]["event_ids"]:
        tags.setdefault(event_id, set()).add(f"verdict:{findings['verdict']['exfiltration']}")
        in_scope.add(event_id)
    return {event_id: sorted(names) for event_id, names in tags.items()}, in_scope


def _expected_tags(findings: dict) -> dict[str, list[str]]:
    """Event id -> its tags, for the events the findings' scope holds."""
    tags, in_scope = _every_tag(findings)
    return {event_id: tags[event_id] for event_id in in_scope}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_scope_is_the_events_behind_findings_milestones_and_verdict_with_their_tags(case, findings, tmp_path):
    full, scoped = tmp_path / "full.jsonl", tmp_path / "scoped.jsonl"
    with CaseStore(case, read_only=True) as store:
        n_full = export(store, "timesketch-jsonl", full)
        n = export(store, "timesketch-jsonl", scoped, scope="findings", findings=findings)
        (events,) = store.query("SELECT count(*) FROM events")[0]
    expected = _expected_tags(findings)
    expected.pop("0000:not-in-case")  # an id the case does not hold is no row
    got = _lines(scoped)
    assert n == len(got) == len(expected) and n_full == events > 10 * n
    assert {g["event_id"]: g["tag"] for g in got} == expected
    # each row is the full export's record of that event, with its tags after the named fields
    by_id = {r["event_id"]: r for r in _lines(full)}
    for g in got:
        record = dict(by_id[g["event_id"]])
        assert list(g) == [k for k in record if not k.startswith("x_")] + ["tag"] + [k for k in record
                                                                                      if k.startswith("x_")]
        assert {k: v for k, v in g.items() if k != "tag"} == record
    # in the full export's total order, and the full export carries no tags
    full_order = [r["event_id"] for r in _lines(full)]
    assert [g["event_id"] for g in got] == [i for i in full_order if i in expected]
    assert not any("tag" in r for r in by_id.values())


def test_an_info_finding_keeps_its_first_events_and_tags_every_row_it_names(case, findings, tmp_path):
    out = tmp_path / "scoped.jsonl"
    with CaseStore(case, read_only=True) as store:
        export(store, "timesketch-jsonl", out, scope="findings", findings=findings)
    got = {g["event_id"]: g["tag"] for g in _lines(out)}
    slow = next(f for f in findings["findings"] if f["id"] == "F-slow")["event_ids"]
    assert set(slow[:INFO_FINDING_EVENTS]) <= set(got)
    beyond = [i for i in slow[INFO_FINDING_EVENTS:] if i in got]
    # past the first ones only what something else names: the verdict's and a milestone's events
    assert sorted(beyond) == sorted({findings["verdict"]["event_ids"][0], findings["milestones"][2]["event_ids"][0]})
    assert got[findings["verdict"]["event_ids"][0]] == ["F-slow", "db.slow_statement", "verdict:suspected"]


def test_the_window_scope_adds_the_database_records_inside_the_exposure_window(case, findings, tmp_path):
    out = tmp_path / "window.jsonl"
    with CaseStore(case, read_only=True) as store:
        export(store, "timesketch-jsonl", out, scope="window", findings=findings)
        in_window = set(_ids(store, """(event_type LIKE 'postgresql%') AND ts_utc
                                       BETWEEN '2017-12-01T05:00:00+09:00' AND '2017-12-01T08:00:00+09:00'"""))
    tags, in_scope = _every_tag(findings)
    got = {g["event_id"]: g["tag"] for g in _lines(out)}
    assert len(in_window) > 300 and set(got) == (in_scope - {"0000:not-in-case"}) | in_window
    # a record the window brings carries the tags of the findings that name it (an info finding's
    # past its first events too), and none when no finding does
    assert all(got[i] == tags.get(i, []) for i in got)
    assert any(got[i] == [] for i in in_window) and any(got[i] for i in in_window - in_scope)


def test_the_csv_formats_carry_the_tags_as_a_json_array(case, findings, tmp_path):
    jsonl = tmp_path / "t.jsonl"
    with CaseStore(case, read_only=True) as store:
        export(store, "timesketch-jsonl", jsonl, scope="findings", findings=findings)
        for fmt in ("timesketch-csv", "csv"):
            out = tmp_path / f"t.{fmt}"
            assert export(store, fmt, out, scope="findings", findings=findings) == len(_lines(jsonl))
            rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
            assert list(rows[0])[-1] == "tag"
            assert [(r["event_id"], json.loads(r["tag"])) for r in rows] == \
                   [(g["event_id"], g["tag"]) for g in _lines(jsonl)]


@pytest.mark.parametrize("fmt", ["timesketch-jsonl", "timesketch-csv"])
def test_a_scoped_export_is_the_same_bytes_whatever_the_slices(case, findings, tmp_path, monkeypatch, fmt):
    first, again, sliced = tmp_path / "first", tmp_path / "again", tmp_path / "sliced"
    with CaseStore(case, read_only=True) as store:
        n = export(store, fmt, first, scope="findings", findings=findings)
        assert export(store, fmt, again, scope="findings", findings=findings) == n
        monkeypatch.setattr(export_module, "SLICE_EVENTS", 3)
        assert export(store, fmt, sliced, scope="findings", findings=findings) == n
    assert n > 20 and first.read_bytes() == again.read_bytes() == sliced.read_bytes()


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "logsalvage", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def test_the_command_exports_the_detected_findings_scope_by_default(case, tmp_path):
    before = tmp_path / "before.jsonl"
    r = _cli("export", "--case", str(case), "--format", "timesketch-jsonl", "-o", str(before))
    assert r.returncode == 0 and "detect has not run" in r.stderr and "full scope" in r.stderr
    r = _cli("export", "--case", str(case), "--format", "timesketch-jsonl", "-o", str(before), "--scope", "findings")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "findings.json" in r.stderr and "--scope full" in r.stderr

    detected = tmp_path / "case"  # a copy of the case, so the module's case keeps no findings
    detected.mkdir()
    (detected / "case.duckdb").write_bytes((case / "case.duckdb").read_bytes())
    with CaseStore(detected) as store:
        findings = json.loads(json.dumps(run_detection(store, CONFIG), default=str))
    write_findings(detected, findings)
    scoped, full = tmp_path / "scoped.jsonl", tmp_path / "full.jsonl"
    r = _cli("export", "--case", str(detected), "--format", "timesketch-jsonl", "-o", str(scoped))
    assert r.returncode == 0 and "findings scope" in r.stderr, r.stderr
    assert _cli("export", "--case", str(detected), "--format", "timesketch-jsonl", "-o", str(full),
                "--scope", "full").returncode == 0
    got = {g["event_id"]: g["tag"] for g in _lines(scoped)}
    assert len(got) < len(_lines(full)) == len(_lines(before))
    assert any(f["rule"] == "web.webshell_execution" for f in findings["findings"])
    for f in findings["findings"]:
        chosen = f["event_ids"][:INFO_FINDING_EVENTS] if f["severity"] == "info" else f["event_ids"]
        assert set(chosen) <= set(got) and all(f["id"] in got[i] and f["rule"] in got[i] for i in chosen)
    for m in findings["milestones"]:
        assert all(m["kind"] in got[i] for i in m["event_ids"])
    assert before.read_bytes() == full.read_bytes()


def test_investigate_writes_the_scoped_timeline_and_the_full_one_on_request(tmp_path):
    case = tmp_path / "case"
    ev = _evidence(tmp_path)
    first = investigate(ev, case, config=CONFIG)
    scoped = (case / "timeline.jsonl").read_bytes()
    findings = json.loads((case / "findings.json").read_text(encoding="utf-8"))
    with CaseStore(case, read_only=True) as store:
        (events,) = store.query("SELECT count(*) FROM events")[0]
    lines = [json.loads(line) for line in scoped.decode().splitlines()]
    shell = next(f for f in findings["findings"] if f["rule"] == "web.webshell_execution")
    assert first.steps["timeline"] == "done" and 0 < len(lines) < events / 10
    assert set(shell["event_ids"]) <= {g["event_id"] for g in lines if shell["id"] in g["tag"]}
    # another scope is another export, not the one the case already has
    full = investigate(ev, case, config=CONFIG, timeline_scope="full")
    assert full.steps["timeline"] == "done" and full.steps["report"] == "reused"
    assert len(_lines(case / "timeline.jsonl")) == events and not any("tag" in r for r in _lines(case / "timeline.jsonl"))
    again = investigate(ev, case, config=CONFIG)
    assert again.steps["timeline"] == "done" and (case / "timeline.jsonl").read_bytes() == scoped
    assert investigate(ev, case, config=CONFIG).steps["timeline"] == "reused"


@pytest.mark.slow
def test_on_the_default_demo_the_scope_is_under_5_percent_of_the_full_export(tmp_path):
    """``logsalvage demo`` (default scale) investigated: its timeline.jsonl is the scoped export,
    a superset of the events behind the milestones and the findings (info findings: their first
    events), in under 5 % of the bytes of every event."""
    out, case = tmp_path / "demo", tmp_path / "case"
    assert _cli("demo", str(out), timeout=1200).returncode == 0
    r = _cli("investigate", str(out / "evidence"), "--case", str(case), "--config", str(out / "case.yaml"),
             timeout=2400)
    assert r.returncode == 0, r.stderr[-3000:]
    findings = json.loads((case / "findings.json").read_text(encoding="utf-8"))
    scoped = case / "timeline.jsonl"
    full = tmp_path / "full.jsonl"
    try:
        r = _cli("export", "--case", str(case), "--format", "timesketch-jsonl", "-o", str(full), "--scope", "full",
                 timeout=1200)
        assert r.returncode == 0, r.stderr
        full_size = full.stat().st_size
    finally:
        full.unlink(missing_ok=True)  # (gigabytes)
    got = {g["event_id"] for g in _lines(scoped)}
    wanted = {i for m in findings["milestones"] for i in m["event_ids"]}
    for f in findings["findings"]:
        wanted.update(f["event_ids"][:INFO_FINDING_EVENTS] if f["severity"] == "info" else f["event_ids"])
    assert len(wanted) > 10_000 and wanted <= got
    assert scoped.stat().st_size < 0.05 * full_size
