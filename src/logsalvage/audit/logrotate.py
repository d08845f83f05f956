"""logrotate: how long each log is kept (``rotate`` × frequency, capped by ``maxage``), block by
block, with the global settings in force where each block starts (``include`` read in place)."""

from __future__ import annotations

from dataclasses import dataclass, field

from logsalvage.audit.conf import Setting, relative_to_root, strip_comment
from logsalvage.audit.host import Host
from logsalvage.audit.tree import ConfigFile

MAIN = "etc/logrotate.conf"
FREQUENCY_DAYS = {"hourly": 1 / 24, "daily": 1, "weekly": 7, "monthly": 30, "yearly": 365}
SCRIPTS = ("postrotate", "prerotate", "firstaction", "lastaction", "preremove")
MAX_INCLUDE_DEPTH = 8
INCLUDE_SKIP = (".rpmsave", ".rpmorig", ".rpmnew", ".dpkg-old", ".dpkg-dist", ".dpkg-new", ".disabled", "~",
                ".bak", ".swp")


@dataclass
class Options:
    """The options in force (each with the line that set it)."""

    values: dict[str, Setting] = field(default_factory=dict)

    def copy(self) -> "Options":
        return Options(dict(self.values))

    def set(self, s: Setting) -> None:
        if s.key in FREQUENCY_DAYS:
            self.values["frequency"] = s
        elif s.key in ("compress", "nocompress"):
            self.values["compress"] = s
        else:
            self.values[s.key] = s


@dataclass(frozen=True)
class Block:
    paths: tuple[str, ...]
    file: ConfigFile
    line: int
    options: Options

    def retention_days(self) -> float | None:
        """Days of history the rotated copies hold (rotate × frequency, capped by maxage); None when
        rotation is by size only."""
        freq = self.options.values.get("frequency")
        rotate = self.options.values.get("rotate")
        count = int(rotate.value) if rotate and rotate.value.lstrip("-").isdigit() else 0
        if count < 0:  # rotate -1: never removed (logrotate >= 3.8.5)
            days = None if freq is None else float("inf")
        elif freq is None:
            if any(k in self.options.values for k in ("size", "maxsize")):
                return None
            days = count * 1.0  # no frequency: rotated each time logrotate runs (daily)
        else:
            days = count * FREQUENCY_DAYS[freq.key]
        maxage = self.options.values.get("maxage")
        if maxage and maxage.value.isdigit():
            days = min(days if days is not None else float("inf"), int(maxage.value))
        return days

    def basis(self) -> str:
        v = self.options.values
        parts = [v["frequency"].key if "frequency" in v else "no frequency (daily runs)",
                 f"rotate {v['rotate'].value}" if "rotate" in v else "rotate 0 (the default)"]
        if "maxage" in v:
            parts.append(f"maxage {v['maxage'].value}")
        return ", ".join(parts)

    def deciding(self) -> Setting | None:
        """The setting that limits the retention most directly (rotate, else maxage, else frequency)."""
        v = self.options.values
        return v.get("maxage") or v.get("rotate") or v.get("frequency")


def _statements(cf: ConfigFile):
    """(line, words) of a logrotate file, scripts skipped."""
    in_script = False
    for no, raw in cf.numbered():
        text = strip_comment(raw).strip()
        if not text:
            continue
        words = text.replace("{", " { ").replace("}", " } ").split()
        if in_script:
            if words[0] == "endscript":
                in_script = False
            continue
        if words[0] in SCRIPTS:
            in_script = True
            continue
        yield no, words


def _read(host: Host, cf: ConfigFile, glob: Options, blocks: list[Block], depth: int, seen: set[str]) -> None:
    if depth > MAX_INCLUDE_DEPTH or cf.rel in seen:
        return
    seen.add(cf.rel)
    pending: list[str] = []
    pending_line = 0
    current: Options | None = None
    for no, words in _statements(cf):
        for i, w in enumerate(words):
            if w == "{":
                current = glob.copy()
                continue
            if w == "}":
                if current is not None and pending:
                    blocks.append(Block(tuple(pending), cf, pending_line, current))
                current, pending = None, []
                continue
            if current is None and (w.startswith("/") or w.startswith("\"/")):
                if not pending:
                    pending_line = no
                pending.append(w.strip("\""))
                continue
            if i == 0:
                setting = Setting(w.lower(), " ".join(words[1:]).strip("{} ").strip(), cf, no)
                if current is not None:
                    current.set(setting)
                elif setting.key == "include" and setting.value:
                    _include(host, setting.value, glob, blocks, depth, seen)
                else:
                    glob.set(setting)
            break


def _include(host: Host, target: str, glob: Options, blocks: list[Block], depth: int, seen: set[str]) -> None:
    rel = relative_to_root(target, "etc")
    rels = [f"{rel}/{n}" for n in host.tree.listdir(rel)] if host.tree.is_dir(rel) else [rel]
    for r in rels:
        name = r.rsplit("/", 1)[-1]
        if name.startswith(".") or name.endswith(INCLUDE_SKIP):
            continue
        inc = host.tree.read(r) if host.tree.is_file(r) else None
        if inc:
            _read(host, inc, glob, blocks, depth + 1, seen)


def blocks(host: Host) -> list[Block]:
    def make(h: Host) -> list[Block]:
        out: list[Block] = []
        cf = h.tree.read(MAIN)
        if cf is not None:
            _read(h, cf, Options(), out, 0, set())
        else:  # a tree with the package files but not the main one: each block on its own
            for name in h.tree.listdir("etc/logrotate.d"):
                inc = h.tree.read(f"etc/logrotate.d/{name}")
                if inc:
                    _read(h, inc, Options(), out, 0, set())
        return out
    return host.fact("logrotate", make)
