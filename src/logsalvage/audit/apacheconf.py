"""Apache httpd's configuration as a list of directives, each with its file, line and enclosing
sections, ``Include``/``IncludeOptional`` followed (relative to ``ServerRoot``, wildcards in any
component), as httpd reads it.

(A small reader of our own: the PyPI ``apacheconfig`` parser keeps no line numbers and has not
been maintained since 2020.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from logsalvage.audit.conf import parent, relative_to_root, split_words
from logsalvage.audit.host import Host
from logsalvage.audit.tree import ConfigFile

MAIN_CONFS = ("etc/httpd/conf/httpd.conf", "etc/apache2/apache2.conf", "etc/apache2/httpd.conf",
              "usr/local/apache2/conf/httpd.conf", "usr/local/etc/apache24/httpd.conf",
              "opt/rh/httpd24/root/etc/httpd/conf/httpd.conf")
MAX_INCLUDE_DEPTH = 16
MAX_DIRECTIVES = 100_000


@dataclass(frozen=True)
class Directive:
    name: str  # lower-cased
    args: tuple[str, ...]
    file: ConfigFile
    line: int
    sections: tuple[str, ...] = ()  # enclosing sections, outermost first: "directory /var/www/html"

    @property
    def text(self) -> str:
        from logsalvage.audit.conf import quote_line
        return quote_line(self.file.lines[self.line - 1])

    def in_section(self, kind: str) -> str | None:
        """The argument of the innermost enclosing section of ``kind`` (e.g. "directory")."""
        for s in reversed(self.sections):
            name, _, arg = s.partition(" ")
            if name == kind:
                return arg
        return None


@dataclass
class ApacheConfig:
    main: ConfigFile
    server_root: str  # from the system's root
    directives: list[Directive] = field(default_factory=list)
    defined: set[str] = field(default_factory=set)  # Define'd names
    loaded: set[str] = field(default_factory=set)  # modules LoadModule'd ("cgi", "log_config")
    commented: set[str] = field(default_factory=set)  # modules whose LoadModule line is commented out

    def named(self, *names: str) -> list[Directive]:
        return [d for d in self.directives if d.name in names]


def _logical_lines(cf: ConfigFile):
    """(first line number, text) with backslash continuations joined."""
    buf, start = "", None
    for no, raw in cf.numbered():
        text = raw.rstrip()
        if start is None:
            start = no
        if text.endswith("\\"):
            buf += text[:-1] + " "
            continue
        yield start, buf + text
        buf, start = "", None
    if start is not None and buf:
        yield start, buf


def _module(name: str) -> str:
    """``mod_cgid.c``, ``cgid_module``, ``modules/mod_cgid.so`` → ``cgid``."""
    name = name.rsplit("/", 1)[-1].lower()
    for suffix in (".c", ".so", "_module"):
        name = name.removesuffix(suffix)
    return name.removeprefix("mod_")


def _condition(host: Host, conf: ApacheConfig, kind: str, arg: str) -> bool:
    """Whether an ``<IfDefine>``/``<IfModule>`` section applies. A name never Define'd is undefined
    (what httpd assumes without -D); a module counts as absent only when the configuration shows it
    switched off (its LoadModule commented out, or Debian's mods-available/X.load not enabled), since
    modules built into httpd are loaded without a LoadModule line."""
    negate = arg.startswith("!")
    arg = arg.lstrip("!").strip()
    if kind == "ifdefine":
        result = arg in conf.defined
    else:
        mod = _module(arg)
        debian_off = host.tree.exists(f"{conf.server_root}/mods-available/{mod}.load") and \
            not host.tree.exists(f"{conf.server_root}/mods-enabled/{mod}.load")
        result = mod in conf.loaded or not (debian_off or mod in conf.commented)
    return result != negate


def _read(host: Host, conf: ApacheConfig, cf: ConfigFile, sections: list[str], depth: int, seen: set[str],
          active: list[bool]) -> None:
    """``active``: per open section, whether it applies (a directive counts when all do). ``seen``:
    the files read so far — each once (httpd itself refuses a file that includes itself)."""
    if depth > MAX_INCLUDE_DEPTH or cf.rel in seen:
        return
    seen.add(cf.rel)
    for no, text in _logical_lines(cf):
        t = text.strip()
        if t.startswith("#"):
            words = t.lstrip("#").split()
            if len(words) >= 2 and words[0].lower() == "loadmodule":
                conf.commented.add(_module(words[1]))
            continue
        if not t:
            continue
        if len(conf.directives) >= MAX_DIRECTIVES:
            host.tree.notes.append(f"{cf.shown}: more than {MAX_DIRECTIVES} directives, the rest not read")
            return
        if t.startswith("</"):
            if sections:
                sections.pop()
                active.pop()
            continue
        if t.startswith("<") and t.endswith(">"):
            words = split_words(t[1:-1])
            if words:
                kind = words[0].lower()
                applies = all(active)
                if applies and kind in ("ifdefine", "ifmodule") and len(words) > 1:
                    applies = _condition(host, conf, kind, words[1])
                sections.append(f"{kind} {' '.join(words[1:])}".strip())
                active.append(applies)
            continue
        if not all(active):
            continue
        words = split_words(t)
        if not words:
            continue
        name = words[0].lower()
        d = Directive(name, tuple(words[1:]), cf, no, tuple(s for s in sections
                                                          if not s.startswith(("ifmodule", "ifdefine"))))
        conf.directives.append(d)
        if name == "define" and d.args:
            conf.defined.add(d.args[0])
        elif name == "loadmodule" and d.args:
            conf.loaded.add(_module(d.args[0]))
        elif name == "serverroot" and d.args:
            conf.server_root = relative_to_root(d.args[0], "")
        elif name in ("include", "includeoptional") and d.args:
            pattern = relative_to_root(d.args[0], conf.server_root)
            for rel in host.tree.glob(pattern):
                if host.tree.is_dir(rel):  # Include of a directory reads every file in it
                    rels = [f"{rel}/{n}" for n in host.tree.listdir(rel)]
                else:
                    rels = [rel]
                for r in rels:
                    inc = host.tree.read(r) if host.tree.is_file(r) else None
                    if inc:
                        _read(host, conf, inc, sections, depth + 1, seen, active)


def load(host: Host) -> ApacheConfig | None:
    def make(h: Host) -> ApacheConfig | None:
        for rel in MAIN_CONFS:
            cf = h.tree.read(rel)
            if cf is None:
                continue
            conf_dir = parent(rel)
            server_root = parent(conf_dir) if conf_dir.endswith("/conf") else conf_dir
            conf = ApacheConfig(cf, server_root)
            _read(h, conf, cf, [], 0, set(), [])
            return conf
        return None
    return host.fact("apache", make)


def logformat_fields(fmt: str) -> set[str]:
    """The escapes of an Apache ``LogFormat`` string: ``h``, ``D``, ``>s``'s ``s``, ``{x-forwarded-for}i`` …
    (modifiers such as ``<``, ``>``, ``!`` and status lists dropped; braces' content lower-cased)."""
    out, i = set(), 0
    while i < len(fmt):
        if fmt[i] != "%":
            i += 1
            continue
        i += 1
        while i < len(fmt) and (fmt[i] in "<>!," or fmt[i].isdigit()):
            i += 1
        arg = ""
        if i < len(fmt) and fmt[i] == "{":
            j = fmt.find("}", i)
            if j < 0:
                break
            arg, i = fmt[i + 1:j].lower(), j + 1
            while i < len(fmt) and fmt[i] in "<>":
                i += 1
        if i < len(fmt):
            out.add(f"{{{arg}}}{fmt[i]}" if arg else fmt[i])
            i += 1
    return out
