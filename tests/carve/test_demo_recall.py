"""Recall and precision of the carver on the demo image, against the answer key, and against the
incident's own method (``grep -a`` for the header, ``iconv -c`` to drop invalid UTF-8).

- recall: the share of db01's syslog lines whose bytes are all in the image (present_in_image=1,
  split lines included) whose exact text was recovered;
- precision: the share of distinct output records (syslog format; the same line found at several
  offsets is one record) that are byte-identical to a planted line.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess

import pytest

from logsalvage.carve.pieces import carve_chunk
from logsalvage.carve.chains import reassemble_chains
from logsalvage.carve.scan import Scanner
from logsalvage.parsing.formats import log_formats

CHUNK = 8 << 20
MARGIN = 64 << 10
BLOCK = 4096
GREP_RE = ("(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-9][0-9] "
           "[0-9][0-9]:[0-9][0-9]:[0-9][0-9] ")


def demo_dir(tmp_path_factory):
    """The days=40 demo, generated once per session (test_scan.py uses the same one)."""
    from logsalvage.demo import generate
    out = tmp_path_factory.getbasetemp() / "carve-demo-d40-s3"
    if not (out / "truth.json").exists():
        generate(out, days=40, seed=3)
    return out


def load_truth(out) -> tuple[list[bytes], set[bytes], list[bytes]]:
    """(texts of the lines present in the image, every planted text, texts of the split ones)."""
    present, planted, split = [], set(), []
    with gzip.open(out / "truth-db-records.tsv.gz", "rb") as f:
        header = next(f).rstrip(b"\n").split(b"\t")
        assert header[-1] == b"text"
        col_present, col_split = header.index(b"present_in_image"), header.index(b"split")
        for row in f:
            c = row.rstrip(b"\n").split(b"\t", len(header) - 1)
            planted.add(c[-1])
            if c[col_present] == b"1":
                present.append(c[-1])
                if c[col_split] == b"1":
                    split.append(c[-1])
    return present, planted, split


def score(found: set[bytes], present: list[bytes], planted: set[bytes]) -> dict:
    recovered = sum(1 for t in present if t in found)
    good = sum(1 for t in found if t in planted)
    return {"recall": recovered / len(present), "precision": good / len(found) if found else 0.0,
            "lines_present": len(present), "lines_recovered": recovered,
            "records": len(found), "records_wrong": len(found) - good}


def carve_image(image: bytes, scanner: Scanner):
    records, heads, tails, rejects = [], [], [], []
    for base in range(0, len(image), CHUNK):
        got = carve_chunk(image[base:base + CHUNK + MARGIN], base, min(len(image), base + CHUNK),
                          block_size=BLOCK, scanner=scanner)
        records += got.records
        heads += got.heads
        tails += got.tails
        rejects += got.rejects
    joined, leftover = reassemble_chains(heads, tails, block_size=BLOCK, scanner=scanner)
    return records, joined, leftover, rejects


def incident_method(image_path) -> set[bytes]:
    cmd = f"LC_ALL=C grep -a -E '{GREP_RE}' '{image_path}' | iconv -c -f utf-8 -t utf-8"
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, check=False).stdout
    return set(out.split(b"\n")) - {b""}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = demo_dir(tmp_path_factory)
    present, planted, split = load_truth(out)
    return out, present, planted, split


def test_recall_and_precision_beat_the_incident_method(demo):
    out, present, planted, split = demo
    image_path = out / "evidence/db01/image/sdb1.dd"
    image = image_path.read_bytes()
    truth = json.loads((out / "truth.json").read_text())["image"]
    assert truth["block_size"] == BLOCK and len(split) == truth["lines_split"] > 0

    records, joined, leftover, rejects = carve_image(image, Scanner(log_formats()))
    found = {p.data for p in records + joined if p.format_id == "syslog"}
    ours = score(found, present, planted)
    ours.update(joined=len(joined), leftover=len(leftover), rejects=len(rejects),
                other_formats=len({p.data for p in records + joined if p.format_id != "syslog"}),
                split_lines_present=len(split),
                split_lines_recovered=sum(1 for t in split if t in found))
    report = {"ours": ours}
    if shutil.which("grep") and shutil.which("iconv"):
        report["incident"] = score(incident_method(image_path), present, planted)
    print("\ncarve recall/precision on the days=40 demo:", json.dumps(report, indent=1))

    assert ours["recall"] >= 0.999, ours
    assert ours["precision"] >= 0.9999, ours
    assert ours["split_lines_recovered"] >= 0.99 * len(split)
    # the image's junk blocks hold fragments of an old access log: a web-log record rejoined from
    # them is one of its lines or a wrong join
    from logsalvage.demo.build import _Junk
    junk_lines = set(_Junk(3).text.split(b"\n"))
    web_joined = [p.data for p in joined if p.joined and p.format_id != "syslog"]
    assert [d for d in web_joined if d not in junk_lines] == []
    if "incident" in report:
        theirs = report["incident"]
        assert ours["recall"] > theirs["recall"]
        assert ours["precision"] > theirs["precision"]
