"""Puts the evidence set together: web01's logs and files, db01's logs, backups and raw image,
and the answer key (truth.json, truth-db-records.tsv.gz)."""

from __future__ import annotations

import math
import os
import random
import re
from pathlib import Path

from logsalvage.errors import UsageError

from . import actors, configs, cron, db, exfil as exfil_mod, ftp, secure, sqli, sysconfigs
from .attack import SHELL_FILES, AttackPlan, make_attack
from .caseconfig import write_case_config
from .db import HB, DbLog
from .image import BLOCK, ImageWriter, binary_junk, locate
from .logtext import LogText
from .stamps import apache_access, iso, jst
from .timeline import (ACQUIRED, BLOCK_C_START, CRON_KEPT_ROTATIONS, CRON_REPLACE_1, EXPOSURE,
                       FIND_START, FIRST_PROBE, FIRST_SHELL, HEARTBEAT_PERIOD, REBOOT, SERVER_STOP,
                       SITE_SLOW, UNPACKED, Plan, make_plan)
from .truth import COVERAGE_DEFINITION, Coverage, RecordsTable, dump
from .web import WebLogs
from .writer import EvidenceWriter, gzip_bytes, tar_gz_bytes

IMAGE_REL = "db01/image/sdb1.dd"
RECORDS_FILE = "truth-db-records.tsv.gz"
LIVE_MALFORMED_FILE = "messages-20171217"
STACKS = ("default", "lamp")
CONFIG_TIMES = {"httpd.conf": jst(2016, 3, 3, 14, 2, 51), "postgresql.conf": jst(2016, 11, 18, 16, 40, 3),
                "logrotate.conf": jst(2016, 11, 18, 10, 12, 44), "localtime": jst(2016, 1, 12, 9, 30, 0)}


def generate(out_dir: Path, *, days: int | None = None, image_mb: int | None = None, seed: int = 2017,
             full: bool = False, progress=None, exfil: bool = False, stack: str = "default") -> dict:
    """Write the demo evidence into ``out_dir/evidence`` and ``out_dir/truth.json``; return the truth.

    ``exfil=True`` also plants a theft of customer data through the web shell (see demo/exfil.py);
    without it the output is what it always was. ``stack="lamp"`` writes the LAMP variant
    (nginx on web01, MariaDB's general query log on db01, no raw image; see demo/lamp.py).

    Deterministic: the same arguments give byte-identical files. Raises UsageError for
    arguments that cannot work (days too small or too large, image too small, a non-empty
    evidence directory).
    """
    if stack not in STACKS:
        raise UsageError(f"unknown stack {stack!r}; one of {', '.join(STACKS)}")
    plan = make_plan(days=days, image_mb=image_mb, seed=seed, full=full)
    out_dir = Path(out_dir)
    root = out_dir / "evidence"
    if root.exists() and any(root.iterdir()):
        raise UsageError(f"{root} already exists and is not empty; generate into an empty directory")
    root.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda message: None)
    ev = EvidenceWriter(root)
    truth_files: dict[str, dict] = {}

    say(f"plan: {plan.scale} scale, {plan.days:.1f} days of db01 logs "
        f"(~{plan.expected_db_records:,} records), image {plan.image_bytes >> 20} MiB")
    attack = make_attack(plan)
    theft = None
    if exfil:
        theft = exfil_mod.make_exfil(seed)
        exfil_mod.check_placement(plan, theft)
        attack.shells.extend(theft.accesses)
        attack.shells.sort(key=lambda s: (s.t, s.ip))
    malformed: list[dict] = []

    say("web01: configuration, inventory, hidden directory listing")
    tally = {"probes": 0, "webshell_executions": 0}
    exfil_written: list[dict] = []
    if stack == "lamp":
        from . import lamp
        lamp.static_files(plan, attack, ev, truth_files, _entry)
        say("web01: nginx access and error logs")
        downloads = _web_logs(plan, attack, ev, truth_files, malformed, tally, "nginx", lamp.web_files)
    else:
        _static_files(plan, ev, truth_files)
        _system_files(plan, attack, ev, truth_files)
        say("web01: Apache access and error logs")
        downloads = _web_logs(plan, attack, ev, truth_files, malformed, tally)
    say("web01: vsftpd, xferlog, cron, secure")
    _web_system_logs(plan, attack, ev, truth_files)
    if stack == "lamp":
        say("db01: MariaDB general query log, backups (no raw image)")
        db_truth, image_truth = lamp.db01(plan, ev, truth_files, say, theft, exfil_written, _entry)
    else:
        say("db01: messages files, backups, raw image")
        db_truth, image_truth = _db01(plan, ev, out_dir, truth_files, malformed, say, theft, exfil_written)
    ev.settle_directories(ACQUIRED)

    for rel, entry in ev.files.items():
        t = truth_files.setdefault(rel, {})
        t.update({"size": entry["size"], "sha256": entry["sha256"], "mtime": iso(entry["mtime"])})
    truth = {
        "format_version": 1,
        "seed": seed,
        "scale": plan.scale,
        "days": round(plan.days, 4),
        "timezone": "Asia/Tokyo",
        "acquired": iso(ACQUIRED),
        "hosts": _hosts(),
        "addresses": _addresses(attack),
        "milestones": _milestones(plan, attack, downloads, db_truth, theft),
        "exposure_window": {"start": iso(EXPOSURE[0]), "end": iso(EXPOSURE[1])},
        "exfiltration": exfil_mod.truth(theft, exfil_written) if theft else "none",
        "attacker_db_activity": ("only the 2017-06-20 SQL-injection scan through the web application "
                                 "(errors, nothing executed); no access to the database after 2017-07-15"
                                 if theft is None else
                                 "the 2017-06-20 SQL-injection scan through the web application (errors, "
                                 "nothing executed), and on " + iso(theft.first)[:10] + " psql run through "
                                 "the web shell with the application's credentials, reading and copying "
                                 "out customer data (see exfiltration)"),
        "counts": _counts(plan, attack, downloads, tally),
        "files": dict(sorted(truth_files.items())),
        "malformed": sorted(malformed, key=lambda m: (m["file"], m["line"])),
        "db": db_truth,
        "image": image_truth,
        "records_file": RECORDS_FILE,
    }
    if stack == "lamp":
        lamp.adjust_truth(truth, theft)
    dump(truth, out_dir / "truth.json")
    write_case_config(out_dir / "case.yaml")
    for name in ("truth.json", RECORDS_FILE, "case.yaml"):
        if not (out_dir / name).exists():
            continue
        os.utime(out_dir / name, (ACQUIRED, ACQUIRED))
    say(f"done: {len(truth_files)} evidence entries, truth.json written")
    return truth


# --- web01 ------------------------------------------------------------------------------------

def _entry(host: str, kind: str, fmt: str, **more) -> dict:
    """A file that is not a log: no records, lines or span (only logs carry those keys)."""
    d = {"host": host, "kind": kind, "format": fmt}
    d.update(more)
    return d


def _static_files(plan: Plan, ev: EvidenceWriter, truth_files: dict) -> None:
    tz = configs.localtime()
    for host in ("web01", "db01"):
        rel = f"{host}/etc/localtime"
        ev.write(rel, tz, CONFIG_TIMES["localtime"])
        truth_files[rel] = _entry(host, "live", "tzif", zone="Asia/Tokyo")
    items = (
        ("web01/etc/httpd/conf/httpd.conf", configs.HTTPD_CONF.encode(), "httpd.conf", "web01", "apache"),
        ("db01/var/lib/pgsql/data/postgresql.conf", configs.POSTGRESQL_CONF.encode(), "postgresql.conf", "db01",
         "postgresql"),
        ("db01/etc/logrotate.conf", configs.LOGROTATE_CONF.encode(), "logrotate.conf", "db01", "logrotate"),
    )
    for rel, data, key, host, of in items:
        ev.write(rel, data, CONFIG_TIMES[key])
        truth_files[rel] = _entry(host, "live", "config", config_of=of)
    inv = configs.inventory()
    ev.write("web01/var/www/inventory.sha256", inv, ACQUIRED - 3600)
    truth_files["web01/var/www/inventory.sha256"] = _entry("web01", "live", "inventory",
                                                           entries=inv.count(b"\n"), hash="sha256")
    ls = configs.hidden_dir_listing(plan.seed)
    ev.write("web01/fs/ls-hidden-dir.txt", ls, ACQUIRED - 3000)
    truth_files["web01/fs/ls-hidden-dir.txt"] = _entry("web01", "live", "listing", tool="ls --time-style=full-iso")


def _system_files(plan: Plan, attack: AttackPlan, ev: EvidenceWriter, truth_files: dict) -> None:
    """The system configuration ``logsalvage audit`` reads (accounts, FTP, ssh, PHP, rotation, syslog,
    time sync, crontabs, the web root's listing, the package list)."""
    for rel, data, mtime, of in sysconfigs.files(plan, attack):
        ev.write(rel, data, mtime)
        fmt = "listing" if of == "listing" else "config"
        truth_files[rel] = _entry(rel.split("/", 1)[0], "live", fmt, **({} if of == "listing" else {"config_of": of}))


def _log_entry(host: str, kind: str, text: LogText, **more) -> dict:
    d = {"host": host, "kind": kind}
    d.update(text.stats())
    d.update(more)
    return d


def _plant_binary_line(text: LogText, rng: random.Random, rel: str, malformed: list) -> None:
    junk = bytes(24) + rng.randbytes(70)
    junk = junk.replace(b"\n", b"\x00")
    idx = text.lines // 2
    text.insert_malformed(idx, junk, "binary", "NUL bytes and random binary where a request line should be")
    malformed.append({"file": rel, "line": idx + 1, "reason": "binary"})


_ACCESS = re.compile(rb'^(\S+) \S+ \S+ \[[^\]]+\] "(\S+) (\S+) [^"]*" (\d{3}) ')
_SHELL_PATHS = {p.encode() for p in SHELL_FILES}


def _tally_access(text: LogText, tally: dict) -> None:
    """Count what the access log really holds (after malformed lines were planted)."""
    for line in text.record_lines():
        m = _ACCESS.match(line)
        path, status = m.group(3).split(b"?")[0], int(m.group(4))
        if status == 200 and path in _SHELL_PATHS:
            tally["webshell_executions"] += 1
        elif status >= 400 and path != b"/favicon.ico":
            tally["probes"] += 1


def _web_logs(plan: Plan, attack: AttackPlan, ev: EvidenceWriter, truth_files: dict, malformed: list,
              tally: dict, directory: str = "httpd", files=None):
    """The web server's access and error logs, rotated weekly, under ``web01/var/log/<directory>``.
    ``files(i, weeks, wk)``: the (file name, Apache's name, text) of week ``i`` (default: Apache's own
    files; the LAMP variant names and writes nginx's)."""
    rng = random.Random(f"{plan.seed}:web-malformed")
    web = WebLogs(plan, attack)
    weeks = list(web.weeks())
    for i, wk in enumerate(weeks):
        # delaycompress: the current file and the newest rotated one stay plain
        compressed = i < len(weeks) - 2
        week_files = (files(i, len(weeks), wk) if files else
                      ((wk.access_name, wk.access_name, wk.access), (wk.error_name, wk.error_name, wk.error)))
        for name, apache_name, text in week_files:
            rel = f"web01/var/log/{directory}/{name}" + (".gz" if compressed else "")
            if apache_name == "access_log-20171029":
                _plant_binary_line(text, rng, rel, malformed)
            if apache_name == "access_log-20171231":
                text.truncate_last(len(text.line(-1)) // 2,
                                   "the file ends in the middle of a request line, no newline")
                malformed.append({"file": rel, "line": text.lines, "reason": "truncated"})
            if text is wk.access:
                _tally_access(text, tally)
            times = text.times()
            if not times:  # (nginx's error log of a week may hold nothing)
                continue
            mtime = wk.rotation if wk.rotation is not None else max(times)
            data = text.data()
            extra = {"compression": "gzip"} if compressed else {}
            ev.write(rel, gzip_bytes(data) if compressed else data, mtime)
            truth_files[rel] = _log_entry("web01", "live", text, malformed_lines=text.malformed, **extra)
    return web.downloads


def _web_system_logs(plan: Plan, attack: AttackPlan, ev: EvidenceWriter, truth_files: dict) -> None:
    vs, xf = ftp.render(plan, attack)
    for rel, text in (("web01/var/log/vsftpd.log", vs), ("web01/var/log/xferlog", xf)):
        ev.write(rel, text.data(), max(text.times()))
        truth_files[rel] = _log_entry("web01", "live", text)
    for name, rotation, text in cron.files(plan, attack):
        rel = f"web01/var/log/{name}"
        ev.write(rel, text.data(), rotation if rotation is not None else max(text.times()))
        truth_files[rel] = _log_entry("web01", "live", text)
    text = secure.render(plan)
    ev.write("web01/var/log/secure", text.data(), max(text.times()))
    truth_files["web01/var/log/secure"] = _log_entry("web01", "live", text)


# --- db01 -------------------------------------------------------------------------------------

class _Junk:
    """Contents for junk blocks: zeros, binary with NUL runs, fragments of an old access log."""

    def __init__(self, seed: int):
        rng = random.Random(f"{seed}:junk-text")
        lines = []
        t = jst(2016, 11, 12, 8, 0, 0)
        for _ in range(600):
            t += rng.randint(0, 40)
            page = rng.choice(("", "search.php", "css/style.css", "img/logo.png"))
            lines.append(f'{actors.jp_client(rng)} - - [{apache_access(t)}] "GET /{page} HTTP/1.1" 200 '
                         f'{rng.randint(200, 20000)} "-" "{rng.choice(actors.BROWSERS)}"')
        self.text = ("\n".join(lines) + "\n").encode()

    def __call__(self, kind: str, rng: random.Random) -> bytes:
        if kind == "zeros":
            return bytes(BLOCK)
        if kind == "binary":
            return binary_junk(rng)
        start = rng.randrange(len(self.text) - BLOCK)
        return self.text[start:start + BLOCK]


def _keep_ranges(f, hole) -> list[tuple[int, int]]:
    """Byte ranges of a logical file that exist in the image (all but the hole's records)."""
    hs, he = hole
    size = len(f.data)
    times, kinds, firsts, offs = f.rec_time, f.rec_kind, f.rec_first, f.line_off
    if times[-1] < hs or times[0] > he:
        return [(0, size)]
    keep = []
    for r in range(len(times)):
        if kinds[r] == HB and times[r] == hs:
            line = firsts[r]
            keep.append((0, offs[line + 1] if line + 1 < len(offs) else size))
        if kinds[r] == HB and times[r] == he:
            keep.append((offs[firsts[r]], size))
    return keep


def _db01(plan: Plan, ev: EvidenceWriter, out_dir: Path, truth_files: dict, malformed: list, say,
          theft=None, exfil_written: list | None = None):
    start, end = plan.period
    rng = random.Random(f"{plan.seed}:db-layout")
    image_path = ev.path(IMAGE_REL)
    img = ImageWriter(image_path, plan.image_bytes, random.Random(f"{plan.seed}:image"),
                      min_mb_hint=plan.image_min_mb)
    junk = _Junk(plan.seed)
    table = RecordsTable(out_dir / RECORDS_FILE)
    cov_all = Coverage(start, end, 2 * HEARTBEAT_PERIOD)
    cov_img = Coverage(start, end, 2 * HEARTBEAT_PERIOD)
    expected_blocks = max(1.0, plan.expected_db_bytes / BLOCK)
    # about one planted block in 4000 is overwritten by junk, and at least ~9 per run so every
    # kind (zeros, binary, text) occurs at any scale; kinds are dealt in turn
    p_junk = max(1 / 4000, 9 / expected_blocks)
    carry = 0.0
    archives = {name: (t, members, []) for name, t, members in plan.archives}
    stats = {"records": 0, "lines": 0, "records_present": 0, "records_split": 0, "lines_present": 0,
             "lines_split": 0, "heartbeats": 0}
    spans = []    # (name, kind, first, last)
    log = DbLog(plan, theft)
    try:
        for idx, f in enumerate(log):
            spec = f.spec
            data = bytes(f.data)
            starts = f.line_off
            ends = list(starts[1:]) + [len(data)]
            keep = _keep_ranges(f, plan.hole)
            nblocks = math.ceil(len(data) / BLOCK)
            quota = 0
            if keep:
                carry += nblocks * p_junk
                quota = int(carry)
                carry -= quota
            segs = img.place(spec.name, data, keep, quota, junk) if keep else []
            img_off, img_split = locate(segs, starts, ends)
            dup_off = None
            if idx % 6 == 2 and keep == [(0, len(data))] and f.n_lines > 20:
                cut = starts[rng.randrange(f.n_lines // 5, f.n_lines * 4 // 5)]
                d_off, d_split = locate(img.place_copy(spec.name, data, cut), starts, ends)
                # a duplicate copy counts only where a line is whole and contiguous in it
                dup_off = [o if not sp else -1 for o, sp in zip(d_off, d_split)]
            preserved = spec.kind in ("live", "backup")
            got = table.write_file(spec.name, f, img_off, img_split, dup_off)
            for key in ("records_present", "records_split", "lines_present", "lines_split"):
                stats[key] += got[key]
            for t, whole in got["heartbeats"]:
                stats["heartbeats"] += 1
                if whole:
                    cov_img.feed(t)
                if whole or preserved:
                    cov_all.feed(t)
            stats["records"] += f.n_records
            stats["lines"] += f.n_lines
            first, last = f.rec_time[0], f.rec_time[-1]
            spans.append((spec.name, spec.kind, first, last))
            mtime = spec.rotation if spec.rotation is not None else last
            base = {"host": "db01", "format": "syslog", "records": f.n_records, "lines": f.n_lines,
                    "malformed": 0, "first": iso(first), "last": iso(last), "logical_file": spec.name}
            if spec.kind == "live":
                rel = f"db01/var/log/{spec.name}"
                entry = dict(base, kind="live")
                if spec.name == LIVE_MALFORMED_FILE:
                    data, line_no = _plant_invalid_utf8(f, data, rng)
                    entry.update(records=f.n_records + 1, lines=f.n_lines + 1, malformed=1,
                                 malformed_lines=[{"line": line_no, "reason": "invalid_utf8",
                                                   "note": "a kernel line with Latin-1 bytes; only in the "
                                                           "live copy, not in the image; a parser keeps it "
                                                           "as an event (bytes escaped) and flags it"}])
                    malformed.append({"file": rel, "line": line_no, "reason": "invalid_utf8"})
                ev.write(rel, data, mtime)
                truth_files[rel] = entry
            elif spec.kind == "backup":
                t_arch, members, got = archives[spec.archive]
                got.append((f"var/log/{spec.name}", data, mtime))
                truth_files[f"db01/backup/{spec.archive}!var/log/{spec.name}"] = dict(base, kind="backup")
                if len(got) == len(members):
                    rel = f"db01/backup/{spec.archive}"
                    ev.write(rel, tar_gz_bytes(got, spec.archive[:-3]), t_arch)
                    truth_files[rel] = _entry("db01", "backup", "tar.gz", members=[m[0] for m in got])
                    got.clear()
            say(f"  db01 {spec.name}: {f.n_records:,} records ({spec.kind})")
        img.scatter_junk(max(4, int(expected_blocks / 3000)), junk)
    finally:
        table.close()
        img.close()
    if exfil_written is not None:
        exfil_written.extend(log.exfil_written)
    ev.register(IMAGE_REL, ACQUIRED)
    truth_files[IMAGE_REL] = _entry("db01", "salvage", "image", image="raw", filesystem="xfs")
    cov_all.finish()
    cov_img.finish()

    def run(kinds):
        """Consecutive files of the given kinds, as {start, end} of their records."""
        out, prev = [], False
        for name, kind, first, last in spans:
            if kind in kinds:
                if prev:
                    out[-1]["end"] = iso(last)
                else:
                    out.append({"start": iso(first), "end": iso(last)})
            prev = kind in kinds
        return out

    live = run({"live"})
    backup = run({"backup"})
    hs, he = plan.hole
    db_truth = {
        "heartbeat": {"pattern": "incomplete startup packet", "client": "127.0.0.1",
                      "period_s": HEARTBEAT_PERIOD, "jitter_s": [0, 1], "pg_seq": db.PG_SEQ_BASE + 1},
        "period": {"start": iso(start), "end": iso(end)},
        "live": live[0] if live else None,
        "backup": ({"start": backup[0]["start"], "end": backup[-1]["end"]} if backup else None),
        "backup_archives": [{"path": f"db01/backup/{n}", "time": iso(t), "members": list(m)}
                            for n, t, m in plan.archives],
        "salvage_only": run({"salvage"}),
        "hole": {"start": iso(hs), "end": iso(he), "seconds": he - hs},
        "files": [{"name": n, "kind": k, "first": iso(a), "last": iso(b)} for n, k, a, b in spans],
        "records_total": stats["records"],
        "lines_total": stats["lines"],
        "heartbeats_total": stats["heartbeats"],
        "coverage_definition": COVERAGE_DEFINITION,
        "coverage": {"whole_period": cov_all.ratio(start, end),
                     "since_hole_end": cov_all.ratio(he, end),
                     "exposure_window": cov_all.ratio(*EXPOSURE)},
        "coverage_image_only": {"whole_period": cov_img.ratio(start, end),
                                "since_hole_end": cov_img.ratio(he, end),
                                "exposure_window": cov_img.ratio(*EXPOSURE)},
        "gaps": [{"start": iso(a), "end": iso(b), "seconds": b - a} for a, b in cov_all.holes],
        "sqli_payloads": list(log.sqli_payloads),
        "sqli_statement": sqli.STATEMENT,
        "app_client": actors.WEB01,
        "app_query_templates": list(db.APP_TEMPLATES) + [db.MULTILINE_TEMPLATE, db.LONG_TEMPLATE]
                               + [p for p, _ in db.PREPARED],
        "legitimate_bulk_reads": {"client": "[local]", "user": "postgres", "schedule": "daily ~02:30",
                                  "statement": "COPY public.<table> (...) TO stdout;",
                                  "note": "the nightly pg_dump over the Unix socket; not web01"},
        "dba_workstation": actors.DBA_HOST,
    }
    image_truth = {
        "path": IMAGE_REL,
        "size": img.size,
        "block_size": BLOCK,
        "superblock": {"magic": "XFSB", "blocksize": BLOCK, "dblocks": img.nblocks, "agcount": 4},
        "extents": img.extents,
        "junk_blocks": img.junk_blocks,
        "duplicate_extents": img.duplicate_extents,
        "records_present": stats["records_present"],
        "records_split": stats["records_split"],
        "lines_present": stats["lines_present"],
        "lines_split": stats["lines_split"],
        "counting": "records = PostgreSQL messages (all chunk lines) and other syslog lines; a record is "
                    "present when all its lines are, split when one of its lines crosses an extent boundary",
    }
    return db_truth, image_truth


def _plant_invalid_utf8(f, data: bytes, rng: random.Random) -> tuple[bytes, int]:
    """Insert a line with invalid UTF-8 before a record in the middle of the live copy."""
    r = f.n_records // 2
    line_index = f.rec_first[r]
    off = f.line_off[line_index]
    stamp = data[off:off + 15]
    bad = stamp + b" db01 kernel: usb 2-1: Manufacturer: \xb0\xc0Generic\xff Storage \xe9\xa0"
    return data[:off] + bad + b"\n" + data[off:], line_index + 1


# --- truth sections -----------------------------------------------------------------------------

def _hosts() -> dict:
    return {
        "web01": {"address": actors.WEB01, "domain": actors.DOMAIN, "os": "RHEL 7.2",
                  "apache": "2.2.21", "php": "5.3.29", "ftp": "vsftpd", "run_as": "nobody",
                  "ftp_root": {"/htdocs": "/var/www/html"}, "cron_rotations_kept": CRON_KEPT_ROTATIONS,
                  "httpd_rotation": "weekly on Sundays, delaycompress (all but the newest rotated file gzip'ed)"},
        "db01": {"address": actors.DB01, "os": "RHEL 7.2", "postgresql": "9.2.18",
                 "log": "syslog LOCAL7 -> /var/log/messages, weekly, rotate 4, dateext",
                 "log_line_prefix": "DATABASE=%d,USER=%u,CLIENT=%r,", "internet_access": False},
    }


def _addresses(attack: AttackPlan) -> dict:
    return {
        "A": list(actors.A_ADDRESSES), "B": list(actors.B_ADDRESSES), "C": list(actors.C_ADDRESSES),
        "blocks": dict(actors.BLOCKS), "maintenance": actors.MAINTENANCE, "app_db_client": actors.WEB01,
        "dba_workstation": actors.DBA_HOST, "ssh_admin": actors.SSH_ADMIN_HOST,
        "sqli_scanner": sqli.SCANNER, "download_server": {actors.DOWNLOAD_DOMAIN: actors.DOWNLOAD_ADDRESS},
        "note": "synthetic picks shaped like the incident's; not attributions to real holders",
    }


def _milestones(plan: Plan, attack: AttackPlan, downloads, db_truth, theft=None) -> list[dict]:
    ms = []

    def add(kind, t, host, **detail):
        ms.append({"kind": kind, "time": iso(t), "host": host, "detail": detail, "_t": t})

    b0 = next(b for b in attack.probes if b.t == FIRST_PROBE)
    add("first_probe", FIRST_PROBE, "web01", source=b0.ip, note="first of the scanners' failed requests")
    probes = sqli.requests(plan.seed)
    add("sqli_scan", probes[0].time, "web01", source=sqli.SCANNER, requests=len(probes),
        until=iso(probes[-1].time), db_errors_in_period=len(db_truth["sqli_payloads"]))
    s0 = attack.shells[0]
    add("first_webshell_execution", FIRST_SHELL, "web01", source=s0.ip, url=s0.path)
    c0 = next(s for s in attack.shells if s.block == "C")
    add("block_c_first_access", c0.t, "web01", source=c0.ip, url=c0.path, planned_start=iso(BLOCK_C_START))
    for s in attack.ftp:
        if s.actor in ("A", "B"):
            add("ftp_upload_session", s.t, "web01", source=s.ip, block=s.actor, user=s.user,
                uploads=[op.path for op in s.ops if op.op == "UPLOAD" and op.ok])
    for c in attack.cron:
        kind = {"LIST": "crontab_list", "DELETE": "crontab_delete", "REPLACE": "crontab_replace"}[c.action]
        if c.user == "root":
            kind = "crontab_" + c.action.lower() + "_by_admin"
        add(kind, c.t, "web01", user=c.user, target=c.target, **({"command": c.command} if c.command else {}))
    add("cron_first_run", cron.first_nobody_cmd(plan, attack), "web01", user="nobody",
        command="/tmp/upd >/dev/null 2>&1", replace=iso(CRON_REPLACE_1))
    add("find_scan", FIND_START, "web01", note="find's 'Permission denied' lines in error_log")
    for d in sorted(downloads, key=lambda d: d.start):
        add("download", d.start, "web01", url=d.url, outcome=d.outcome, length=d.length)
    add("hidden_dir_unpacked", UNPACKED, "web01", path="/usr/local/src/libssh2-0.18/nw/test/.dev")
    add("site_slow", SITE_SLOW, "web01", note="process p at 100 % CPU")
    add("reboot", REBOOT[0], "web01")
    add("server_stopped", SERVER_STOP, "web01")
    if theft is not None:
        add("exfiltration", theft.first, "db01", **exfil_mod.milestone_detail(theft))
    ms.sort(key=lambda m: (m["_t"], m["kind"]))
    for m in ms:
        del m["_t"]
    return ms


def _counts(plan: Plan, attack: AttackPlan, downloads, tally: dict) -> dict:
    by_block = {}
    for s in attack.shells:
        by_block[s.block] = by_block.get(s.block, 0) + 1
    return {
        "probes": tally["probes"],                      # failed requests other than favicon.ico
        "webshell_executions": tally["webshell_executions"],
        "probes_planned": sum(b.count for b in attack.probes),
        "webshell_planned": len(attack.shells),
        "webshell_by_block": dict(sorted(by_block.items())),
        "downloads": len(downloads),
        "downloads_saved": sum(d.outcome == "saved" for d in downloads),
        "find_lines": len(attack.finds),
        "curl_errors": sum(s.effect == "curl" for s in attack.shells),
        "perl_errors": sum(s.effect == "perl" for s in attack.shells),
        "ftp_intrusive_sessions": sum(s.actor in ("A", "B") for s in attack.ftp),
        "ftp_maintenance_sessions": sum(s.actor == "maintenance" for s in attack.ftp),
        "ftp_guessing_bursts": sum(s.actor == "guess" for s in attack.ftp),
        "sqli_requests": len(sqli.requests(plan.seed)),
        "volume_factor": round(plan.volume, 6),
    }
