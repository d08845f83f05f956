"""loghub's 2k samples, parsed, and compared line by line with loghub's structured ground truth.

Sources:
- logpai/loghub @ dd61d0952749ee7963bde24220d1be5ede023033 (loghub licence: free for research and
  academic use, cite the loghub paper and URL): Apache/Apache_2k.log, Linux/Linux_2k.log,
  OpenSSH/OpenSSH_2k.log and their *_structured.csv.
- ait-aecid/LLM-log-parsing @ d86374ed3a0f42987e4b3e85414be40be802d75f (no LICENSE file; data derived
  from loghub, loghub terms apply): data/2k/{Linux,OpenSSH}/*_2k.log and
  data/2k/{Apache,Linux,OpenSSH}/*_structured_corrected.csv (AIT's corrected ground truth).

The structured CSVs give, per LineId: the time parts, the host ('Level' in Linux, 'Component' in
OpenSSH), the program ('Component' in Linux), the PID and the message ('Content'); for Apache the
ctime stamp, the level and the message.
"""

from __future__ import annotations

import csv
import io

import pytest

from corpus_support import assert_coverage, parse, read_bytes, wall

MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                      "Dec"), start=1)}

CASES = [
    # (log, structured csv, format, column names for month, day, host, program)
    ("loghub/Linux_2k.log", "loghub/Linux_2k.log_structured.csv", "syslog", ("Month", "Date", "Level", "Component")),
    ("loghub/OpenSSH_2k.log", "loghub/OpenSSH_2k.log_structured.csv", "syslog", ("Date", "Day", "Component", None)),
    ("loghub-corrected/Linux/Linux_2k.log", "loghub-corrected/Linux/Linux_2k.log_structured_corrected.csv", "syslog",
     ("Month", "Date", "Level", "Component")),
    ("loghub-corrected/OpenSSH/OpenSSH_2k.log",
     "loghub-corrected/OpenSSH/OpenSSH_2k.log_structured_corrected.csv", "syslog", ("Date", "Day", "Component", None)),
]
APACHE = [("loghub/Apache_2k.log", "loghub/Apache_2k.log_structured.csv"),
          ("loghub/Apache_2k.log", "loghub-corrected/Apache/Apache_2k.log_structured_corrected.csv")]


def rows(rel: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(read_bytes(rel).decode("utf-8"))))


def _pid(text: str) -> int | None:
    return int(float(text)) if text else None  # the corrected CSVs write '19939.0'


@pytest.mark.parametrize("log", sorted({c[0] for c in CASES} | {a[0] for a in APACHE}))
def test_file_parses(corpus, log):
    result = parse("apache-error" if "Apache" in log else "syslog", read_bytes(log))
    assert_coverage(result, log)
    assert not result.problems(), result.describe()


@pytest.mark.parametrize("log,truth,fmt,cols", CASES, ids=[c[1] for c in CASES])
def test_syslog_matches_structured_csv(corpus, log, truth, fmt, cols):
    result = parse(fmt, read_bytes(log))
    expected = rows(truth)
    assert len(result.events) == len(expected) == 2000
    month_col, day_col, host_col, prog_col = cols
    for rec, row in zip(result.events, expected):
        where = f"{log} LineId {row['LineId']}"
        assert rec["_line_no"] == int(row["LineId"]), where
        _, month, day, hms, _ = wall(rec)
        assert (month, day, hms) == (MONTHS[row[month_col]], int(row[day_col]), row["Time"]), where
        assert rec["log_host"] == row[host_col], where
        if prog_col:
            assert rec["program"] == row[prog_col], where
        pid = row.get("PID", row.get("Pid"))
        assert rec.get("process_pid") == _pid(pid), where
        if "corrected" in truth:  # AIT normalised runs of whitespace in its copy
            assert " ".join(rec["message"].split()) == " ".join(row["Content"].split()), where
        else:
            assert rec["message"].strip() == row["Content"].strip(), where


@pytest.mark.parametrize("log,truth", APACHE, ids=[a[1] for a in APACHE])
def test_apache_error_matches_structured_csv(corpus, log, truth):
    result = parse("apache-error", read_bytes(log))
    expected = rows(truth)
    assert len(result.events) == len(expected) == 2000
    for rec, row in zip(result.events, expected):
        where = f"{log} LineId {row['LineId']}"
        assert rec["ts_raw"] == row["Time"], where
        wd, mon, day, hms, year = row["Time"].split()
        assert wall(rec)[:4] == (int(year), MONTHS[mon], int(day), hms), where
        assert rec["log_level"] == row["Level"], where
        text = rec["message"] if not rec.get("source_ip") else f"[client {rec['source_ip']}] {rec['message']}"
        assert text.strip() == row["Content"].strip(), where


def test_linux_auth_fields(corpus):
    """The brute force in Linux_2k.log: old-style 'sshd(pam_unix)' tags still give rhost and user."""
    result = parse("syslog", read_bytes("loghub/Linux_2k.log"))
    failures = [r for r in result.events if r["event_type"] == "auth.failure"]
    assert len(failures) > 300
    assert all(r["program"].endswith("(pam_unix)") for r in failures)
    first = failures[0]
    assert (first["source_ip"], first["outcome"]) == ("218.188.2.4", "failure")
    ftp = [r for r in result.events if r["program"] == "ftpd" and r["event_type"] == "ftp.connect"]
    assert ftp and ftp[0]["source_ip"] == "24.54.76.216"
