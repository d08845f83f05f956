"""Reading a systemd journal file with journalctl, the maintained reader of the format.

``journalctl --file F -o export`` opens F read-only (``O_RDONLY``; nothing is written next to
it: checked with strace for systemd 252) and prints its entries; ``journalctl --verify --file F``
then says where the file is corrupt (journalctl skips a corrupt entry without a word). F is
never the evidence's own name: journalctl expands ``--file`` as a glob, and an evidence name is
attacker-chosen, so the file is opened here (regular files only, links not followed) and handed
over as ``/proc/self/fd/N``.

A journal that is not a plain file (compressed, an archive member) is copied, decompressed, to
a temporary file in the case directory (removed when read). So is one cut short (journalctl refuses a file shorter
than its header declares): the copy is extended with zeros (a hole) to the declared size, and the
entries before the cut come out. Whatever journalctl printed before it failed is kept; its
complaints are the problems returned.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from logsalvage.parsing.binary.journal import FIELDS
from logsalvage.sources.binary import open_content, plain
from logsalvage.sources.files import HASH_CHUNK, _open_regular
from logsalvage.sources.model import Candidate, ReadProblem

_HEADER = struct.Struct("<8s4s4sB7s16s16s16s16sQQ")  # up to header_size and arena_size (offset 88, 96)
MAX_DECLARED = 4 << 30  # a declared size past this is not a journal's (journald's default limit is 128 MiB)
_VERIFY_AT = re.compile(r"^([0-9a-f]{1,16}): (.+)$")
_CORRUPT_AT = re.compile(r"corruption detected at .*:([0-9a-f]{1,16}) \(of (\d+) bytes")
ENV = {"TZ": "UTC", "LC_ALL": "C.UTF-8", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "SYSTEMD_LOG_COLOR": "0",
       "SYSTEMD_LOG_LEVEL": "warning", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


@dataclass
class JournalRead:
    """What reading one journal file gave: problems as (byte offset or None, reason)."""

    entries: int = 0
    problems: list[tuple[int | None, str]] = field(default_factory=list)
    how: str = "read in place"


def journalctl() -> str | None:
    return shutil.which("journalctl")


def version() -> str:
    """'systemd 252 (252.38-1~deb12u1)', or '' when journalctl cannot say."""
    exe = journalctl()
    if exe is None:
        return ""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, timeout=30, env=ENV).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.decode("utf-8", "replace").split("\n", 1)[0].strip()


def declared_size(head: bytes) -> int | None:
    """The size a journal file's header declares (header_size + arena_size), when it has one."""
    if len(head) < _HEADER.size:
        return None
    fields = _HEADER.unpack_from(head)
    total = fields[-2] + fields[-1]
    return total if 0 < total <= MAX_DECLARED else None


def read_journal(cand: Candidate, work_dir: Path, on_entries: Callable[[object], None],
                 timeout: float | None = None) -> JournalRead:
    """Run journalctl over a candidate's journal; ``on_entries`` reads its export stream (it may
    raise ``parsing.binary.journal.ExportError``, which the caller handles)."""
    result = JournalRead()
    exe = journalctl()
    if exe is None:
        raise FileNotFoundError("journalctl is not installed")
    timeout = timeout or 300 + cand.size / (5 << 20)
    with ExitStack() as stack:
        fd = _journal_fd(cand, work_dir, stack, result)
        path = f"/proc/self/fd/{fd}"
        export = [exe, "--file", path, "-o", "export", "--no-pager", "-q", "--output-fields=" + ",".join(FIELDS)]
        rc, err = _run(export, fd, on_entries, timeout)
        if rc != 0 and "output-fields" in err:  # journalctl before systemd 236 refuses the option, reads nothing
            rc, err = _run(export[:-1], fd, on_entries, timeout)
        if rc != 0:
            result.problems.append((None, f"journalctl could not read the whole file (exit {rc}): "
                                          f"{_said(err, path) or 'no reason given'}; the entries before are kept"))
        rc, err = _run([exe, "--verify", "--file", path, "--no-pager"], fd, None, timeout)
        if rc != 0:
            result.problems.extend(_verify_problems(err, path))
    return result


def _journal_fd(cand: Candidate, work_dir: Path, stack: ExitStack, result: JournalRead) -> int:
    """A descriptor journalctl can read the journal from: the evidence file itself when it is a
    whole plain file, else a temporary copy (decompressed, padded to its declared size)."""
    if plain(cand):
        fh = stack.enter_context(_open_regular(cand.path))
        declared = declared_size(os.pread(fh.fileno(), _HEADER.size, 0))
        if declared is None or cand.size >= declared:
            return fh.fileno()
    work_dir.mkdir(parents=True, exist_ok=True)
    # named: journalctl refuses a file with no name left ("Identifier removed"); removed when closed
    tmp = stack.enter_context(tempfile.NamedTemporaryFile(dir=work_dir, prefix="journal-", suffix=".journal"))
    copied = 0
    try:
        with open_content(cand) as src:
            while block := src.read(HASH_CHUNK):
                tmp.write(block)
                copied += len(block)
    except ReadProblem as exc:
        result.problems.append((copied, f"the journal's content ends early: {exc}"))
    tmp.flush()
    head = os.pread(tmp.fileno(), _HEADER.size, 0)
    declared = declared_size(head)
    result.how = "read from a decompressed copy" if not plain(cand) else "read from a copy"
    if declared is not None and copied < declared:
        os.ftruncate(tmp.fileno(), declared)  # a hole: no disk space taken
        result.how += f", padded with zeros from {copied} to the {declared} bytes its header declares"
        result.problems.append((copied, f"journal file cut short: {copied} bytes of the {declared} its header "
                                        "declares; journalctl refuses such a file, so it was read from a copy padded "
                                        "with zeros: the entries before the cut are kept, the rest are lost"))
    return tmp.fileno()


def _run(argv: list[str], fd: int, on_stdout: Callable[[object], None] | None,
         timeout: float) -> tuple[int, str]:
    """Run journalctl with ``fd`` passed; its stdout to ``on_stdout`` (or discarded), stopped
    after ``timeout`` seconds. Returns its exit status and what it said on stderr."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if on_stdout else
                                subprocess.DEVNULL, stderr=err, pass_fds=(fd,), env=ENV, cwd="/")
        stopped = threading.Event()

        def stop() -> None:
            stopped.set()
            proc.kill()

        timer = threading.Timer(timeout, stop)
        timer.start()
        try:
            if on_stdout is not None:
                try:
                    on_stdout(proc.stdout)
                finally:
                    proc.stdout.close()  # an early stop: journalctl gets SIGPIPE, never blocks
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            timer.cancel()
        err.seek(0)
        said = err.read(1 << 16).decode("utf-8", "replace")
    if stopped.is_set():
        said = f"stopped: still running after {timeout:.0f} s. " + said
    return rc, said


def _said(err: str, path: str) -> str:
    return " ".join(line.strip() for line in err.replace(path, "FILE").splitlines() if line.strip())[:500]


def _verify_problems(err: str, path: str) -> list[tuple[int | None, str]]:
    """``journalctl --verify``'s complaints, each at the byte offset it names."""
    out: list[tuple[int | None, str]] = []
    seen: set[int] = set()
    for line in err.replace(path, "FILE").splitlines():
        m = _CORRUPT_AT.search(line) or _VERIFY_AT.match(line.strip())
        if m is None:
            continue
        offset = int(m.group(1), 16)
        if offset in seen:
            continue
        seen.add(offset)
        out.append((offset, f"journalctl --verify: {line.strip()[:300]}"))
    if not out:
        out.append((None, f"journalctl --verify fails: {_said(err, path) or 'no reason given'}"))
    return out[:50]
