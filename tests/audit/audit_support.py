"""Helpers for the audit tests: system trees built from a few files, the audit's findings by check
id, a digest of a tree to show it unchanged."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from logsalvage.audit.host import AuditOptions
from logsalvage.audit.model import SEVERITY_RANK
from logsalvage.audit.run import run_audit


def write_tree(root: Path, files: dict[str, str | bytes], host: str = "h1") -> Path:
    """``root/evidence/<host>/<path>`` for each file (an etc/ always: the configuration was
    collected); returns the evidence directory."""
    ev = root / "evidence"
    (ev / host / "etc").mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        p = ev / host / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return ev


def audit_files(root: Path, files: dict[str, str | bytes], options: AuditOptions | None = None) -> dict:
    return run_audit([write_tree(root, files)], options)


def by_id(result: dict, check: str) -> list[dict]:
    return [f for f in result["findings"] if f["id"] == check]


def worst(result: dict, check: str) -> str | None:
    """The most serious severity the check reported (None: not reported)."""
    found = by_id(result, check)
    return min((f["severity"] for f in found), key=SEVERITY_RANK.__getitem__) if found else None


def serious(result: dict) -> list[dict]:
    return [f for f in result["findings"] if f["severity"] in ("high", "medium")]


def tree_digest(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (links not followed): type, bytes' hash, mode and mtime."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else None
            out[str(p.relative_to(root))] = (st.st_mode, st.st_mtime_ns, st.st_size, digest,
                                             os.readlink(p) if p.is_symlink() else None)
    return out
