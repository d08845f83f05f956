"""Command line: argument parsing, progress on stderr, exit codes. No logic of its own.

Exit codes: 0 success; 1 failure; 2 usage or configuration error (one line on stderr); 130
interrupted (SIGINT), 143 terminated (SIGTERM).
With ``--json`` only JSON goes to stdout; progress and messages go to stderr.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

from logsalvage import __version__
from logsalvage.textsafe import json_text, printable, printable_data  # evidence text on a terminal
from logsalvage.errors import (EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, LogsalvageError, Terminated,
                               UsageError, database_failure)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _print_json(data) -> None:
    sys.stdout.write(json_text(data, indent=2, ensure_ascii=False, default=str) + "\n")


@contextmanager
def _progress(label: str):
    """A progress callback ``(what, done, total)`` drawn with rich on stderr; silent when stderr is
    not a terminal (scripts, --json pipelines)."""
    if not sys.stderr.isatty():
        yield lambda name, done, total=None: None
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    progress = Progress(TextColumn(label), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                        TransferSpeedColumn(), TimeRemainingColumn(), TextColumn("{task.description}"),
                        console=Console(stderr=True), transient=True)
    task = progress.add_task("", total=None)

    def update(name: str, done: int, total: int | None = None) -> None:
        if total is not None:
            progress.update(task, total=total)
        # an evidence file name: its control characters as escapes, its brackets not rich markup
        progress.update(task, completed=done, description=escape(printable(name)[-60:]))

    with progress:
        yield update


def cmd_demo(args) -> int:
    from logsalvage.demo import generate

    out = Path(args.dir)
    truth = _existing_demo(out, args)
    if truth is not None:
        print(f"demo evidence for seed {args.seed} already in {out / 'evidence'}: kept as it is", file=sys.stderr)
        if not (out / "case.yaml").exists():  # made before the demo wrote its case config
            from logsalvage.demo.caseconfig import write_case_config
            write_case_config(out / "case.yaml")
    else:
        truth = generate(out, days=args.days, image_mb=args.image_mb, seed=args.seed, full=args.full,
                         exfil=getattr(args, "exfil", False), stack=getattr(args, "stack", "default"),
                         progress=lambda msg: print(msg, file=sys.stderr))
    info = {"evidence": str(out / "evidence"), "truth": str(out / "truth.json"), "config": str(out / "case.yaml"),
            "files": len(truth.get("files", {})), "scale": truth.get("scale")}
    if args.json:
        _print_json(info)
    else:
        print(f"demo evidence written to {info['evidence']} ({info['files']} files, truth in {info['truth']})")
    return EXIT_OK


def _existing_demo(out: Path, args) -> dict | None:
    """The truth of a demo already generated in ``out`` with the same arguments, so reruns are cheap."""
    try:
        truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    same = (truth.get("seed") == args.seed and truth.get("scale") == ("full" if args.full else "default")
            and (args.days is None or truth.get("days") == args.days)
            and (args.image_mb is None or truth.get("image", {}).get("size") == args.image_mb << 20))
    made_with_exfil = isinstance(truth.get("exfiltration"), dict)
    if made_with_exfil != bool(getattr(args, "exfil", False)):
        raise UsageError(f"{out} holds a demo generated {'with' if made_with_exfil else 'without'} --exfil; "
                         "generate into an empty directory (or delete its evidence/ and truth.json first)")
    made_stack = truth.get("stack", {}).get("name", "default")
    if made_stack != getattr(args, "stack", "default"):
        raise UsageError(f"{out} holds a demo generated with --stack {made_stack}; "
                         "generate into an empty directory (or delete its evidence/ and truth.json first)")
    return truth if same else None


def cmd_ingest(args) -> int:
    from logsalvage.config import load_config
    from logsalvage.ingest import ingest

    config = load_config(Path(args.config) if args.config else None)
    with _progress("ingest") as update:
        result = ingest([Path(p) for p in args.paths], Path(args.case), host=args.host, kind=args.kind,
                        format_id=args.format, config=config, progress=update, workers=args.workers,
                        scheduler=args.scheduler, engine=args.engine)
    if args.json:
        _print_json(result.as_dict())
    else:
        print(printable(f"{result.sources_new} source(s) ingested, {result.sources_known} already in the case; "
                        f"{result.events} events, {result.issues} issues -> {Path(args.case) / 'case.duckdb'}"))
        for why, paths in _reference_reasons(result.sources).items():
            print(printable(f"read line by line by the reference engine, {len(paths)} source(s) ({paths[0]}"
                            f"{', …' if len(paths) > 1 else ''}): {why}"))
    return EXIT_OK


def _reference_reasons(sources: list[dict]) -> dict[str, list[str]]:
    """Sources the columnar engine did not read, by reason."""
    out: dict[str, list[str]] = {}
    for s in sources:
        if s.get("parser") and s["parser"] != "columnar" and not s["parser"].startswith("binary:"):
            out.setdefault(s["parser"].removeprefix("reference: "), []).append(s["path"])
    return out


def cmd_summary(args) -> int:
    from logsalvage.store import CaseStore
    from logsalvage.summary import case_summary, render_text

    with CaseStore(Path(args.case), read_only=True) as store:
        summary = case_summary(store)
    if args.json:
        _print_json(summary)
    else:
        print(render_text(summary))
    return EXIT_OK


def cmd_export(args) -> int:
    from logsalvage.export import export
    from logsalvage.store import CaseStore

    out = Path(args.output)
    if out.parent and not out.parent.exists():
        raise UsageError(f"output directory does not exist: {out.parent}")
    with CaseStore(Path(args.case), read_only=True) as store:
        scope = args.scope
        if scope is None:  # the findings' scope once there are findings; before detection, every event
            from logsalvage.detect.run import FINDINGS_FILE

            scope = "findings" if (Path(args.case) / FINDINGS_FILE).exists() else "full"
            if scope == "full":
                print(printable(f"no {FINDINGS_FILE} in {args.case} (detect has not run): every event is "
                                "exported"), file=sys.stderr)
        n = export(store, args.format, out, scope=scope)
    print(printable(f"{n} events ({scope} scope) written to {out}"), file=sys.stderr)
    return EXIT_OK


def cmd_report(args) -> int:
    from logsalvage.report.pdf import find_chromium, print_pdf
    from logsalvage.report.redraw import redraw

    pdf = Path(args.pdf) if args.pdf else None
    chromium = None
    if pdf is not None:  # (before the redraw: a missing browser or directory is known at once)
        if not pdf.parent.is_dir():
            raise UsageError(f"--pdf: the directory does not exist: {pdf.parent}")
        chromium = find_chromium()
    report = redraw(Path(args.case))
    if pdf is not None:
        print_pdf(report, pdf, chromium)
    if args.json:
        _print_json({"report": str(report), "pdf": str(pdf) if pdf else None})
    else:
        print(printable(f"report: {report}"))
        if pdf is not None:
            print(printable(f"pdf: {pdf}"))
    return EXIT_OK


def cmd_carve(args) -> int:
    from logsalvage.carve.pipeline import carve_into_case, carve_to_file, parse_acquired
    from logsalvage.config import load_config

    if (args.case is None) == (args.output is None):
        raise UsageError("give exactly one of --case DIR or -o FILE")
    block_size = None
    if args.block_size != "auto":
        if not args.block_size.isdigit() or int(args.block_size) < 512 or int(args.block_size) & (int(args.block_size) - 1):
            raise UsageError(f"--block-size must be 'auto' or a power of two >= 512, not {args.block_size!r}")
        block_size = int(args.block_size)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()] if args.formats else None
    kwargs = dict(formats=formats, block_size=block_size, acquired=parse_acquired(args.acquired),
                  config=load_config(Path(args.config) if args.config else None), workers=args.workers,
                  scheduler=args.scheduler)
    for p in args.images:
        if not Path(p).exists():
            raise UsageError(f"image does not exist: {p}")
    with _progress("carve") as update:
        if args.case:
            result = carve_into_case([Path(p) for p in args.images], Path(args.case), host=args.host, progress=update,
                                     **kwargs)
        else:
            result = carve_to_file([Path(p) for p in args.images], Path(args.output), progress=update, **kwargs)
    if args.json:
        _print_json(result.as_dict())
    else:
        where = result.output or str(Path(args.case) / "case.duckdb")
        print(printable(f"{result.events} records carved from {result.image} ({result.joined} rejoined across "
                        f"blocks, {result.duplicates} duplicate copies merged, {result.issues} issues) -> {where}"))
        for problem in result.problems:
            print(f"note: {printable(problem)}", file=sys.stderr)
    return EXIT_OK


def _open_case(case: str):
    """An existing case, opened for writing (continuity keeps its merged timeline there)."""
    from logsalvage.store import DB_NAME, CaseStore

    if not (Path(case) / DB_NAME).exists():
        raise UsageError(f"no case database at {Path(case) / DB_NAME} (run 'logsalvage ingest' first)")
    return CaseStore(Path(case))


def _period(text: str) -> int | None:
    if text == "auto":
        return None
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--period must be 'auto' or a positive number of seconds, not {text!r}")
    return int(text)


def cmd_continuity(args) -> int:
    from logsalvage.continuity.analysis import case_continuity
    from logsalvage.continuity.report import render_text

    with _open_case(args.case) as store:
        result = case_continuity(store, host=args.host, heartbeat=args.heartbeat, period=_period(args.period),
                                 since=args.since, until=args.until, k=args.k)
    if args.json:
        _print_json(result)
    else:
        print(render_text(printable_data(result)))
    return EXIT_OK


def cmd_compare(args) -> int:
    import tempfile

    from logsalvage.config import load_config
    from logsalvage.continuity.agreement import compare_files, compare_in_case
    from logsalvage.continuity.report import render_compare

    period = _period(args.period)
    if args.examples < 0:
        raise UsageError(f"--examples must be 0 or more, not {args.examples}")
    if args.files:
        if args.case or args.a or args.b or len(args.files) != 2:
            raise UsageError("give either --case DIR --a SIDE --b SIDE, or two files FILE_A FILE_B")
        with tempfile.TemporaryDirectory(prefix="logsalvage-compare-") as work:
            result = compare_files(Path(args.files[0]), Path(args.files[1]), Path(work), period=period, k=args.k,
                                   config=load_config(Path(args.config) if args.config else None),
                                   examples=args.examples)
    else:
        if not (args.case and args.a and args.b):
            raise UsageError("give either --case DIR --a SIDE --b SIDE, or two files FILE_A FILE_B")
        with _open_case(args.case) as store:
            result = compare_in_case(store, args.host, args.a, args.b, period=period, k=args.k,
                                     examples=args.examples)
    if args.json:
        _print_json(result)
    else:
        print(render_compare(printable_data(result)))
    return EXIT_OK


def cmd_plot(args) -> int:
    from logsalvage.report.figures import write_continuity_figures

    out = Path(args.output)
    with _open_case(args.case) as store:
        written = write_continuity_figures(store, out, host=args.host, heartbeat=args.heartbeat,
                                           period=_period(args.period), k=args.k)
    if args.json:
        _print_json({"figures": [str(p) for p in written]})
    else:
        for p in written:
            print(printable(p))
    return EXIT_OK


def cmd_detect(args) -> int:
    from logsalvage.config import load_config
    from logsalvage.detect.run import run_detection, write_findings
    from logsalvage.detect.summary import render_text

    rule_dirs = [Path(d) for d in (args.rules or [])]
    for d in rule_dirs:
        if not d.is_dir():
            raise UsageError(f"--rules must be a directory of Sigma rules: {d}")
    config = load_config(Path(args.config) if args.config else None)
    with _open_case(args.case) as store:
        result = run_detection(store, config, rule_dirs)
    from logsalvage.audit.run import case_audit_summary

    audit = case_audit_summary(Path(args.case))  # (an audit stored in the case keeps its summary here)
    if audit is not None:
        result["audit"] = audit
    path = write_findings(Path(args.case), result)
    if args.json:
        _print_json(result)
    else:
        print(render_text(printable_data(result)))
        print(f"\nfindings written to {printable(path)}")
    return EXIT_OK


def cmd_investigate(args) -> int:
    from logsalvage.config import load_config
    from logsalvage.investigate import investigate
    from logsalvage.report.durations import duration_label

    config = load_config(Path(args.config) if args.config else None)
    with _progress("investigate") as update:
        result = investigate(Path(args.evidence), Path(args.case), config=config, workers=args.workers,
                             scheduler=args.scheduler, progress=update, timeline=not args.no_timeline,
                             timeline_scope="full" if args.full_timeline else "findings")
    if args.json:
        _print_json(result.as_dict())
    else:
        v = result.verdict
        cov = v.get("coverage_of_exposure_window")
        cov_text = "n/a" if cov is None else f"{cov * 100:.2f} %"
        print(f"exfiltration: {v.get('exfiltration')} (confidence {v.get('confidence')}; the database log covers "
              f"{cov_text} of the exposure window)")
        print(printable(f"report: {result.report}"))
        timeline = f"   timeline (Timesketch): {result.timeline}" if result.timeline else ""
        print(printable(f"findings: {result.findings}{timeline}"))
        took = ", ".join(f"{step} {duration_label(sec)}" for step, sec in result.seconds.items() if sec >= 0.5)
        print(f"time: {took or 'every step reused'}; peak memory {result.peak_rss_mib:.0f} MiB", file=sys.stderr)
    return EXIT_OK


def cmd_audit(args) -> int:
    from logsalvage.audit.host import AuditOptions
    from logsalvage.audit.run import (check_case_location, render_text, run_audit, store_findings,
                                      update_findings_file, write_audit)
    from logsalvage.config import load_config

    config = load_config(Path(args.config) if args.config else None)
    options = AuditOptions.from_case_config(config)
    paths = [Path(p) for p in args.paths]
    if args.case:
        check_case_location(Path(args.case), paths)
    result = run_audit(paths, options, host_for=config.host_for if config.hosts else None)
    if args.case:
        from logsalvage.store import CaseStore

        with CaseStore(Path(args.case)) as store:
            store_findings(store, result)
        update_findings_file(Path(args.case), result)
        print(printable(f"audit findings stored in {Path(args.case) / 'case.duckdb'} and "
                        f"{write_audit(Path(args.case), result)}"), file=sys.stderr)
    if args.json:
        _print_json(result)
    else:
        print(render_text(printable_data(result)))
    return EXIT_OK


def cmd_formats(args) -> int:
    from logsalvage.parsing.binary import BINARY_FORMATS
    from logsalvage.parsing.formats import log_formats

    rows = [{"id": s.id, "title": s.title, "assembler": s.assembler, "samples": len(s.samples),
             "source_of_truth": s.source_of_truth}
            for s in log_formats()]
    rows += [{"id": b.id, "title": b.title, "assembler": f"binary: {b.reader}", "samples": 0,
              "source_of_truth": b.source_of_truth} for b in BINARY_FORMATS.values()]
    rows.sort(key=lambda r: r["id"])
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            print(f"{r['id']:<20} {r['title']}")
            if r["source_of_truth"]:
                print(f"{'':<20} checked against: {r['source_of_truth']}")
    return EXIT_OK


def cmd_watch(args) -> int:
    import logging

    from logsalvage.config import load_config
    from logsalvage.watch import watch
    from logsalvage.watch.alerts import AlertSink
    from logsalvage.watch.rounds import watch_config

    config = load_config(Path(args.config))
    wc = watch_config(config)
    if args.interval is not None and args.interval <= 0:
        raise UsageError(f"--interval must be a positive number of seconds, not {args.interval}")
    # only alerts (JSON lines) on stdout; what the watch does goes to stderr
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("logsalvage watch: %(message)s"))
    logger = logging.getLogger("logsalvage.watch")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    sink = AlertSink(sys.stdout, syslog=wc.syslog, facility=wc.syslog_facility, webhook=wc.webhook)
    try:
        watch(Path(args.case), config, sink, interval=args.interval, once=args.once)
    finally:
        sink.close()
        logger.removeHandler(handler)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from logsalvage.export import FORMATS, INFO_FINDING_EVENTS, SCOPES

    p = _Parser(prog="logsalvage", description="Read, salvage, merge and assess the logs of a compromised "
                                               "web and database server.")
    p.add_argument("--version", action="version", version=f"logsalvage {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("demo", help="write the synthetic evidence set of the incident, with truth.json")
    d.add_argument("dir")
    d.add_argument("--days", type=int, default=None, help="days of database log to synthesise")
    d.add_argument("--image-mb", type=int, default=None, help="size of the raw log-partition image")
    d.add_argument("--seed", type=int, default=2017)
    d.add_argument("--full", action="store_true", help="the incident's scale (~2.4 M DB records, GiB image)")
    d.add_argument("--exfil", action="store_true",
                   help="also plant a theft of customer data through the web shell (truth.json 'exfiltration')")
    d.add_argument("--stack", choices=("default", "lamp"), default="default",
                   help="lamp: nginx on web01 and MariaDB's general query log on db01, no raw image")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("ingest", help="read evidence files, archives and configs into a case")
    i.add_argument("paths", nargs="+", metavar="PATH")
    i.add_argument("--case", required=True, metavar="DIR")
    i.add_argument("--host", help="host the evidence belongs to (default: from the directory layout)")
    i.add_argument("--kind", choices=("live", "backup", "salvage"), help="default: from the layout")
    i.add_argument("--format", metavar="ID", help="force a format (see 'logsalvage formats')")
    i.add_argument("--config", metavar="case.yaml")
    i.add_argument("--workers", type=int, default=1, metavar="N",
                   help="parse sources on a local Dask cluster of N processes (default: in this process)")
    i.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="parse sources on an existing Dask cluster")
    i.add_argument("--engine", choices=("auto", "columnar", "reference"), default="auto",
                   help="auto (default): the columnar engine where it covers a source and the source is not small "
                        "(64 KiB), else the per-line reference; columnar: wherever it covers a source")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_ingest)

    s = sub.add_parser("summary", help="sources, events per host and format, issues by reason, time span")
    s.add_argument("--case", required=True, metavar="DIR")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_summary)

    e = sub.add_parser("export", help="timeline export for Timesketch or a spreadsheet")
    e.add_argument("--case", required=True, metavar="DIR")
    e.add_argument("--format", required=True, choices=FORMATS)
    e.add_argument("-o", "--output", required=True, metavar="FILE")
    e.add_argument("--scope", choices=SCOPES,
                   help="findings (the default for every format once detect or investigate wrote "
                        "CASE/findings.json; before that, full): the events behind the findings (an info "
                        f"finding's first {INFO_FINDING_EVENTS}), the milestones and the verdict, each with a tag "
                        "list (finding ids and rules, milestone kinds); window: also every database record "
                        "inside the exposure window; full: every event, no tags")
    e.set_defaults(func=cmd_export)

    r = sub.add_parser("report", help="draw CASE/report.html again from the case and its findings.json; "
                                      "--pdf prints it with headless Chromium")
    r.add_argument("--case", required=True, metavar="DIR")
    r.add_argument("--pdf", metavar="FILE", help="also print the report to this PDF file (needs Chromium; "
                                                 "LOGSALVAGE_CHROMIUM names its binary)")
    r.add_argument("--json", action="store_true", help="print only the written paths, as JSON")
    r.set_defaults(func=cmd_report)

    c = sub.add_parser("carve", help="salvage log records from raw disk images")
    c.add_argument("images", nargs="+", metavar="IMAGE", help="raw (dd), split raw (.001 …) or E01")
    c.add_argument("--case", metavar="DIR", help="add the records to this case as salvage events")
    c.add_argument("-o", "--output", metavar="FILE", help="write the records' text, one per line, in time order")
    c.add_argument("--host", help="host the image belongs to (default: from the path)")
    c.add_argument("--formats", metavar="ID,...", help="formats to carve (default: every one with a signature)")
    c.add_argument("--block-size", default="auto", metavar="auto|N")
    c.add_argument("--acquired", metavar="DATE", help="acquisition date: carved records are not later")
    c.add_argument("--config", metavar="case.yaml")
    c.add_argument("--workers", type=int, default=1, metavar="N")
    c.add_argument("--scheduler", metavar="tcp://HOST:PORT")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_carve)

    def heartbeat_options(parser) -> None:
        parser.add_argument("--heartbeat", default="auto", metavar="auto|REGEX",
                            help="the periodic record proving continuity (default: found automatically)")
        parser.add_argument("--period", default="auto", metavar="auto|SECONDS",
                            help="its period (default: the median interval between its records)")
        parser.add_argument("-k", type=int, default=2, metavar="K",
                            help="a hole is more than K periods without a heartbeat (default 2)")

    co = sub.add_parser("continuity", help="merged timeline per host: heartbeat, holes, coverage, gaps, seams")
    co.add_argument("--case", required=True, metavar="DIR")
    co.add_argument("--host")
    heartbeat_options(co)
    co.add_argument("--since", metavar="ISO", help="coverage window start (no offset: the host's time zone)")
    co.add_argument("--until", metavar="ISO", help="coverage window end")
    co.add_argument("--json", action="store_true")
    co.set_defaults(func=cmd_continuity)

    cp = sub.add_parser("compare", help="agreement of two sources over their overlap (salvaged vs preserved)")
    cp.add_argument("files", nargs="*", metavar="FILE", help="two log files to compare (instead of --case)")
    cp.add_argument("--case", metavar="DIR")
    cp.add_argument("--host")
    cp.add_argument("--a", metavar="SIDE", help="live, backup, salvage, a source id or a source path")
    cp.add_argument("--b", metavar="SIDE")
    cp.add_argument("--period", default="auto", metavar="auto|SECONDS",
                    help="heartbeat period used to call a stretch absent (default: the host's heartbeat)")
    cp.add_argument("-k", type=int, default=2, metavar="K")
    cp.add_argument("--examples", type=int, default=5, metavar="N", help="examples per cause (default 5)")
    cp.add_argument("--config", metavar="case.yaml", help="for FILE mode: time zone, acquisition date")
    cp.add_argument("--json", action="store_true")
    cp.set_defaults(func=cmd_compare)

    pl = sub.add_parser("plot", help="continuity figures (PNG and SVG): time of day, coverage, gaps")
    pl.add_argument("--case", required=True, metavar="DIR")
    pl.add_argument("--host", help="default: every host")
    pl.add_argument("-o", "--output", required=True, metavar="DIR")
    heartbeat_options(pl)
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_plot)

    iv = sub.add_parser("investigate", help="evidence folder -> case, carving, continuity, detection, report.html")
    iv.add_argument("evidence", metavar="EVIDENCE_DIR")
    iv.add_argument("--case", required=True, metavar="DIR")
    iv.add_argument("--config", metavar="case.yaml")
    iv.add_argument("--workers", type=int, default=1, metavar="N")
    iv.add_argument("--scheduler", metavar="tcp://HOST:PORT")
    timeline = iv.add_mutually_exclusive_group()
    timeline.add_argument("--no-timeline", action="store_true", help="skip the Timesketch export (timeline.jsonl)")
    timeline.add_argument("--full-timeline", action="store_true",
                          help="export every event to timeline.jsonl (gigabytes at the incident's scale), not "
                               "only the events behind the findings and milestones")
    iv.add_argument("--json", action="store_true")
    iv.set_defaults(func=cmd_investigate)

    wa = sub.add_parser("watch", help="continuous audit: read live logs incrementally, detect, alert (JSON lines)")
    wa.add_argument("--case", required=True, metavar="DIR")
    wa.add_argument("--config", required=True, metavar="case.yaml", help="with a watch: section (paths, …)")
    wa.add_argument("--interval", type=float, metavar="S", help="seconds between rounds (else watch.interval)")
    wa.add_argument("--once", action="store_true", help="one round and exit (for a timer)")
    wa.set_defaults(func=cmd_watch)

    dt = sub.add_parser("detect", help="attack chain, database traces and the exfiltration verdict -> findings.json")
    dt.add_argument("--case", required=True, metavar="DIR")
    dt.add_argument("--rules", action="append", metavar="DIR", help="extra Sigma rules (repeatable)")
    dt.add_argument("--config", metavar="case.yaml", help="addresses, inventory, IOCs, containment (optional)")
    dt.add_argument("--json", action="store_true")
    dt.set_defaults(func=cmd_detect)

    au = sub.add_parser("audit", help="readiness audit of an evidence tree, a mounted image or / (read-only): "
                                      "what to change so the next incident can be answered, or prevented")
    au.add_argument("paths", nargs="+", metavar="PATH")
    au.add_argument("--case", metavar="DIR", help="also store the findings in this case (and CASE/audit.json)")
    au.add_argument("--config", metavar="case.yaml", help="dwell time (audit.dwell_days), acquisition time, inventory")
    au.add_argument("--json", action="store_true")
    au.set_defaults(func=cmd_audit)

    f = sub.add_parser("formats", help="list the log formats this version reads")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_formats)
    return p


_terminated = False  # a SIGTERM arrived: whatever exception it became on its way out, the exit is 143


def _terminate(signum, frame) -> None:
    global _terminated
    _terminated = True
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    global _terminated
    _terminated = False
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (main() called by a host program): leave SIGTERM alone
        previous = None
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except LogsalvageError as exc:
        print(f"logsalvage: error: {printable(exc)}", file=sys.stderr)  # may quote evidence names
        return exc.exit_code
    except KeyboardInterrupt as exc:
        # (a library that catches the signal's exception may raise its own KeyboardInterrupt instead)
        terminated = isinstance(exc, Terminated) or _terminated
        what = "terminated" if terminated else "interrupted"
        print(f"logsalvage: {what}; finished sources are kept, run the command again to resume", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_FAILURE
    except OSError as exc:
        print(printable(f"logsalvage: error: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}"),
              file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:
        failure = database_failure(exc)
        if failure is None:
            raise
        code, message = failure
        if code == EXIT_INTERRUPTED and _terminated:
            code, message = EXIT_TERMINATED, "terminated"
        stopped = code in (EXIT_INTERRUPTED, EXIT_TERMINATED)
        if stopped:
            message += "; finished sources are kept, run the command again to resume"
        print(f"logsalvage: {'' if stopped else 'error: '}{message}", file=sys.stderr)
        return code
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
