"""Files an evidence folder carries beside a system's own tree: what the responders saved (``ls -l``
listings, checksum inventories, package lists, schema dumps) in directories a Linux root does not
have (``web01/fs/``, ``web01/notes/``), and checksum inventories next to a web root."""

from __future__ import annotations

from logsalvage.audit.host import Host

# a Linux root's own top-level directories: what is not one of these was put there by someone
FHS_TOP = frozenset({"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "var", "etc", "home", "root", "opt",
                     "srv", "tmp", "boot", "dev", "proc", "sys", "run", "mnt", "media", "snap", "lost+found"})
MAX_DEPTH = 3
MAX_FILES = 500
MAX_SIZE = 16 << 20
MAX_TOTAL = 256 << 20  # bytes of all of them together
# archives, compressed files and disk images: evidence of another kind, read by ingest and carve
NOT_TEXT = (".gz", ".tgz", ".bz2", ".xz", ".zst", ".zip", ".tar", ".7z", ".rar", ".dd", ".img", ".raw", ".e01",
            ".001", ".aff", ".vmdk", ".qcow2", ".iso", ".bin", ".pcap", ".duckdb", ".parquet")


def _collect(host: Host) -> list[str]:
    tree = host.tree
    if tree.live:  # a live or mounted system: nothing was added beside it
        return []
    out: list[str] = []
    total = 0
    level = [name for name in tree.listdir("") if name not in FHS_TOP and tree.is_dir(name)]
    depth = 0
    while level and depth < MAX_DEPTH and len(out) < MAX_FILES:
        nxt = []
        for d in level:
            for name in tree.listdir(d):
                rel = f"{d}/{name}"
                st = tree.stat(rel)
                if st is None:
                    continue
                if tree.is_dir(rel):
                    nxt.append(rel)
                elif tree.is_file(rel) and st.st_size <= MAX_SIZE and not name.lower().endswith(NOT_TEXT) \
                        and total + st.st_size <= MAX_TOTAL and len(out) < MAX_FILES:
                    out.append(rel)
                    total += st.st_size
        level, depth = nxt, depth + 1
    return sorted(out)


def extra_files(host: Host) -> list[str]:
    """Regular files in the non-system directories of an evidence folder's host (sorted)."""
    return host.fact("extra_files", _collect)
