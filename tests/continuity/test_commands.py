"""``continuity``, ``compare`` and ``plot`` on the command line: JSON contracts, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthetic import between, ingest_files, records, write

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "logsalvage", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-continuity")
    recs = records(21_600, seed=6, hole=(9_000, 12_000))
    live = write(tmp / "ev/live/messages", between(recs, 15_000, 21_600))
    salvage = write(tmp / "ev/image/carved.txt", [r for r in recs if not 16_000 <= r.t < 16_500])
    ingest_files(tmp / "case", [(live, "live"), (salvage, "salvage")])
    return tmp


def test_continuity_json_contract(case):
    r = run("continuity", "--case", str(case / "case"), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    (host,) = out["hosts"]
    assert host["name"] == "db01"
    assert set(host["heartbeat"]) >= {"pattern", "period_s"} and host["heartbeat"]["period_s"] == 30
    assert set(host["span"]) >= {"start", "end"} and host["span"]["start"].endswith("+09:00")
    assert set(host["coverage"]) == {"ratio", "covered_s", "total_s"}
    assert [set(h) >= {"start", "end", "seconds"} for h in host["holes"]] == [True]
    assert all(k.isdigit() for k in host["gap_histogram"])
    assert {s["kind"] for s in host["sources"]} == {"live", "salvage"}
    assert all(set(s) >= {"kind", "path", "start", "end", "events"} for s in host["sources"])


def test_continuity_text_and_options(case):
    r = run("continuity", "--case", str(case / "case"), "--host", "db01", "--period", "30", "-k", "3",
            "--since", "2017-12-01T04:00:00")
    assert r.returncode == 0, r.stderr
    assert "heartbeat (auto): every 30 s" in r.stdout and "holes" in r.stdout
    r = run("continuity", "--case", str(case / "case"), "--heartbeat", "incomplete startup", "--json")
    assert json.loads(r.stdout)["hosts"][0]["heartbeat"]["how"] == "given"


@pytest.mark.parametrize("args, message", [
    (("--period", "soon"), "--period must be"),
    (("--host", "nobody"), "no host"),
    (("--since", "yesterday"), "ISO 8601"),
    (("--heartbeat", "([bad"), "not a valid regular expression"),
    (("-k", "0"), "-k must be"),
])
def test_continuity_bad_arguments_exit_2(case, args, message):
    r = run("continuity", "--case", str(case / "case"), *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1


def test_continuity_without_a_case_exit_2(tmp_path):
    r = run("continuity", "--case", str(tmp_path / "none"))
    assert r.returncode == 2 and "no case database" in r.stderr
    assert not (tmp_path / "none").exists()  # nothing created


def test_compare_in_a_case_json_contract(case):
    r = run("compare", "--case", str(case / "case"), "--host", "db01", "--a", "live", "--b", "salvage", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) >= {"overlap", "a_events", "b_events", "matched", "agreement_ratio", "mismatches", "examples"}
    assert out["mismatches"]["period_absent"] > 0 and out["agreement_ratio"] < 1
    r = run("compare", "--case", str(case / "case"), "--a", "live", "--b", "salvage")
    assert r.returncode == 0 and "agreement" in r.stdout and "period_absent" in r.stdout


def test_compare_two_files(case):
    r = run("compare", str(case / "ev/live/messages"), str(case / "ev/image/carved.txt"), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["a"].endswith("messages") and out["mismatches"]["period_absent"] > 0
    r = run("compare", str(case / "ev/live/messages"), str(case / "ev/live/messages"), "--json")
    assert json.loads(r.stdout)["agreement_ratio"] == 1.0


@pytest.mark.parametrize("args, message", [
    (("--a", "live"), "give either"),
    (("one-file",), "give either"),
    (("--case", "CASE", "--a", "live", "--b", "backup"), "no source of host"),
])
def test_compare_bad_arguments_exit_2(case, args, message):
    args = tuple(str(case / "case") if a == "CASE" else a for a in args)
    r = run("compare", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_plot_writes_the_figures(case, tmp_path):
    r = run("plot", "--case", str(case / "case"), "--host", "db01", "-o", str(tmp_path / "figs"), "--json")
    assert r.returncode == 0, r.stderr
    files = [Path(p) for p in json.loads(r.stdout)["figures"]]
    assert len(files) == 8 and all(p.stat().st_size > 1000 for p in files)
