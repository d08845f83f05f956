"""SQL-injection campaigns per target (script and parameter): a scan of a safe page is a scan, a
dump through an injectable one is an extraction of the tables it names, confirmed by the answers
(not by the payloads, which a scanner sends to safe pages too)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pytest

from logsalvage.config import load_config, parse_config
from logsalvage.detect import injection, web
from logsalvage.detect.context import Context, settings_from
from logsalvage.detect.model import Finding, Milestone
from logsalvage.detect.run import run_detection
from logsalvage.detect.sqltext import payload_reads
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore

CONFIG = parse_config({"hosts": {"web": {"timezone": "UTC"}}}, "test")
SCANNER = "198.51.100.9"
UA = "sqlmap/1.8#stable (https://sqlmap.org)"
DUMP = ("1 UNION ALL SELECT (CHR(113)||CHR(118)||CHR(106)||CHR(122)||CHR(113))||COALESCE(CAST(email AS "
        "VARCHAR(10000))::text,(CHR(32)))||(CHR(113)||CHR(112)||CHR(122)||CHR(107)||CHR(113)) "
        "FROM public.customer OFFSET {k} LIMIT 1-- xYzw")


def _line(t: int, path: str, value: str | None, status: int, size: int, ip: str = SCANNER, ua: str = UA,
          param: str = "id", usec: int | None = None) -> str:
    stamp = datetime.fromtimestamp(t, timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000")
    target = path if value is None else f"{path}?{param}={quote(value, safe='')}"
    tail = f" {usec}" if usec is not None else ""
    return f'{ip} - - [{stamp}] "GET {target} HTTP/1.1" {status} {size or "-"} "-" "{ua}"{tail}\n'


T0 = 1_700_000_000


def _scan_of_a_safe_page(t: int) -> list[str]:
    """sqlmap against safe.php: every payload answered with the same 'no such item' page."""
    payloads = ["1)", "1'", "1 AND 5617=5617", "1 AND 5617=8310", "1 AND 3321=3321", "1 AND 3321=9107",
                "1) AND 5617=5617 AND (3720=3720", "1 AND 7421=(SELECT 7421 FROM PG_SLEEP(5))",
                "1 UNION ALL SELECT NULL-- Sojx", "1 UNION ALL SELECT NULL,NULL-- Sojx", "1 ORDER BY 1-- Wuxm"]
    out = [_line(t, "/safe.php", "1", 200, 950)]
    for i, p in enumerate(payloads, start=1):
        out.append(_line(t + i, "/safe.php", p, 200, 610))
    return out


def _dump_through_item(t: int, rows: int = 5, sizes: bool = True) -> list[str]:
    """A UNION dump of the customer table through item.php, after it was confirmed injectable."""
    size = (lambda n: n) if sizes else (lambda n: 0)
    out = [_line(t, "/item.php", "1", 200, size(1000))]
    probes = [("1 AND 4410=4410", 1000), ("1 AND 4410=2281", 700), ("1 AND 9012=9012", 1000), ("1 AND 9012=4471", 700),
              ("1 UNION ALL SELECT NULL,NULL-- abCd", 500), ("1 UNION ALL SELECT NULL-- abCd", 1000),
              ("1 UNION ALL SELECT (CHR(113)||CHR(118))||(CHR(106))||(CHR(113))-- abCd", 1040)]
    for i, (p, n) in enumerate(probes, start=1):
        out.append(_line(t + i, "/item.php", p, 500 if n == 500 else 200, size(n)))
    for k in range(rows):
        out.append(_line(t + 10 + k, "/item.php", DUMP.format(k=k), 200, size(1100 + 7 * k)))
    return out


def _ordinary(t: int) -> list[str]:
    human = "Mozilla/5.0"
    return [_line(t, "/", None, 200, 3000, "203.0.113.5", human),
            *(_line(t + i, "/item.php", str(i), 200, 990 + i, "203.0.113.5", human) for i in (1, 2, 3)),
            *(_line(t + 3 + i, "/safe.php", str(i), 200, 940 + i, "203.0.113.5", human) for i in (1, 2, 3))]


def _case(tmp_path, lines: list[str]):
    log = tmp_path / "ev/web/var/log/httpd/access_log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(lines))
    ingest([tmp_path / "ev"], tmp_path / "case", config=CONFIG)
    return CaseStore(tmp_path / "case")


def _of(items, kind):
    return [m for m in items if isinstance(m, Milestone) and m.kind == kind]


def test_payload_reads_names_tables_columns_rows_and_techniques():
    r = payload_reads(DUMP.format(k=3))
    assert r.techniques == ("union",) and r.tables == ("public.customer",) and r.data_tables == ("public.customer",)
    assert r.columns == ("email",) and (r.offset, r.limit) == (3, 1) and not r.catalog
    assert payload_reads("1 AND 5617=5617").truth is True and payload_reads("1 AND 5617=8310").truth is False
    assert payload_reads("1) AND 5617=5617 AND (3720=3720").truth is True
    assert payload_reads("1);SELECT PG_SLEEP(5)--").techniques == ("stacked", "time")
    assert payload_reads("1 AND 7421=(SELECT 7421 FROM PG_SLEEP(5))").sleep_s == 5.0
    enum = payload_reads("1 UNION ALL SELECT NULL,table_name FROM information_schema.tables-- x")
    assert enum.catalog and enum.data_tables == ()
    assert payload_reads("1 ORDER BY 1-- Wuxm").techniques == ("union",)
    assert payload_reads("O'Brien") == payload_reads("2") == payload_reads(None)


def test_a_scan_of_a_safe_page_is_a_scan_and_a_dump_is_an_extraction(tmp_path):
    lines = _ordinary(T0) + _scan_of_a_safe_page(T0 + 100) + _dump_through_item(T0 + 400)
    with _case(tmp_path, lines) as store:
        ctx = Context(store, settings_from(CONFIG))
        safe, item = injection.campaigns(ctx, "web")
        assert (safe.script, safe.parameter, item.script, item.parameter) == ("/safe.php", "id", "/item.php", "id")
        assert safe.confirmed is None and safe.reading == [] and safe.carried == []
        assert item.confirmed is not None and item.confirmed[1] == "boolean"
        assert item.tables == ["public.customer"] and len(item.carried) == 5
        items = web.detect(ctx)
    scans = _of(items, "sqli_scan")
    assert sorted(m.detail["script"] for m in scans) == ["/item.php", "/safe.php"]
    [confirmed] = _of(items, "sqli_injectable")
    assert confirmed.detail["script"] == "/item.php" and confirmed.detail["technique"] == "boolean"
    [extraction] = _of(items, "sqli_extraction")
    d = extraction.detail
    assert d["script"] == "/item.php" and d["parameter"] == "id" and d["tables"] == ["public.customer"]
    assert d["answered"] == "responses" and d["requests"] == 5 and d["bytes"] == sum(1100 + 7 * k for k in range(5))
    assert d["rows_walked"] == {"first_offset": 0, "last_offset": 4, "distinct": 5}
    assert extraction.time == datetime.fromtimestamp(T0 + 410, timezone.utc)
    campaigns = {f.detail["script"]: f for f in items if isinstance(f, Finding) and f.rule == "web.sqli_campaign"}
    assert campaigns["/safe.php"].severity == "high" and campaigns["/safe.php"].detail["state"] == "scanned"
    assert campaigns["/item.php"].severity == "critical" and campaigns["/item.php"].detail["state"] == "data extracted"


def test_the_verdict_is_found_without_a_web_shell(tmp_path):
    lines = _ordinary(T0) + _scan_of_a_safe_page(T0 + 100) + _dump_through_item(T0 + 400)
    with _case(tmp_path, lines) as store:
        result = run_detection(store, CONFIG)
    kinds = {m["kind"] for m in result["milestones"]}
    assert "first_webshell_execution" not in kinds and {"sqli_injectable", "sqli_extraction"} <= kinds
    verdict = result["verdict"]
    assert verdict["exfiltration"] == "found", verdict
    assert "customer" in " ".join(verdict["reasons"]) and "/item.php" in " ".join(verdict["reasons"])
    window = result["exposure_window"]
    first_confirmed = next(m for m in result["milestones"] if m["kind"] == "sqli_injectable")
    assert window["start"] == first_confirmed["time"]
    rules = {f["rule"] for f in result["findings"]}
    assert "exfil.sqli_extraction" in rules


def test_a_scan_alone_opens_no_window(tmp_path):
    with _case(tmp_path, _ordinary(T0) + _scan_of_a_safe_page(T0 + 100)) as store:
        result = run_detection(store, CONFIG)
    kinds = {m["kind"] for m in result["milestones"]}
    assert "sqli_scan" in kinds and not kinds & {"sqli_injectable", "sqli_extraction"}
    assert result["exposure_window"] is None and result["verdict"]["exfiltration"] == "undetermined"


def test_without_response_sizes_the_extraction_is_suspected(tmp_path):
    """'-' for every size: nothing shows what the answers carried; the payloads still name the table."""
    with _case(tmp_path, _ordinary(T0) + _dump_through_item(T0 + 400, sizes=False)) as store:
        ctx = Context(store, settings_from(CONFIG))
        [item] = injection.campaigns(ctx, "web")
        assert item.confirmed is None and item.carried == [] and len(item.reading) == 5
        items = web.detect(ctx)
        [extraction] = _of(items, "sqli_extraction")
        assert extraction.detail["answered"] == "requests only"
        result = run_detection(store, CONFIG)
    # the payloads asking for the customer table open the window; nothing shows the rows left: suspected
    assert result["verdict"]["exfiltration"] == "suspected"
    assert result["exposure_window"]["start"] == next(
        m["time"] for m in result["milestones"] if m["kind"] == "sqli_extraction")


@pytest.mark.parametrize("slept, confirmed", [(5.2, True), (0.05, False)])
def test_time_based_confirmation_needs_the_response_times(tmp_path, slept, confirmed):
    fmt = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D'
    config = parse_config({"hosts": {"web": {"timezone": "UTC"}}, "apache": {"logformats": [fmt]}}, "test")
    lines = [_line(T0, "/item.php", "1", 200, 1000, usec=20_000)]
    for i in range(3):
        lines.append(_line(T0 + 10 * (i + 1), "/item.php", f"1 AND 7421=(SELECT 7421 FROM PG_SLEEP(5))", 200, 1000,
                           usec=int(slept * 1e6)))
    log = tmp_path / "ev/web/var/log/httpd/access_log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(lines))
    ingest([tmp_path / "ev"], tmp_path / "case", config=config)
    with CaseStore(tmp_path / "case") as store:
        [c] = injection.campaigns(Context(store, settings_from(config)), "web")
    assert (c.confirmed is not None) == confirmed
    if confirmed:
        assert c.confirmed[1] == "time"


ERROR_PAYLOAD = ("1 AND 3201=CAST((CHR(113)||CHR(118)||CHR(112)||CHR(106)||CHR(113))||(SELECT (CASE WHEN "
                 "(3201=3201) THEN 1 ELSE 0 END))::text||(CHR(113)||CHR(122)||CHR(107)||CHR(118)||CHR(113)) AS NUMERIC)")


@pytest.mark.parametrize("quoted, confirmed", [("qvpjq1qzkvq", True), (ERROR_PAYLOAD, False)])
def test_error_based_confirmation_needs_a_value_the_database_computed(tmp_path, quoted, confirmed):
    """The database's error quotes what it could not cast: a computed value proves the expression
    ran; the payload quoted back as sent (a bound parameter) proves nothing."""
    config = parse_config({"acquired": "2023-11-15T00:00:00+00:00",
                           "hosts": {"web": {"timezone": "UTC"}, "db": {"timezone": "UTC"}},
                           "postgresql": {"log_line_prefix": "DATABASE=%d,USER=%u,CLIENT=%r,"}}, "test")
    access = [_line(T0, "/item.php", "1", 200, 1000)]
    access += [_line(T0 + i, "/item.php", ERROR_PAYLOAD, 200, 1000) for i in (1, 2)]
    syslog = "".join(
        f'{datetime.fromtimestamp(T0 + i, timezone.utc):%b %d %H:%M:%S} db postgres[{4000 + i}]: [3-1] '
        f'DATABASE=shop,USER=shopapp,CLIENT=127.0.0.1(5{i}),ERROR:  invalid input syntax for type numeric: "{quoted}"\n'
        for i in (1, 2))
    for rel, text in (("web/var/log/httpd/access_log", "".join(access)), ("db/var/log/messages", syslog)):
        (tmp_path / "ev" / rel).parent.mkdir(parents=True)
        (tmp_path / "ev" / rel).write_text(text)
    ingest([tmp_path / "ev"], tmp_path / "case", config=config)
    with CaseStore(tmp_path / "case") as store:
        assert store.query("SELECT count(*) FROM events WHERE pg_level = 'ERROR'")[0][0] == 2
        [c] = injection.campaigns(Context(store, settings_from(config)), "web")
    assert (c.confirmed is not None) == confirmed
    if confirmed:
        assert c.confirmed[1] == "error" and "qvpjq1qzkvq" in c.confirmed[2]


FIXTURE = Path(__file__).resolve().parents[1] / "data" / "sqlmap_dump"


def test_real_sqlmap_capture_scan_of_a_safe_page_then_dump_through_an_injectable_one(tmp_path):
    """tests/data/sqlmap_dump: real sqlmap 1.10 against real Apache + PHP + PostgreSQL (written by
    tests/integration/test_sqlmap_dump.py): phase 1 scans safe.php (bound parameter, nothing found),
    phase 2 dumps the customer table through item.php with one UNION request. The answers of the
    injectable page that are database error pages (ORDER BY 6583, a broken quote) are larger than its
    clean page too: the database errors quoting those payloads keep them from counting as rows."""
    phases = json.loads((FIXTURE / "phases.json").read_text())
    config = load_config(FIXTURE / "case.yaml")
    ingest([FIXTURE / "evidence"], tmp_path / "case", config=config)
    with CaseStore(tmp_path / "case") as store:
        result = run_detection(store, config)
    by_kind: dict = {}
    for m in result["milestones"]:
        by_kind.setdefault(m["kind"], []).append(m)
    assert "first_webshell_execution" not in by_kind
    assert {(m["detail"]["script"], m["detail"]["parameter"]) for m in by_kind["sqli_scan"]} >= {
        ("/safe.php", "id"), ("/item.php", "id")}
    [injectable] = by_kind["sqli_injectable"]
    [extraction] = by_kind["sqli_extraction"]
    assert (injectable["detail"]["script"], injectable["detail"]["parameter"]) == ("/item.php", "id")
    d = extraction["detail"]
    assert (d["script"], d["parameter"], d["tables"], d["answered"]) == ("/item.php", "id", ["public.customer"],
                                                                        "responses")
    assert set(d["columns"]) == {"id", "name", "email", "phone", "card_last4"}
    lo, hi = phases["phase2_dump"]["start"] - 2, phases["phase2_dump"]["end"] + 2
    for t in (extraction["time"], d["until"], injectable["time"]):
        assert lo <= datetime.fromisoformat(t).timestamp() <= hi
    assert result["verdict"]["exfiltration"] == "found"
    assert result["exposure_window"]["start"] == injectable["time"]
    campaigns = {(f["detail"]["script"], f["detail"]["parameter"]): f for f in result["findings"]
                 if f["rule"] == "web.sqli_campaign"}
    assert campaigns[("/safe.php", "id")]["detail"]["state"] == "scanned"
    assert campaigns[("/item.php", "id")]["detail"]["state"] == "data extracted"
