"""The exfiltration verdict on small database logs: found, suspected, none-found (with the confidence
coverage allows), undetermined when the log misses most of the window or is absent."""

from __future__ import annotations

import json
from datetime import timedelta

from pglog_case import APP, DAY, build, normal_days, when

from logsalvage.config import parse_config
from logsalvage.detect import exfiltration
from logsalvage.detect.context import Context, Settings
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore

KEYS = {"exfiltration", "confidence", "coverage_of_exposure_window", "holes_in_window", "db_host", "reasons",
        "event_ids", "basis", "theft"}


def _window(a: int, b: int):
    return when(a), when(b)


def _rules(findings) -> dict:
    out: dict = {}
    for f in findings:
        out.setdefault(f.rule, []).append(f)
    return out


def test_none_found_with_full_coverage(tmp_path):
    ctx = build(tmp_path, normal_days(5))
    verdict, findings = exfiltration.assess(ctx, _window(DAY, 4 * DAY))
    assert set(verdict) == KEYS
    assert verdict["exfiltration"] == "none-found" and verdict["confidence"] == "high"
    assert verdict["coverage_of_exposure_window"] == 1.0 and verdict["holes_in_window"] == []
    assert verdict["db_host"] == "db01" and verdict["event_ids"] == []
    text = " ".join(verdict["reasons"])
    assert "covers 100.00 % of the exposure window" in text
    assert "local (Unix socket) maintenance dump" in text  # the nightly pg_dump, set aside
    assert "exfil.copy_to" not in _rules(findings)
    assert all(f.severity in ("info", "low") for f in findings)
    ctx.store.close()


def test_found_remote_full_read_and_copy(tmp_path):
    log = normal_days(4)
    t0 = 2 * DAY + 13 * 3600
    pid = log.statement(t0, "SELECT * FROM customers", 42000.0, user="postgres", client="203.0.113.50")
    log.statement(t0 + 40, "COPY public.customers (customer_id, name, email, tel) TO stdout;", 9000.0,
                  user="postgres", client="203.0.113.50", pid=pid, seq=4)
    ctx = build(tmp_path, log)
    verdict, findings = exfiltration.assess(ctx, _window(DAY, 4 * DAY - 60))
    assert verdict["exfiltration"] == "found" and verdict["confidence"] == "high"
    by = _rules(findings)
    [full] = by["exfil.full_read"]
    [copy] = by["exfil.copy_to"]
    assert full.severity == "high" and full.detail["data_leaving"] and full.sources == ("203.0.113.50",)
    assert copy.severity == "high" and copy.detail["tables"] == ["customers"]
    assert set(full.event_ids) | set(copy.event_ids) <= set(verdict["event_ids"])
    assert "203.0.113.50" in verdict["reasons"][0]
    json.dumps([verdict] + [f.as_dict() for f in findings])  # serialisable as findings.json
    # outside the window the same log says nothing of the kind
    verdict, _ = exfiltration.assess(ctx, _window(0, 2 * DAY))
    assert verdict["exfiltration"] == "none-found"
    ctx.store.close()


def test_found_through_the_web_servers_address(tmp_path):
    log = normal_days(4)
    # the attacker borrows the application's address and role: a statement the application never issues
    log.statement(3 * DAY + 1800, "SELECT customer_id, name, email, tel FROM customers ORDER BY customer_id", 61000.0)
    ctx = build(tmp_path, log)
    verdict, findings = exfiltration.assess(ctx, _window(DAY, 4 * DAY - 60))
    assert verdict["exfiltration"] == "found" and verdict["confidence"] == "medium"
    by = _rules(findings)
    assert by["exfil.full_read"][0].detail["outside_baseline"]
    assert by["exfil.new_fingerprint"][0].sources == (APP,)
    ctx.store.close()


def test_suspected(tmp_path):
    log = normal_days(4)
    # a filtered customer read and schema probing from an address nobody uses
    log.statement(2 * DAY + 3600, "SELECT email FROM customers WHERE customer_id < 500", 3300.0, user="report",
                  client="192.168.10.77")
    for i, table in enumerate(("users", "members", "accounts", "admins", "logins")):
        log.error(2 * DAY + 4000 + i, f'relation "{table}" does not exist at character 15', f"SELECT * FROM {table}",
                  user="report", client="192.168.10.77")
    ctx = build(tmp_path, log)
    verdict, findings = exfiltration.assess(ctx, _window(DAY, 4 * DAY - 60))
    assert verdict["exfiltration"] == "suspected" and verdict["confidence"] == "medium"
    by = _rules(findings)
    assert by["exfil.customer_read"][0].severity == "medium"
    [probe] = [f for f in by["exfil.schema_probe"] if f.sources == ("192.168.10.77",)]
    assert probe.detail["most_objects_in_a_day"] == 5 and probe.severity == "medium"
    # the DBA's occasional typo is no exploration
    assert all(f.severity == "low" for f in by["exfil.schema_probe"] if f.sources == ("192.168.10.50",))
    assert verdict["event_ids"]
    json.dumps([verdict] + [f.as_dict() for f in findings])
    ctx.store.close()


def test_routine_activity_seen_before_the_window_is_not_counted(tmp_path):
    log = normal_days(6)
    for day in (0, 1, 3, 4):  # the DBA's monthly report, before and inside the window
        log.statement(day * DAY + 10 * 3600, "SELECT email, count(*) FROM customers GROUP BY email", 5000.0,
                      user="report", client="192.168.10.50")
    ctx = build(tmp_path, log)
    verdict, findings = exfiltration.assess(ctx, _window(3 * DAY, 6 * DAY - 60))
    assert verdict["exfiltration"] == "none-found"
    report = [f for f in findings if f.sources == ("192.168.10.50",) and f.rule == "exfil.full_read"]
    assert report and all(f.detail["routine"] and f.severity == "low" for f in report)
    ctx.store.close()


def test_undetermined_when_a_hole_covers_most_of_the_window(tmp_path):
    hole = (DAY + 3600, 3 * DAY - 3600)
    ctx = build(tmp_path, normal_days(4, hole=hole))
    verdict, _ = exfiltration.assess(ctx, _window(DAY, 3 * DAY))
    assert verdict["exfiltration"] == "undetermined" and verdict["confidence"] == "low"
    assert verdict["coverage_of_exposure_window"] < 0.5
    [h] = verdict["holes_in_window"]
    assert h["start"].endswith("+09:00") and h["seconds"] > DAY
    assert "covers" in " ".join(verdict["reasons"])
    ctx.store.close()


def test_confidence_drops_with_a_long_hole(tmp_path):
    hole = (2 * DAY + 3600, 2 * DAY + 3 * 3600)  # two hours missing: coverage still ≥ 0.97
    ctx = build(tmp_path, normal_days(4, hole=hole))
    verdict, _ = exfiltration.assess(ctx, _window(DAY, 4 * DAY - 60))
    assert verdict["exfiltration"] == "none-found" and verdict["confidence"] == "medium"
    assert 0.9 < verdict["coverage_of_exposure_window"] < 0.99
    ctx.store.close()


def test_window_beyond_the_log_is_uncovered(tmp_path):
    ctx = build(tmp_path, normal_days(2))
    verdict, _ = exfiltration.assess(ctx, (when(DAY), when(2 * DAY) + timedelta(days=3)))
    assert verdict["exfiltration"] == "undetermined"
    assert verdict["holes_in_window"][-1]["seconds"] >= 3 * DAY - 60
    ctx.store.close()


def test_no_database_log(tmp_path):
    path = tmp_path / "ev" / "web01" / "messages"
    path.parent.mkdir(parents=True)
    path.write_text("".join(f"Dec  1 0{h}:00:01 web01 systemd: Started Session {h} of user root.\n" for h in range(9)))
    ingest([path], tmp_path / "case", host="web01", kind="live",
           config=parse_config({"acquired": "2018-01-06T15:00:00+09:00"}, "test"))
    ctx = Context(CaseStore(tmp_path / "case"), Settings())
    verdict, findings = exfiltration.assess(ctx, _window(0, DAY))
    assert verdict["exfiltration"] == "undetermined" and verdict["db_host"] is None
    assert verdict["coverage_of_exposure_window"] is None and findings == []
    ctx.store.close()


def test_local_dump_off_schedule_is_suspected_not_found(tmp_path):
    log = normal_days(5)
    pid = log.statement(3 * DAY + 15 * 3600, "COPY public.customers (customer_id, name, email, tel) TO stdout;",
                        7000.0, user="postgres", client="[local]")
    log.statement(3 * DAY + 15 * 3600 + 8, "COPY public.reservations (reservation_id, customer_id, status) TO stdout;",
                  7000.0, user="postgres", client="[local]", pid=pid, seq=4)
    ctx = build(tmp_path, log)
    verdict, findings = exfiltration.assess(ctx, _window(2 * DAY, 5 * DAY - 60))
    assert verdict["exfiltration"] == "suspected"
    copies = [f for f in findings if f.rule == "exfil.copy_to"]  # one per statement fingerprint (table)
    assert sorted(t for f in copies for t in f.detail["tables"]) == ["customers", "reservations"]
    assert all(f.severity == "high" and not f.detail["data_leaving"] for f in copies)
    assert "maintenance dump" in " ".join(verdict["reasons"])  # the 02:30 runs stay recognised
    ctx.store.close()
